"""The patrol report: summary, hazards one at a time with an optional photo, photos kept private."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from PIL import ExifTags, Image
from sqlalchemy import func, select

from portal.extensions import db
from portal.patrols.models import Hazard, PatrolReport
from tests.helpers import forged_jpeg
from tests.patrols.conftest import DUTY_HX, duty_make_shift


def _jpeg(with_gps: bool = False) -> bytes:
    exif = Image.Exif()
    if with_gps:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps[ExifTags.GPS.GPSLatitudeRef] = "N"
        gps[ExifTags.GPS.GPSLatitude] = (31.0, 13.0, 44.0)
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), "orange").save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


def _hazard_data(photo: bytes | None = None, filename: str = "hazard.jpg", **fields) -> dict:
    data = {"description": "楼道堆放杂物，堵住消防通道", "location": "3号楼2单元", **fields}
    if photo is not None:
        data["photo"] = (io.BytesIO(photo), filename)
    return data


def _count(model) -> int:
    db.session.commit()
    return db.session.scalar(select(func.count(model.id)))


def _hazards() -> list[Hazard]:
    db.session.commit()
    return list(db.session.scalars(select(Hazard).order_by(Hazard.id)))


# --- the summary -------------------------------------------------------------------------------


def test_report_waits_for_the_start(client, auth, duty_scene, duty_english):
    shift = duty_make_shift(
        duty_scene.a, starts_in=timedelta(hours=3), leader_id=duty_scene.leader.person_id
    )
    auth.login("leader_a")
    page = client.get(f"/shifts/{shift.id}/report").get_data(as_text=True)
    assert "The report can be filed once the shift has started" in page
    response = client.post(f"/shifts/{shift.id}/report", data={"summary": "提前写"})
    assert response.status_code == 200
    assert "The report can be filed once the shift has started" in response.get_data(as_text=True)
    response = client.post(f"/shifts/{shift.id}/report/hazards", data=_hazard_data())
    assert response.status_code == 200
    assert _count(PatrolReport) == 0 and _count(Hazard) == 0


def test_summary_is_saved_and_revised_in_one_report(client, auth, duty_scene, duty_english):
    url = f"/shifts/{duty_scene.shift.id}/report"
    auth.login("leader_a")
    assert client.get(url).status_code == 200
    response = client.post(url, data={"summary": "巡查东区，一切正常。"})
    assert response.status_code == 303 and response.headers["Location"] == url
    page = client.get(url).get_data(as_text=True)
    assert "巡查东区，一切正常。" in page and "The patrol report was saved." in page
    client.post(url, data={"summary": "巡查东区，发现路灯损坏。"})
    db.session.commit()
    [report] = db.session.scalars(select(PatrolReport)).all()
    assert report.summary == "巡查东区，发现路灯损坏。"
    assert report.filed_by_id == duty_scene.leader.id
    assert report.community_id == duty_scene.a.community.id


@pytest.mark.parametrize(
    ("summary", "message"), [("", "Write what the patrol saw."), ("   ", "Write what the patrol")]
)
def test_empty_summary_is_refused(client, auth, duty_scene, duty_english, summary, message):
    auth.login("leader_a")
    response = client.post(f"/shifts/{duty_scene.shift.id}/report", data={"summary": summary})
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert _count(PatrolReport) == 0


# --- hazards ---------------------------------------------------------------------------------


def test_hazard_with_photo_is_added_and_its_photo_has_no_exif(
    client, auth, duty_scene, duty_uploads, duty_english
):
    url = f"/shifts/{duty_scene.shift.id}/report/hazards"
    auth.login("leader_a")
    response = client.post(
        url, data=_hazard_data(_jpeg(with_gps=True)), content_type="multipart/form-data"
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"/shifts/{duty_scene.shift.id}/report#hazards"
    [hazard] = _hazards()
    assert hazard.description == "楼道堆放杂物，堵住消防通道" and hazard.location == "3号楼2单元"
    assert hazard.community_id == duty_scene.a.community.id and hazard.request_id is None
    stored = duty_uploads / hazard.photo
    assert stored.is_file() and b"Exif" not in stored.read_bytes()

    page = client.get(f"/shifts/{duty_scene.shift.id}/report").get_data(as_text=True)
    assert f'src="/hazards/{hazard.id}/photo"' in page
    photo = client.get(f"/hazards/{hazard.id}/photo")
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    assert photo.data == stored.read_bytes()
    assert "no-store" in photo.headers["Cache-Control"]


def test_hazards_are_added_one_at_a_time_with_htmx(
    client, auth, duty_scene, duty_uploads, duty_english
):
    url = f"/shifts/{duty_scene.shift.id}/report/hazards"
    auth.login("secretary_a")
    first = client.post(url, data=_hazard_data(description="路灯不亮"), headers=DUTY_HX)
    second = client.post(url, data=_hazard_data(description="井盖松动"), headers=DUTY_HX)
    for response in (first, second):
        assert response.status_code == 200
        assert response.headers["HX-Trigger"] == "hazard-added"
        assert "HX-Request" in response.headers["Vary"]
    body = second.get_data(as_text=True)
    assert "<html" not in body and body.lstrip().startswith('<section id="hazards"')
    assert "路灯不亮" in body and "井盖松动" in body and "The hazard was added." in body
    assert [h.description for h in _hazards()] == ["路灯不亮", "井盖松动"]
    assert all(h.photo is None for h in _hazards())
    assert _count(PatrolReport) == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"description": ""}, "Describe the hazard."),
        ({"description": "长" * 501}, "500"),
        ({"location": "地" * 201}, "200"),
    ],
)
def test_bad_hazard_text_is_refused(client, auth, duty_scene, duty_english, fields, message):
    url = f"/shifts/{duty_scene.shift.id}/report/hazards"
    auth.login("leader_a")
    for headers in ({}, DUTY_HX):
        response = client.post(url, data=_hazard_data(**fields), headers=headers)
        assert response.status_code == 200
        assert message in response.get_data(as_text=True)
    assert _count(Hazard) == 0


def test_text_file_named_jpg_is_refused(client, auth, duty_scene, duty_uploads, duty_english):
    auth.login("leader_a")
    response = client.post(
        f"/shifts/{duty_scene.shift.id}/report/hazards",
        data=_hazard_data(b"#!/bin/sh\necho not a photo\n", "photo.jpg"),
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "This file is not a photo" in body
    assert "楼道堆放杂物" in body  # what was typed is kept
    assert _count(Hazard) == 0
    assert not duty_uploads.exists() or not any(duty_uploads.rglob("*.jpg"))


def test_photo_over_the_pixel_limit_is_refused_before_decoding(
    client, auth, duty_scene, duty_uploads, duty_english
):
    auth.login("leader_a")
    response = client.post(
        f"/shifts/{duty_scene.shift.id}/report/hazards",
        data=_hazard_data(forged_jpeg(7000, 7000)),
        content_type="multipart/form-data",
        headers=DUTY_HX,
    )
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "The photo has too many pixels: at most 24 megapixels." in body
    assert "楼道堆放杂物" in body
    assert _count(Hazard) == 0


def test_eleven_megabyte_photo_is_refused(client, auth, duty_scene, duty_uploads, duty_english):
    auth.login("leader_a")
    big = _jpeg() + b"\0" * (11 * 1024 * 1024)
    response = client.post(
        f"/shifts/{duty_scene.shift.id}/report/hazards",
        data=_hazard_data(big),
        content_type="multipart/form-data",
        headers=DUTY_HX,
    )
    assert response.status_code == 200
    assert "The photo is too large: at most 10 MB." in response.get_data(as_text=True)
    assert _count(Hazard) == 0


def test_request_over_the_content_limit_is_refused(client, auth, duty_scene, duty_english):
    auth.login("leader_a")
    huge = b"\0" * (13 * 1024 * 1024)
    response = client.post(
        f"/shifts/{duty_scene.shift.id}/report/hazards",
        data=_hazard_data(huge),
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    assert _count(Hazard) == 0


# --- who may see a hazard's photo ------------------------------------------------------------


@pytest.fixture
def hazard(client, auth, duty_scene, duty_uploads):
    auth.login("leader_a")
    client.post(
        f"/shifts/{duty_scene.shift.id}/report/hazards",
        data=_hazard_data(_jpeg()),
        content_type="multipart/form-data",
    )
    auth.logout()
    [row] = _hazards()
    return row


@pytest.mark.parametrize(
    ("username", "status"),
    [
        ("leader_a", 200),
        ("secretary_a", 200),
        ("gridworker_a", 200),
        ("volunteer_a", 404),
        ("resident_a", 404),
        ("admin_a", 404),
        ("secretary_b", 404),
        ("gridworker_b", 404),
        ("volunteer_b", 404),
    ],
)
def test_photo_is_served_to_leader_and_staff_only(client, auth, hazard, username, status):
    auth.login(username)
    response = client.get(f"/hazards/{hazard.id}/photo")
    assert response.status_code == status
    if status == 404:
        assert response.mimetype == "text/html"


def test_photo_needs_sign_in(client, hazard):
    response = client.get(f"/hazards/{hazard.id}/photo")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_hazard_without_photo_has_none_to_serve(client, auth, duty_scene, duty_uploads):
    auth.login("leader_a")
    client.post(f"/shifts/{duty_scene.shift.id}/report/hazards", data=_hazard_data())
    [row] = _hazards()
    assert client.get(f"/hazards/{row.id}/photo").status_code == 404


def test_tampered_photo_name_is_not_served(client, auth, hazard):
    hazard.photo = "../../../etc/passwd"
    db.session.commit()
    auth.login("secretary_a")
    assert client.get(f"/hazards/{hazard.id}/photo").status_code == 404
