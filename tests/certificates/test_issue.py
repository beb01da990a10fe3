"""Issuing a certificate: what it states comes from verified ledger rows of the period only, bad
input gives messages and saves nothing, and the full identity number is kept nowhere."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from portal.certificates import services
from portal.certificates.models import Certificate
from portal.core.errors import DomainError
from portal.core.timeutil import local_today
from portal.extensions import db
from tests.certificates.conftest import (
    CERT_HX,
    CERT_ID,
    CERT_ID_MASKED,
    CERT_PERIOD,
    cert_make,
)


def _certificates() -> list[Certificate]:
    db.session.commit()
    return list(db.session.scalars(select(Certificate).order_by(Certificate.id)))


def _all_rows_text() -> str:
    """Every row of every table, as text."""
    dump = []
    for table in db.metadata.sorted_tables:
        dump.extend(
            repr(tuple(row)) for row in db.session.execute(text(f'SELECT * FROM "{table.name}"'))
        )
    db.session.commit()
    return "\n".join(dump)


def test_issue_states_verified_hours_of_the_period(client, auth, cert_scene):
    a = cert_scene.a
    auth.login("volunteer_a")
    response = client.post("/certificates", data={**CERT_PERIOD, "id_number": CERT_ID.lower()})
    assert response.status_code == 303
    [cert] = _certificates()
    assert response.headers["Location"] == f"/certificates/{cert.number}"
    assert services.NUMBER_RE.match(cert.number) and cert.number.startswith(
        f"TX{local_today().year}-"
    )
    assert cert.person_id == a.volunteer.person.id
    assert cert.community_id == a.community.id
    assert cert.holder_name == a.volunteer.person.name
    assert cert.community_name == "社区A"
    assert cert.id_number_masked == CERT_ID_MASKED
    assert (cert.period_start, cert.period_end) == (date(2025, 1, 1), date(2025, 12, 31))
    assert cert.total_hours == Decimal("6.75")
    assert cert.activity_count == 3
    assert cert.issued_by_id == a.volunteer.id
    req_id = cert_scene.history.request.id
    # Reversed door watch, 2024's patrol, party report, redemption, negative correction: left out.
    assert cert.activities == [
        {"date": "2025-03-05", "kind": "patrol", "title": "夜间巡逻", "hours": "2.50"},
        {"date": "2025-04-10", "kind": "help", "title": f"水管漏水 #{req_id}", "hours": "1.25"},
        {"date": "2025-12-31", "kind": "adjustment", "title": "补录社区清扫", "hours": "3.00"},
    ]
    # The full identity number is stored nowhere (any case), only the masked form.
    everything = _all_rows_text().upper()
    assert CERT_ID not in everything
    assert CERT_ID_MASKED in everything


def test_request_titles_follow_the_language_of_the_issue(client, auth, cert_scene, cert_english):
    auth.login("volunteer_a")
    assert client.post("/certificates", data=CERT_PERIOD).status_code == 303
    [cert] = _certificates()
    assert cert.activities[1]["title"] == f"Water leak #{cert_scene.history.request.id}"
    assert cert.id_number_masked == ""


def test_period_limits_are_included(client, auth, cert_scene):
    auth.login("volunteer_a")
    data = {"period_start": "2025-03-05", "period_end": "2025-04-10"}
    assert client.post("/certificates", data=data).status_code == 303
    [cert] = _certificates()
    assert [a["date"] for a in cert.activities] == ["2025-03-05", "2025-04-10"]
    assert cert.total_hours == Decimal("3.75")


def test_success_shows_the_certificate_to_its_holder(client, auth, cert_scene, cert_english):
    auth.login("volunteer_a")
    response = client.post("/certificates", data=CERT_PERIOD, follow_redirects=True)
    [cert] = _certificates()
    body = response.get_data(as_text=True)
    assert f"Certificate {cert.number} was issued" in body
    assert f'href="/certificates/{cert.number}/pdf"' in body


def test_no_hours_in_the_period_saves_nothing(client, auth, cert_scene, cert_english):
    auth.login("volunteer_a")
    data = {"period_start": "2020-01-01", "period_end": "2020-12-31", "id_number": CERT_ID}
    response = client.post("/certificates", data=data)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "You have no verified service hours in this period: nothing to certify." in body
    assert 'value="2020-01-01"' in body and 'value="2020-12-31"' in body  # nothing typed lost
    assert _certificates() == []


def test_someone_without_any_hours_is_told(client, auth, cert_scene, cert_english):
    auth.login("resident_a")
    response = client.post("/certificates", data=CERT_PERIOD)
    assert response.status_code == 200
    assert "no verified service hours" in response.get_data(as_text=True)
    assert _certificates() == []


def _tomorrow() -> str:
    return (local_today() + timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    "start, end, field, message",
    [
        ("2025-01-01", None, "period_end", "The period cannot end in the future."),
        ("2025-12-31", "2025-01-01", "period_start", "The start must be on or before the end."),
        (
            "2019-12-31",
            "2025-01-01",
            "period_end",
            "A certificate covers at most 5 years; choose a shorter period.",
        ),
        ("", "2025-01-01", "period_start", "This field is required."),
        ("2025-02-30", "2025-12-31", "period_start", "Not a valid date value."),
    ],
)
def test_bad_periods_give_messages(
    client, auth, cert_scene, cert_english, start, end, field, message
):
    auth.login("volunteer_a")
    data = {"period_start": start, "period_end": end or _tomorrow()}
    response = client.post("/certificates", data=data)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    section = body.split(f'id="field-{field}"', 1)[1].split('class="field', 1)[0]
    assert message in section
    assert _certificates() == []


def test_five_years_exactly_is_allowed(client, auth, cert_scene):
    auth.login("volunteer_a")
    data = {"period_start": "2020-12-31", "period_end": "2025-12-31"}
    assert client.post("/certificates", data=data).status_code == 303
    assert len(_certificates()) == 1


@pytest.mark.parametrize(
    "id_number",
    [
        "110105194912310021",  # wrong check character
        "11010519491331002X",  # no 13th month
        "1101051949123100",  # too short
        "11010519491231002Y",
        "abcdefghijklmnopqr",
    ],
)
def test_bad_identity_numbers_give_a_message(client, auth, cert_scene, cert_english, id_number):
    auth.login("volunteer_a")
    response = client.post("/certificates", data={**CERT_PERIOD, "id_number": id_number})
    assert response.status_code == 200
    section = response.get_data(as_text=True).split('id="field-id_number"', 1)[1]
    assert "This is not a valid identity card number" in section.split("</div>\n</div>", 1)[0]
    assert _certificates() == []


def test_without_csrf_token_nothing_is_issued(client, auth, cert_scene):
    auth.login("volunteer_a")
    response = client.post("/certificates", data=CERT_PERIOD, csrf=False)
    assert response.status_code == 400
    assert _certificates() == []


def test_form_defaults_to_this_year_until_today(client, auth, cert_scene):
    auth.login("volunteer_a")
    body = client.get("/certificates").get_data(as_text=True)
    today = local_today()
    assert f'value="{today.replace(month=1, day=1).isoformat()}"' in body
    assert f'value="{today.isoformat()}"' in body


def test_list_fragment_for_htmx(client, auth, cert_scene):
    cert_make(cert_scene.a.volunteer.person, "TX2026-AAAA-CCCC", community=cert_scene.a.community)
    auth.login("volunteer_a")
    response = client.get("/certificates", headers=CERT_HX)
    body = response.get_data(as_text=True)
    assert "<html" not in body and 'id="certificate-list"' in body
    assert "TX2026-AAAA-CCCC" in body
    assert "HX-Request" in response.headers["Vary"]


# --- the service directly ---------------------------------------------------------------------


def test_number_collision_draws_again(app, cert_scene, cert_request_ctx, monkeypatch):
    person = cert_scene.a.volunteer.person
    taken = cert_make(person, "TX2026-AAAA-AAAA", community=cert_scene.a.community)
    drawn = iter(["TX2026-AAAA-AAAA", "TX2026-AAAA-AAAA", "TX2026-CCCC-DDDD"])
    monkeypatch.setattr(services, "new_number", lambda year: next(drawn))
    cert = services.issue_certificate(
        person,
        period_start=date(2025, 1, 1),
        period_end=date(2025, 12, 31),
        id_number=None,
        actor_id=None,
    )
    db.session.commit()
    assert cert.number == "TX2026-CCCC-DDDD"
    assert [c.number for c in _certificates()] == [taken.number, "TX2026-CCCC-DDDD"]
    assert _certificates()[1].total_hours == Decimal("6.75")


def test_no_free_number_is_an_error_not_a_crash(app, cert_scene, cert_request_ctx, monkeypatch):
    person = cert_scene.a.volunteer.person
    cert_make(person, "TX2026-AAAA-AAAA", community=cert_scene.a.community)
    monkeypatch.setattr(services, "new_number", lambda year: "TX2026-AAAA-AAAA")
    with pytest.raises(DomainError) as raised:
        services.issue_certificate(
            person,
            period_start=date(2025, 1, 1),
            period_end=date(2025, 12, 31),
            id_number=None,
            actor_id=None,
        )
    db.session.rollback()
    assert "_" in raised.value.errors
    assert db.session.scalar(select(func.count()).select_from(Certificate)) == 1


def test_numbers_are_random_and_unambiguous():
    numbers = {services.new_number(2026) for _ in range(500)}
    assert len(numbers) == 500
    for number in numbers:
        assert services.NUMBER_RE.match(number)
        assert not set(number[7:]) & set("01258BILOSUVZ")


@pytest.mark.parametrize(
    "raw, cleaned",
    [
        ("TX2026-K7MC-3QHT", "TX2026-K7MC-3QHT"),
        (" tx2026-k7mc-3qht ", "TX2026-K7MC-3QHT"),
        ("TX2026-K7MC-3QH0", None),
        ("TX2026-K7MC3QHT", None),
        ("TX26-K7MC-3QHT", None),
        ("1 OR 1=1", None),
        ("TX2026-K7MC-3QHT" * 3, None),
        ("", None),
    ],
)
def test_clean_number(raw, cleaned):
    assert services.clean_number(raw) == cleaned
