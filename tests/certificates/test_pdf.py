"""The PDF read back: what it states, the embedded CJK font, the fallback font, and long lists."""

from __future__ import annotations

import io
import logging
import os
import shutil
import time
from datetime import date
from decimal import Decimal

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from portal.certificates import pdf
from portal.certificates.models import Certificate
from portal.extensions import db
from portal.points import ledger
from tests.certificates.conftest import CERT_ID, CERT_ID_MASKED, CERT_PERIOD, cert_make


def _text(body: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)


def _font_files(body: bytes) -> set[str]:
    """Which embedded font streams (/FontFile, /FontFile2, /FontFile3) the pages' fonts carry."""
    found = set()
    for page in PdfReader(io.BytesIO(body)).pages:
        fonts = page["/Resources"].get("/Font", {})
        for ref in fonts.values():
            font = ref.get_object()
            descendants = [d.get_object() for d in font.get("/DescendantFonts", [])]
            for item in [font, *descendants]:
                descriptor = item.get("/FontDescriptor")
                if descriptor is not None:
                    found |= {k for k in descriptor.get_object() if k.startswith("/FontFile")}
    return found


def _issue(client, auth) -> Certificate:
    auth.login("volunteer_a")
    response = client.post("/certificates", data={**CERT_PERIOD, "id_number": CERT_ID})
    assert response.status_code == 303
    db.session.commit()
    return db.session.scalars(select(Certificate)).one()


def test_pdf_states_the_certificate(client, auth, cert_scene):
    cert = _issue(client, auth)
    response = client.get(f"/certificates/{cert.number}/pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="certificate-{cert.number}.pdf"'
    )
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_data()
    text = _text(body)
    for expected in (
        "志愿服务时长证明",
        cert.number,
        cert_scene.a.volunteer.person.name,  # the holder's own document: the full name
        CERT_ID_MASKED,
        "6.75",
        "2025-03-05",
        "2025-04-10",
        "2025-12-31",
        "夜间巡逻",
        f"水管漏水 #{cert_scene.history.request.id}",
        "补录社区清扫",
        "治安巡逻",  # kinds in Chinese
        "邻里互助",
        "社区A",
        f"http://localhost/certificates/{cert.number}",
    ):
        assert expected in text, expected
    for left_out in ("2024-12-31", "2025-05-01", "挨户走访", "跨年巡逻"):
        assert left_out not in text
    assert CERT_ID not in text and CERT_ID.encode() not in body


def test_pdf_is_in_chinese_for_an_english_viewer(client, auth, cert_scene, cert_english):
    cert = _issue(client, auth)
    text = _text(client.get(f"/certificates/{cert.number}/pdf").get_data())
    assert "志愿服务时长证明" in text and "出具单位" in text


def test_cjk_font_is_embedded(client, auth, cert_scene):
    if not os.path.isfile(pdf.WQY_MICROHEI):
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"{pdf.WQY_MICROHEI} is missing: install fonts-wqy-microhei")
        pytest.skip("fonts-wqy-microhei is not installed")
    cert = _issue(client, auth)
    body = client.get(f"/certificates/{cert.number}/pdf").get_data()
    assert "/FontFile2" in _font_files(body)


def test_configured_font_comes_first(app, tmp_path):
    if not os.path.isfile(pdf.WQY_MICROHEI):
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"{pdf.WQY_MICROHEI} is missing: install fonts-wqy-microhei")
        pytest.skip("fonts-wqy-microhei is not installed")
    copy = tmp_path / "my-font.ttc"
    shutil.copy(pdf.WQY_MICROHEI, copy)
    app.config["CERTIFICATE_FONT"] = str(copy)
    name = pdf.font_name()
    assert pdf._registered[str(copy)] == name
    assert pdf.font_name() == name  # registered once


def test_without_a_truetype_font_the_cid_font_still_writes_chinese(
    app, world, monkeypatch, caplog, tmp_path
):
    not_a_font = tmp_path / "broken.ttf"
    not_a_font.write_bytes(b"not a font")
    app.config["CERTIFICATE_FONT"] = str(not_a_font)
    monkeypatch.setattr(pdf, "WQY_MICROHEI", str(tmp_path / "missing.ttc"))
    monkeypatch.setattr(pdf, "_cid_warned", False)
    cert = cert_make(world.a.volunteer.person, "TX2026-CCCC-DDDD", community=world.a.community)
    with caplog.at_level(logging.WARNING, logger="portal.certificates.pdf"):
        first = pdf.render_certificate(cert, "http://localhost/certificates/TX2026-CCCC-DDDD")
        pdf.render_certificate(cert, "http://localhost/certificates/TX2026-CCCC-DDDD")
    text = _text(first)
    assert "志愿服务时长证明" in text and cert.holder_name in text and "夜间巡逻" in text
    assert "/FontFile2" not in _font_files(first)
    fallback = [r for r in caplog.records if "non-embedded" in r.getMessage()]
    broken = [r for r in caplog.records if "not usable" in r.getMessage()]
    assert len(fallback) == 1 and len(broken) == 1  # warned once, not at every certificate


def test_a_long_list_runs_over_pages_with_its_heading(app, world):
    activities = [
        {"date": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}", "kind": "patrol",
         "title": f"巡逻第{i}次", "hours": "1.00"}
        for i in range(120)
    ]  # fmt: skip
    cert = cert_make(
        world.a.volunteer.person,
        "TX2026-EEEE-FFFF",
        community=world.a.community,
        activities=activities,
        activity_count=120,
        total_hours=Decimal("120.00"),
    )
    pdf.font_name()  # the font is loaded once per process, not per certificate
    started = time.perf_counter()
    body = pdf.render_certificate(cert, "http://localhost/certificates/TX2026-EEEE-FFFF")
    elapsed = time.perf_counter() - started
    reader = PdfReader(io.BytesIO(body))
    assert len(reader.pages) >= 3
    texts = [page.extract_text() for page in reader.pages]
    # The table's heading row repeats on every page the list covers.
    assert sum("活动内容" in t for t in texts) == len(reader.pages)
    text = "\n".join(texts)
    assert "巡逻第0次" in text and "巡逻第119次" in text and "120.00" in text
    assert elapsed < 2  # ~0.1 s here; a generous bound for slow CI machines


def test_same_certificate_same_text(app, world):
    """It renders from the stored snapshot: later ledger rows change nothing."""
    cert = cert_make(world.a.volunteer.person, "TX2026-GGGG-HHHH", community=world.a.community)
    url = "http://localhost/certificates/TX2026-GGGG-HHHH"
    first = _text(pdf.render_certificate(cert, url))
    ledger.adjust(
        world.a.volunteer.person.id,
        points=0,
        hours=Decimal(5),
        reason="后来补录",
        actor_id=world.a.secretary.id,
    )
    db.session.commit()
    db.session.refresh(cert)
    assert _text(pdf.render_certificate(cert, url)) == first
    assert "后来补录" not in first


def test_markup_in_titles_is_text(app, world):
    cert = cert_make(
        world.a.volunteer.person,
        "TX2026-JJJJ-KKKK",
        community=world.a.community,
        holder_name="<b>王&小明</b>",
        period_start=date(2025, 1, 1),
        activities=[
            {"date": "2025-01-02", "kind": "duty", "title": "<i>值守</i> & 清扫", "hours": "1"}
        ],
    )
    text = _text(pdf.render_certificate(cert, "http://localhost/x"))
    assert "<b>王&小明</b>" in text and "<i>值守</i> & 清扫" in text
