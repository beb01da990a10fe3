"""Request size limits answer 413 with the friendly page, and write nothing; a photo just under
10 MB still goes through."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.points.models import PointsEntry


@pytest.fixture
def secretary(client, auth, world):
    client.post("/language", data={"lang": "en"})
    auth.login("secretary_a")
    return world.a.resident.person_id


def _friendly_413(response) -> None:
    assert response.status_code == 413
    text = response.get_data(as_text=True)
    assert "<h1>" in text and "Traceback" not in text
    assert "at most 10 MB" in text


def _entries() -> int:
    return db.session.scalar(select(func.count(PointsEntry.id)))


def test_huge_body_is_refused(client, secretary):
    response = client.post(
        f"/points/people/{secretary}/adjust",
        data=b"a" * (13 * 1024 * 1024),
        content_type="application/octet-stream",
    )
    _friendly_413(response)


def test_huge_form_field_is_refused(client, secretary):
    response = client.post(
        f"/points/people/{secretary}/adjust",
        data={"points": "5", "reason": "长" * 200_000},
    )
    _friendly_413(response)
    assert _entries() == 0


def test_huge_multipart_text_field_is_refused(client, secretary):
    response = client.post(
        f"/points/people/{secretary}/adjust",
        data={"points": "5", "reason": "x" * (300 * 1024)},
        content_type="multipart/form-data",
    )
    _friendly_413(response)
    assert _entries() == 0


def test_too_many_form_fields_are_refused(client, secretary):
    data = {"points": "5", "reason": "many"} | {f"f{n}": "1" for n in range(1000)}
    response = client.post(f"/points/people/{secretary}/adjust", data=data)
    _friendly_413(response)
    assert _entries() == 0


def test_an_ordinary_form_still_works(client, secretary):
    response = client.post(
        f"/points/people/{secretary}/adjust", data={"points": "5", "reason": "好" * 150}
    )
    assert response.status_code == 303
    assert _entries() == 1


def test_a_large_photo_still_fits(client, secretary, app):
    # A multipart body with a 9.5 MB file part: the file is not held to the form-memory limit.
    response = client.post(
        f"/points/people/{secretary}/adjust",
        data={
            "points": "5",
            "reason": "with a file",
            "photo": (io.BytesIO(b"\xff" * (9 * 1024 * 1024 + 512 * 1024)), "big.jpg"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    assert _entries() == 1
