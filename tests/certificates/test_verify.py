"""The public verification page: genuine numbers state masked facts, anything else is 404."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from portal.core.validators import mask_name
from portal.extensions import db
from tests.certificates.conftest import CERT_ID_MASKED, cert_make

NUMBER = "TX2026-K7MC-3QHT"


@pytest.fixture
def cert(world):
    return cert_make(world.a.volunteer.person, NUMBER, community=world.a.community)


def test_anyone_can_check_a_genuine_certificate(client, world, cert, cert_english):
    response = client.get(f"/certificates/{NUMBER}")
    assert response.status_code == 200
    assert response.headers["X-Robots-Tag"] == "noindex"
    body = response.get_data(as_text=True)
    assert "Genuine" in body
    name = world.a.volunteer.person.name
    assert mask_name(name) in body and name not in body
    for fact in (NUMBER, CERT_ID_MASKED, "社区A", "2025-01-01", "2025-12-31", "3.50",
                 "<dd>2</dd>", "2026-01-05"):  # fmt: skip
        assert fact in body, fact
    # The activities stay on the holder's PDF.
    assert "夜间巡逻" not in body and "水管漏水" not in body
    assert "/pdf" not in body


def test_lower_case_numbers_are_found(client, cert):
    assert client.get(f"/certificates/{NUMBER.lower()}").status_code == 200


def test_unknown_number_is_not_found(client, cert, cert_english):
    response = client.get("/certificates/TX2026-K7MC-3QHA")
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "There is no certificate with this number." in body
    assert "Genuine" not in body


@pytest.mark.parametrize(
    "number",
    [
        "TX2026-K7MC-3QH0",  # a character outside the alphabet
        "TX2026K7MC3QHT",
        "tx2026-k7mc-3qhtx",
        "1%20OR%201=1",
        "%27%3B--",
        "A" * 500,
        "TX99999-K7MC-3QHT",
    ],
)
def test_malformed_numbers_are_not_found_without_a_query(client, cert, number):
    statements = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        response = client.get(f"/certificates/{number}")
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert response.status_code == 404
    assert not [s for s in statements if "certificate" in s.lower()]


@pytest.mark.parametrize(
    "username, sees_link",
    [
        ("volunteer_a", True),  # the holder
        ("secretary_a", True),
        ("admin_a", True),
        ("resident_a", False),
        ("gridworker_a", False),
        ("secretary_b", False),
        ("admin_b", False),
    ],
)
def test_pdf_link_only_for_who_may_download(client, auth, cert, username, sees_link):
    auth.login(username)
    body = client.get(f"/certificates/{NUMBER}").get_data(as_text=True)
    assert (f'href="/certificates/{NUMBER}/pdf"' in body) is sees_link
