"""A person's points for staff: totals and history, the secretary's adjustment with its
mandatory reason, and reversals; who may see or do what."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.points import ledger
from portal.points.models import PointsAccount, PointsEntry
from tests import factories
from tests.helpers import count_queries, reload

ROLES = ("anonymous", "resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin")
HX = {"HX-Request": "true"}
DAY = date(2026, 11, 3)


@pytest.fixture
def pa_english(client):
    assert client.post("/language", data={"lang": "en"}).status_code == 303


def _award(person, points: int, source_id: int, hours="1.00", kind="patrol") -> PointsEntry:
    entry = ledger.award(
        person.id,
        kind=kind,
        source_type="request" if kind in ("help", "mediation") else "signup",
        source_id=source_id,
        base_points=Decimal(points),
        hours=Decimal(hours),
        occurred_on=DAY,
        note=f"巡逻{source_id}",
    )
    db.session.commit()
    return entry


def _entries(person_id: int) -> list[PointsEntry]:
    db.session.commit()
    return list(
        db.session.scalars(
            select(PointsEntry).where(PointsEntry.person_id == person_id).order_by(PointsEntry.id)
        )
    )


def _balance(person_id: int) -> tuple[int, Decimal]:
    account = reload(PointsAccount, person_id)
    return (account.balance, account.hours) if account else (0, Decimal("0.00"))


def _url(person) -> str:
    return f"/points/people/{person.id}"


# --- access ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_who_may_see_a_persons_points(client, auth, world, role):
    person = world.a.volunteer.person
    _award(person, 20, 1)
    if role != "anonymous":
        auth.login(world.a.users[role].username)
    response = client.get(_url(person))
    expected = {"anonymous": 302, "secretary": 200, "subdistrict_admin": 200}.get(role, 403)
    assert response.status_code == expected
    if expected == 200:
        assert person.name in response.get_data(as_text=True)


@pytest.mark.parametrize("role", ("secretary", "subdistrict_admin"))
def test_another_communitys_person_is_not_found(client, auth, world, role):
    auth.login(world.a.users[role].username)
    assert client.get(_url(world.b.volunteer.person)).status_code == 404
    assert client.get("/points/people/999999").status_code == 404
    assert client.get(f"/points/people/{2**63}").status_code == 404


@pytest.mark.parametrize("role", ROLES)
def test_only_the_secretary_adjusts(client, auth, world, role):
    person = world.a.volunteer.person
    if role != "anonymous":
        auth.login(world.a.users[role].username)
    response = client.post(
        f"{_url(person)}/adjust", data={"points": "5", "hours": "", "reason": "补录"}
    )
    if role == "secretary":
        assert response.status_code == 303
        assert [e.points for e in _entries(person.id)] == [5]
    else:
        assert response.status_code in (302, 403)
        assert _entries(person.id) == []


@pytest.mark.parametrize("role", ROLES)
def test_only_the_secretary_reverses(client, auth, world, role):
    entry = _award(world.a.volunteer.person, 20, 1)
    if role != "anonymous":
        auth.login(world.a.users[role].username)
    response = client.post(f"/points/entries/{entry.id}/reverse", data={"reason": "错记"})
    rows = _entries(world.a.volunteer.person.id)
    if role == "secretary":
        assert response.status_code == 303
        assert [e.kind for e in rows] == ["patrol", "reversal"]
    else:
        assert response.status_code in (302, 403)
        assert len(rows) == 1


def test_nothing_of_another_community_can_be_changed(client, auth, world):
    b_person = world.b.volunteer.person
    entry = _award(b_person, 20, 1)
    auth.login("secretary_a")
    adjust = client.post(f"{_url(b_person)}/adjust", data={"points": "5", "reason": "x"})
    reverse = client.post(f"/points/entries/{entry.id}/reverse", data={"reason": "x"})
    assert (adjust.status_code, reverse.status_code) == (404, 404)
    assert [e.kind for e in _entries(b_person.id)] == ["patrol"]
    assert _balance(b_person.id) == (20, Decimal("1.00"))


def test_a_post_without_csrf_token_changes_nothing(client, auth, world):
    person = world.a.volunteer.person
    auth.login("secretary_a")
    response = client.post(
        f"{_url(person)}/adjust", data={"points": "5", "reason": "x"}, csrf=False
    )
    assert response.status_code == 400
    assert _entries(person.id) == []


# --- the page ----------------------------------------------------------------------------------


def test_the_page_shows_totals_and_the_history(client, auth, world, pa_english):
    person = world.a.volunteer.person
    earned = _award(person, 20, 1, hours="2.00")
    ledger.adjust(
        person.id, points=-5, hours=Decimal(0), reason="扣除迟到", actor_id=world.a.secretary.id
    )
    db.session.commit()
    auth.login("admin_a")
    body = client.get(_url(person)).get_data(as_text=True)
    assert re.search(r'id="points-balance">15<', body)
    assert re.search(r'id="points-earned">15<', body)
    assert re.search(r'id="points-hours">2.00<', body)
    assert "扣除迟到" in body and world.a.secretary.person.name in body
    assert f'id="entry-{earned.id}"' in body and "Automatic" in body
    # The subdistrict admin reads; no forms.
    assert 'id="adjust-form"' not in body and "Reverse…" not in body


def test_a_person_without_points_shows_zeros(client, auth, world, pa_english):
    auth.login("secretary_a")
    body = client.get(_url(world.a.resident.person)).get_data(as_text=True)
    assert re.search(r'id="points-balance">0<', body)
    assert "No points or hours recorded yet." in body
    assert (
        db.session.get(PointsAccount, world.a.resident.person.id) is None
    )  # reading wrote nothing


def test_volunteer_detail_links_here_for_the_secretary(client, auth, world):
    volunteer = world.a.volunteer.person.volunteer
    auth.login("secretary_a")
    body = client.get(f"/volunteers/{volunteer.id}").get_data(as_text=True)
    assert f'href="/points/people/{world.a.volunteer.person.id}"' in body
    auth.logout()
    auth.login("gridworker_a")
    body = client.get(f"/volunteers/{volunteer.id}").get_data(as_text=True)
    assert "/points/people/" not in body


def test_history_pages_by_keyset_with_fixed_queries(client, auth, world):
    person = world.a.volunteer.person
    for n in range(3):
        _award(person, 1, n + 1)
    auth.login("secretary_a")
    client.get(_url(person))
    with count_queries() as few:
        assert client.get(_url(person)).status_code == 200
    for n in range(3, 30):
        _award(person, 1, n + 1)
    with count_queries() as many:
        body = client.get(_url(person)).get_data(as_text=True)
    assert many["n"] == few["n"]
    ids = [e.id for e in _entries(person.id)]
    shown = [int(i) for i in re.findall(r'id="entry-(\d+)"', body)]
    assert shown == sorted(ids, reverse=True)[:20]
    older = re.search(r'href="(/points/people/\d+\?before=\d+)"', body).group(1)
    body = client.get(older.replace("&amp;", "&")).get_data(as_text=True)
    assert [int(i) for i in re.findall(r'id="entry-(\d+)"', body)] == sorted(ids, reverse=True)[20:]
    assert f'href="/points/people/{person.id}"' in body  # "Newest"
    newer = re.search(r'href="(/points/people/\d+\?after=\d+)"', body).group(1)
    body = client.get(newer).get_data(as_text=True)
    assert [int(i) for i in re.findall(r'id="entry-(\d+)"', body)] == sorted(ids, reverse=True)[:20]
    assert f'href="/points/people/{person.id}?after=' not in body  # nothing newer than this


def test_htmx_pager_answers_the_fragment(client, auth, world):
    person = world.a.volunteer.person
    _award(person, 1, 1)
    auth.login("secretary_a")
    response = client.get(_url(person), headers=HX)
    body = response.get_data(as_text=True)
    assert "<html" not in body and body.lstrip().startswith('<div id="person-points"')
    assert "HX-Request" in response.headers["Vary"]


# --- adjusting ---------------------------------------------------------------------------------


def test_adjustment_is_recorded_with_its_reason_and_author(client, auth, world, pa_english):
    person = world.a.volunteer.person
    auth.login("secretary_a")
    response = client.post(
        f"{_url(person)}/adjust",
        data={"points": "30", "hours": "1.5", "reason": "线下活动补录"},
        follow_redirects=True,
    )
    body = response.get_data(as_text=True)
    assert "Adjustment recorded: +30 points, +1.50 hours." in body
    [entry] = _entries(person.id)
    assert (entry.kind, entry.points, entry.hours, entry.note) == (
        "adjustment", 30, Decimal("1.50"), "线下活动补录",
    )  # fmt: skip
    assert entry.created_by_id == world.a.secretary.id and entry.source_id is None
    assert _balance(person.id) == (30, Decimal("1.50"))
    assert "线下活动补录" in body and world.a.secretary.person.name in body


def test_hours_only_adjustment(client, auth, world):
    person = world.a.volunteer.person
    auth.login("secretary_a")
    client.post(f"{_url(person)}/adjust", data={"points": "", "hours": "2", "reason": "补录时长"})
    assert _balance(person.id) == (0, Decimal("2.00"))


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"points": "10", "reason": ""}, "reason", "Give the reason for the adjustment"),
        ({"points": "10", "reason": "   "}, "reason", "Give the reason for the adjustment"),
        ({"points": "10", "reason": "x" * 201}, "reason", "At most 200 characters."),
        ({"points": "abc", "reason": "补录"}, "points", "Enter a whole number."),
        (
            {"points": "100001", "reason": "补录"},
            "points",
            "Enter a number from -100000 to 100000.",
        ),
        ({"points": "", "hours": "", "reason": "补录"}, "points", "Enter the points or hours"),
        ({"points": "0", "hours": "0", "reason": "补录"}, "points", "Enter the points or hours"),
        (
            {"points": "5", "hours": "101", "reason": "补录"},
            "hours",
            "Enter hours from -100 to 100",
        ),
        ({"points": "5", "hours": "1.255", "reason": "补录"}, "hours", "Enter hours from -100"),
        ({"points": "5", "hours": "two", "reason": "补录"}, "hours", "Enter a number such as 1.5."),
    ],
)
def test_bad_adjustments_change_nothing(client, auth, world, pa_english, data, field, message):
    person = world.a.volunteer.person
    _award(person, 20, 1)
    auth.login("secretary_a")
    response = client.post(f"{_url(person)}/adjust", data=data)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert message in body
    assert re.search(rf'<div class="field has-error" id="field-{field}">', body)
    # What was typed stays in the form.
    if data.get("points"):
        assert f'value="{data["points"]}"' in body
    if data.get("reason", "").strip():
        assert data["reason"] in body
    assert len(_entries(person.id)) == 1
    assert _balance(person.id) == (20, Decimal("1.00"))


def test_an_adjustment_cannot_take_the_balance_below_zero(client, auth, world, pa_english):
    person = world.a.volunteer.person
    _award(person, 20, 1)
    auth.login("secretary_a")
    response = client.post(f"{_url(person)}/adjust", data={"points": "-21", "reason": "扣分"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Not enough points: the balance cannot go below zero." in body
    assert 'value="-21"' in body and "扣分" in body
    assert len(_entries(person.id)) == 1 and _balance(person.id)[0] == 20


def test_a_secretary_cannot_adjust_their_own_points(client, auth, world, pa_english):
    own = world.a.secretary.person
    auth.login("secretary_a")
    body = client.get(_url(own)).get_data(as_text=True)
    assert 'id="adjust-form"' not in body
    response = client.post(f"{_url(own)}/adjust", data={"points": "50", "reason": "自己加分"})
    assert "You cannot correct your own points" in response.get_data(as_text=True)
    assert _entries(own.id) == []


def test_htmx_adjustment_answers_the_fragment_with_a_trigger(client, auth, world, pa_english):
    person = world.a.volunteer.person
    auth.login("secretary_a")
    response = client.post(
        f"{_url(person)}/adjust", data={"points": "7", "reason": "补录"}, headers=HX
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body
    assert response.headers["HX-Trigger"] == "points-changed"
    assert "HX-Request" in response.headers["Vary"]
    assert "Adjustment recorded: +7 points" in body and re.search(r'id="points-balance">7<', body)
    bad = client.post(f"{_url(person)}/adjust", data={"points": "7", "reason": ""}, headers=HX)
    assert bad.status_code == 200 and "HX-Trigger" not in bad.headers
    assert "Give the reason for the adjustment" in bad.get_data(as_text=True)
    assert len(_entries(person.id)) == 1


# --- reversing ---------------------------------------------------------------------------------


def test_reversal_cancels_an_entry_and_shows_in_the_history(client, auth, world, pa_english):
    person = world.a.volunteer.person
    entry = _award(person, 20, 1, hours="2.00")
    auth.login("secretary_a")
    response = client.post(
        f"/points/entries/{entry.id}/reverse", data={"reason": "重复登记"}, follow_redirects=True
    )
    body = response.get_data(as_text=True)
    assert f"Entry No. {entry.id} was reversed (-20 points)." in body
    original, reversal = _entries(person.id)
    assert (reversal.kind, reversal.points, reversal.hours) == ("reversal", -20, Decimal("-2.00"))
    assert (reversal.source_type, reversal.source_id, reversal.note) == (
        "entry",
        entry.id,
        "重复登记",
    )
    assert reversal.created_by_id == world.a.secretary.id
    assert reversal.occurred_on == original.occurred_on
    assert _balance(person.id) == (0, Decimal("0.00"))
    assert "Reversed" in body and f"cancels No. {entry.id}" in body
    # Neither the reversed row nor the reversal offers another reversal.
    assert f'action="/points/entries/{entry.id}/reverse"' not in body
    assert f'action="/points/entries/{reversal.id}/reverse"' not in body


def test_reversal_needs_a_reason_and_keeps_the_page(client, auth, world, pa_english):
    person = world.a.volunteer.person
    entry = _award(person, 20, 1)
    auth.login("secretary_a")
    response = client.post(f"/points/entries/{entry.id}/reverse", data={"reason": " "})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Give the reason for the reversal." in body
    assert re.search(r'<details class="reverse" open>', body)
    assert len(_entries(person.id)) == 1


def test_reversing_twice_is_refused(client, auth, world, pa_english):
    person = world.a.volunteer.person
    entry = _award(person, 20, 1)
    ledger.reverse(entry, reason="第一次", actor_id=world.a.secretary.id)
    db.session.commit()
    auth.login("secretary_a")
    response = client.post(f"/points/entries/{entry.id}/reverse", data={"reason": "第二次"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "This entry was already reversed." in body
    assert len(_entries(person.id)) == 2 and _balance(person.id)[0] == 0


def test_a_reversal_that_would_go_below_zero_is_refused(client, auth, world, pa_english):
    person = world.a.volunteer.person
    entry = _award(person, 20, 1)
    ledger.adjust(person.id, points=-15, hours=Decimal(0), reason="兑换", actor_id=None)
    db.session.commit()
    auth.login("secretary_a")
    response = client.post(
        f"/points/entries/{entry.id}/reverse", data={"reason": "错记"}, headers=HX
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "HX-Trigger" not in response.headers
    assert "Not enough points" in body and 'value="错记"' in body
    assert len(_entries(person.id)) == 2 and _balance(person.id)[0] == 5


def test_a_redemption_is_not_reversed_here(client, auth, world, pa_english):
    person = world.a.volunteer.person
    _award(person, 50, 1)
    redemption = ledger.post_entry(
        person.id, kind="redemption", source_type="redemption", source_id=1, points=-30
    )
    db.session.commit()
    auth.login("secretary_a")
    body = client.get(_url(person)).get_data(as_text=True)
    assert f'action="/points/entries/{redemption.id}/reverse"' not in body
    response = client.post(f"/points/entries/{redemption.id}/reverse", data={"reason": "退"})
    assert "Cancel a redemption in the rewards shop" in response.get_data(as_text=True)
    assert len(_entries(person.id)) == 2 and _balance(person.id)[0] == 20


def test_reversal_keeps_the_history_page(client, auth, world):
    person = world.a.volunteer.person
    entries = [_award(person, 1, n + 1) for n in range(25)]
    auth.login("secretary_a")
    oldest = entries[0]
    before = entries[5].id
    response = client.post(
        f"/points/entries/{oldest.id}/reverse?before={before}", data={"reason": "错"}
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/points/people/{person.id}?before={before}")
    assert (
        db.session.scalar(select(func.count(PointsEntry.id)).where(PointsEntry.kind == "reversal"))
        == 1
    )


def test_a_secretary_of_the_same_community_reverses_any_persons_entry(client, auth, world):
    other = factories.make_user("volunteer", world.a.community)
    entry = _award(other.person, 10, 1)
    auth.login("secretary_a")
    assert (
        client.post(f"/points/entries/{entry.id}/reverse", data={"reason": "错"}).status_code == 303
    )
    assert _balance(other.person.id)[0] == 0
