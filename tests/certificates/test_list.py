"""The list of one's certificates: paginated, a fixed number of queries, what each row shows."""

from __future__ import annotations

from datetime import date

from portal.extensions import db
from tests.certificates.conftest import cert_count_queries, cert_make

ALPHABET = "34679ACDEFGHJKMNPQRTWXY"


def _number(i: int) -> str:
    a, b = divmod(i, len(ALPHABET))
    return f"TX2026-AAA{ALPHABET[a]}-CCC{ALPHABET[b]}"


def _make(world, start: int, count: int) -> None:
    for i in range(start, start + count):
        cert_make(world.a.volunteer.person, _number(i), community=world.a.community)


def _queries(client) -> int:
    with cert_count_queries() as counter:
        assert client.get("/certificates").status_code == 200
    return counter["n"]


def test_fixed_number_of_queries(client, auth, world):
    auth.login("volunteer_a")
    _make(world, 0, 3)
    few = _queries(client)
    _make(world, 3, 27)
    assert _queries(client) == few


def test_pages_newest_first(app, client, auth, world):
    _make(world, 0, app.config["PAGE_SIZE"] + 2)
    auth.login("volunteer_a")
    first = client.get("/certificates").get_data(as_text=True)
    second = client.get("/certificates?page=2").get_data(as_text=True)
    newest, oldest = _number(app.config["PAGE_SIZE"] + 1), _number(0)
    assert newest in first and oldest not in first
    assert oldest in second and newest not in second
    assert 'href="/certificates?page=2"' in first


def test_each_row_shows_number_period_hours_and_links(client, auth, world):
    cert = cert_make(
        world.a.volunteer.person,
        "TX2026-K7MC-3QHT",
        community=world.a.community,
        period_start=date(2025, 2, 1),
        period_end=date(2025, 9, 30),
    )
    db.session.commit()
    auth.login("volunteer_a")
    body = client.get("/certificates").get_data(as_text=True)
    row = body.split(f'id="certificate-{cert.id}"', 1)[1].split("</tr>", 1)[0]
    assert "TX2026-K7MC-3QHT" in row
    assert "<span>2025-02-01</span> – <span>2025-09-30</span>" in row
    assert "3.50" in row
    assert 'href="/certificates/TX2026-K7MC-3QHT"' in row
    assert 'href="/certificates/TX2026-K7MC-3QHT/pdf"' in row


def test_empty_list_says_so(client, auth, world, cert_english):
    auth.login("volunteer_a")
    assert "You have no certificates yet." in client.get("/certificates").get_data(as_text=True)
