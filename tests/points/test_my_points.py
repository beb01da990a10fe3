"""My points: the totals, the monthly chart, the history with its filters and pager, the
leaderboard consent, htmx fragments, access for every role, and a fixed number of queries."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.core.timeutil import local_today
from portal.extensions import db
from portal.points import ledger
from portal.points.models import PointsAccount
from portal.points.queries import last_months
from tests.helpers import count_queries, reload
from tests.points.conftest import HX

ROLES = ("resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin")


def _stat(page: str, name: str) -> str:
    return re.search(rf'id="points-{name}">([^<]*)<', page).group(1).strip()


def _entry_ids(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="entry-(\d+)"', page)]


def _last_month(today: date) -> date:
    return today.replace(day=1) - timedelta(days=1)


def _redeem(person, points: int, source_id: int = 1):
    """A redemption row (the rewards shop's way of spending): lowers the balance, not earnings."""
    entry = ledger.post_entry(
        person.id,
        kind="redemption",
        source_type="redemption",
        source_id=source_id,
        points=-points,
        note="米一袋",
    )
    db.session.commit()
    return entry


def test_totals_balance_hours_month_and_all_time(client, auth, world, award_rows, english):
    person = world.a.volunteer.person
    today = local_today()
    award_rows(person, 30, "2.5", kind="patrol")
    award_rows(person, 20, 1, kind="help", day=_last_month(today))
    ledger.adjust(
        person.id, points=-5, hours=Decimal(0), reason="重复记录", actor_id=world.a.secretary.id
    )
    db.session.commit()
    _redeem(person, 10)
    auth.login("volunteer_a")
    page = client.get("/points").get_data(as_text=True)
    assert _stat(page, "balance") == "35"  # 30 + 20 - 5 - 10
    assert _stat(page, "hours") == "3.5"
    assert _stat(page, "month") == "25"  # this month's earnings and corrections, not spending
    assert "2.5 hours" in _stat(page, "month-hours")
    assert _stat(page, "earned") == "45"
    account = reload(PointsAccount, person.id)
    assert (account.balance, account.earned, account.hours) == (35, 45, Decimal("3.50"))


def test_monthly_chart_states_every_number(client, auth, world, award_rows):
    person = world.a.volunteer.person
    today = local_today()
    award_rows(person, 30, 2, kind="patrol")
    award_rows(person, 12, "1.5", kind="door_watch", day=_last_month(today))
    award_rows(person, 99, 9, kind="patrol", day=today.replace(year=today.year - 2, day=1))
    auth.login("volunteer_a")
    page = client.get("/points").get_data(as_text=True)
    svg = re.search(r"<svg class=\"chart\".*?</svg>", page, re.S).group(0)
    assert svg.count('<rect class="bar"') == 12
    assert "<script" not in svg and "style=" not in svg
    rows = dict(re.findall(r'<th scope="row">([\d-]+)</th><td>(-?\d+)</td>', page))
    months = [m.strftime("%Y-%m") for m in last_months(today)]
    assert list(rows) == list(reversed(months))  # the table: newest month first
    assert rows[months[-1]] == "30" and rows[months[-2]] == "12"
    assert sum(int(v) for v in rows.values()) == 42  # two years ago is not in the chart
    # The tallest bar is this month's; last month's is 12/30 of it.
    heights = [int(h) for h in re.findall(r'<rect class="bar"[^>]*height="(\d+)"', svg)]
    assert heights[-1] == 120 and heights[-2] == 48 and heights[:-2] == [0] * 10
    assert f"{months[-2]}: 12" in svg  # the description says the same numbers


def test_history_filters_by_kind_group_and_date(client, auth, world, award_rows):
    person = world.a.volunteer.person
    today = local_today()
    early = today - timedelta(days=40)
    patrol = award_rows(person, 10, 1, kind="patrol", day=early)[0]
    door = award_rows(person, 10, 1, kind="door_watch")[0]
    help_ = award_rows(person, 15, 1, kind="help")[0]
    adjustment = ledger.adjust(
        person.id, points=3, hours=Decimal(0), reason="补录", actor_id=world.a.secretary.id
    )
    db.session.commit()
    auth.login("volunteer_a")

    def shown(query: str) -> set[int]:
        response = client.get(f"/points?{query}")
        assert response.status_code == 200
        return set(_entry_ids(response.get_data(as_text=True)))

    every = {patrol.id, door.id, help_.id, adjustment.id}
    assert shown("") == every
    assert shown("kind=duty") == {patrol.id, door.id}
    assert shown("kind=help") == {help_.id}
    assert shown("kind=correction") == {adjustment.id}
    assert shown("kind=redemption") == set()
    assert shown(f"date_to={(today - timedelta(days=1)).isoformat()}") == {patrol.id}
    assert shown(f"date_from={(early + timedelta(days=1)).isoformat()}") == every - {patrol.id}
    assert shown(f"kind=duty&date_from={today.isoformat()}&date_to={today.isoformat()}") == {
        door.id
    }
    # Dates the wrong way round are read the right way round; nonsense means "any".
    assert shown(f"date_from={today.isoformat()}&date_to={early.isoformat()}") == every
    assert shown("kind=nonsense&date_from=yesterday&date_to=2026-13-45") == every


def test_history_rows_and_reversed_marker(client, auth, world, award_rows, english):
    person = world.a.volunteer.person
    entry = award_rows(person, 40, "3", kind="patrol", note="夜间巡逻")[0]
    reversal = ledger.reverse(entry, reason="未到岗", actor_id=world.a.secretary.id)
    kept = award_rows(person, 7, 0, kind="party_report")[0]
    db.session.commit()
    auth.login("volunteer_a")
    page = client.get("/points").get_data(as_text=True)

    def row(entry_id: int) -> str:
        return re.search(rf'<tr id="entry-{entry_id}".*?</tr>', page, re.S).group(0)

    original = row(entry.id)
    assert 'class="reversed"' in original and "Reversed" in original
    assert "Patrol" in original and "夜间巡逻" in original and "+40" in original
    assert ">3<" in original
    opposite = row(reversal.id)
    assert "Correction (reversal)" in opposite and "未到岗" in opposite and "-40" in opposite
    assert "Reversed" not in opposite
    other = row(kept.id)
    assert "Reversed" not in other and "Party member reporting" in other
    assert _stat(page, "balance") == "7"


def test_history_pagination_newest_first(client, auth, world, award_rows, english):
    person = world.a.volunteer.person
    today = local_today()
    entries = []
    for n in range(25):
        entries += award_rows(person, n + 1, 0, day=today - timedelta(days=n))
    auth.login("volunteer_a")
    first = client.get("/points").get_data(as_text=True)
    assert _entry_ids(first) == [e.id for e in entries[:20]]  # newest (today) first
    assert "25 entries found." in first and "Page 1 of 2" in first
    second = client.get("/points?page=2").get_data(as_text=True)
    assert _entry_ids(second) == [e.id for e in entries[20:]]
    # The pager keeps the filters and swaps only the history.
    filtered = client.get("/points?kind=duty").get_data(as_text=True)
    assert 'href="/points?page=2&amp;kind=duty"' in filtered
    assert 'hx-get="/points?page=2&amp;kind=duty" hx-target="#history"' in filtered
    assert client.get("/points?page=99").status_code == 200
    assert client.get("/points?page=abc").status_code == 200


def test_only_own_entries(client, auth, world, award_rows):
    mine = award_rows(world.a.volunteer.person, 5)[0]
    theirs = award_rows(world.a.resident.person, 6)[0]
    auth.login("volunteer_a")
    ids = _entry_ids(client.get("/points").get_data(as_text=True))
    assert mine.id in ids and theirs.id not in ids


def test_history_fragment_for_htmx(client, auth, world, award_rows):
    award_rows(world.a.volunteer.person, 5, kind="help")
    auth.login("volunteer_a")
    page = client.get("/points").get_data(as_text=True)
    form = re.search(r'<form class="filters"[^>]*>', page).group(0)
    assert 'method="get"' in form and 'action="/points"' in form
    assert 'hx-target="#history"' in form
    response = client.get("/points?kind=help", headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in body and body.lstrip().startswith('<div id="history">')
    assert "HX-Request" in response.headers["Vary"]
    assert len(_entry_ids(body)) == 1
    # A boosted request or a history restore gets the whole page.
    boosted = client.get("/points", headers={**HX, "HX-Boosted": "true"})
    assert "<html" in boosted.get_data(as_text=True)


def test_empty_page(client, auth, world, english):
    auth.login("resident_a")
    page = client.get("/points").get_data(as_text=True)
    assert _stat(page, "balance") == "0" and _stat(page, "earned") == "0"
    assert "No points yet." in page
    assert 'id="listing"' in page
    assert reload(PointsAccount, world.a.resident.person.id) is None  # a GET writes nothing


def test_listing_toggle(client, auth, world, english):
    person = world.a.volunteer.person
    auth.login("volunteer_a")
    masked = person.name[0] + "*" * (len(person.name) - 2) + person.name[-1]
    page = client.get("/points").get_data(as_text=True)
    assert f"Show me on leaderboards (name masked as {masked})" in page
    assert (
        person.name not in re.search(r'<section class="card listing".*?</section>', page, re.S)[0]
    )

    response = client.post("/points/listing", data={"listed": "y"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/points#listing"
    account = reload(PointsAccount, person.id)  # made by the consent itself
    assert account.listed is True and account.listed_at is not None
    assert (account.balance, account.earned) == (0, 0)
    page = client.get("/points").get_data(as_text=True)
    assert "You are now shown on leaderboards" in page  # the flash
    assert "Shown on leaderboards" in page and "Stop showing me on leaderboards" in page

    given = account.listed_at
    client.post("/points/listing", data={"listed": "y"})  # again: the first consent's time stays
    assert reload(PointsAccount, person.id).listed_at == given

    response = client.post("/points/listing", data={})
    assert response.status_code == 303
    account = reload(PointsAccount, person.id)
    assert account.listed is False and account.listed_at is None
    page = client.get("/points").get_data(as_text=True)
    assert "You are no longer shown on leaderboards." in page
    assert "You are not shown on leaderboards." in page


def test_listing_keeps_the_balance(client, auth, world, award_rows):
    person = world.a.volunteer.person
    award_rows(person, 25, 2)
    auth.login("volunteer_a")
    client.post("/points/listing", data={"listed": "y"})
    account = reload(PointsAccount, person.id)
    assert (account.balance, account.earned, account.hours, account.listed) == (
        25,
        25,
        Decimal("2.00"),
        True,
    )


def test_listing_htmx_answers_the_fragment(client, auth, world, english):
    auth.login("volunteer_a")
    response = client.post("/points/listing", data={"listed": "y"}, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in body
    assert re.match(r'\s*<section class="card listing" id="listing"', body)
    assert "You are now shown on leaderboards" in body
    assert response.headers["HX-Trigger"] == "listing-changed"
    assert "HX-Request" in response.headers["Vary"]
    assert reload(PointsAccount, world.a.volunteer.person.id).listed is True
    page = client.get("/points").get_data(as_text=True)
    form = re.search(r'<form method="post" action="/points/listing"[^>]*>', page, re.S).group(0)
    assert 'hx-post="/points/listing"' in form and 'hx-target="#listing"' in form
    assert 'name="csrf_token"' in page


def test_listing_needs_csrf(client, auth, world):
    auth.login("volunteer_a")
    response = client.post("/points/listing", data={"listed": "y"}, csrf=False)
    assert response.status_code == 400
    assert reload(PointsAccount, world.a.volunteer.person.id) is None


@pytest.mark.parametrize("role", ("anonymous", *ROLES))
def test_access_for_every_role(client, auth, world, role):
    if role != "anonymous":
        auth.login(world.a.users[role].username)
    page = client.get("/points")
    listing = client.post("/points/listing", data={"listed": "y"})
    if role == "anonymous":
        assert page.status_code == 302 and page.headers["Location"].startswith("/login")
        assert listing.status_code == 302 and listing.headers["Location"].startswith("/login")
        htmx = client.get("/points", headers=HX)
        assert htmx.headers["HX-Redirect"].startswith("/login")
    elif role == "subdistrict_admin":
        # Staff without a person record have no points.
        assert page.status_code == 404 and listing.status_code == 404
        assert db.session.scalar(select(func.count()).select_from(PointsAccount)) == 0
    else:
        assert page.status_code == 200 and listing.status_code == 303
        person = world.a.users[role].person
        assert reload(PointsAccount, person.id).listed is True


def test_fixed_number_of_queries(client, auth, world, award_rows):
    person = world.a.volunteer.person
    today = local_today()
    auth.login("volunteer_a")

    def queries(url: str, headers=None) -> int:
        with count_queries() as counter:
            assert client.get(url, headers=headers or {}).status_code == 200
        return counter["n"]

    entries = award_rows(person, 5, 1, count=3)
    ledger.reverse(entries[0], reason="x", actor_id=world.a.secretary.id)
    db.session.commit()
    few = (queries("/points"), queries("/points?kind=duty", HX))
    for n in range(40):
        award_rows(person, 3, "0.5", day=today - timedelta(days=n * 11), kind="door_watch")
    entries = award_rows(person, 5, 1, count=3, kind="help")
    for entry in entries:
        ledger.reverse(entry, reason="y", actor_id=world.a.secretary.id)
    db.session.commit()
    many = (queries("/points"), queries("/points?kind=duty", HX))
    assert many == few
    assert queries("/points?page=2") == few[0]
    assert few[0] <= 9
