"""The community ledger for staff: filters, keyset pages with a fixed number of queries, the
CSV/XLSX export (never a phone number), and the staff leaderboard export."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from portal.core.timeutil import local_today
from portal.extensions import db
from portal.points import ledger
from portal.points.models import PointsAccount, PointsTally
from tests import factories
from tests.helpers import count_queries

ROLES = ("anonymous", "resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin")
URL = "/points/ledger"
HX = {"HX-Request": "true"}
EXPORTS = ("/points/ledger/export.csv", "/points/ledger/export.xlsx")
BOARD_EXPORTS = ("/points/leaderboard/export.csv", "/points/leaderboard/export.xlsx")


@pytest.fixture
def pa_english(client):
    assert client.post("/language", data={"lang": "en"}).status_code == 303


_sources = iter(range(1, 10**6))


def _award(person, points, *, day=None, hours="1.00", kind="patrol", note=""):
    entry = ledger.award(
        person.id,
        kind=kind,
        source_type="request" if kind in ("help", "mediation") else "signup",
        source_id=next(_sources),
        base_points=Decimal(points),
        hours=Decimal(hours),
        occurred_on=day or local_today(),
        note=note,
    )
    db.session.commit()
    return entry


def _ids(body: str) -> list[int]:
    return [int(i) for i in re.findall(r'id="entry-(\d+)"', body)]


def _csv(response) -> list[list[str]]:
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def _xlsx_text(response) -> str:
    with zipfile.ZipFile(io.BytesIO(response.get_data())) as book:
        return "".join(
            book.read(name).decode() for name in book.namelist() if name.endswith(".xml")
        )


# --- access ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", [URL, *EXPORTS, *BOARD_EXPORTS])
def test_who_may_read_the_ledger(client, auth, world, role, url):
    if role != "anonymous":
        auth.login(world.a.users[role].username)
    response = client.get(url)
    expected = {"anonymous": 302, "secretary": 200, "subdistrict_admin": 200}.get(role, 403)
    assert response.status_code == expected


@pytest.mark.parametrize("url", ["/points/ledger/export.json", "/points/leaderboard/export.pdf"])
def test_unknown_export_format_is_not_found(client, auth, world, url):
    auth.login("secretary_a")
    assert client.get(url).status_code == 404


def test_only_the_viewers_communities_appear(client, auth, world):
    mine = _award(world.a.volunteer.person, 10)
    theirs = _award(world.b.volunteer.person, 10)
    for username in ("secretary_a", "admin_a"):
        auth.login(username)
        body = client.get(URL).get_data(as_text=True)
        assert _ids(body) == [mine.id] and theirs.id not in _ids(body)
        assert world.b.volunteer.person.name not in body
        rows = _csv(client.get(EXPORTS[0]))
        assert [int(r[0]) for r in rows[1:]] == [mine.id]
        auth.logout()


def test_a_subdistrict_admin_sees_every_community_of_the_subdistrict(client, auth, world):
    sibling = factories.make_community(world.a.subdistrict, name="社区C")
    c_user = factories.make_user("volunteer", sibling)
    in_a = _award(world.a.volunteer.person, 10)
    in_c = _award(c_user.person, 10)
    auth.login("admin_a")
    body = client.get(URL).get_data(as_text=True)
    assert _ids(body) == [in_c.id, in_a.id]
    assert 'name="community"' in body  # several communities: a filter for them
    body = client.get(URL, query_string={"community": sibling.id}).get_data(as_text=True)
    assert _ids(body) == [in_c.id]
    auth.logout()
    auth.login("secretary_a")
    body = client.get(URL, query_string={"community": sibling.id}).get_data(as_text=True)
    assert _ids(body) == []  # another community's filter finds nothing


# --- filters and pages -------------------------------------------------------------------------


def test_filters_by_kind_dates_and_name(client, auth, world, pa_english):
    alice = factories.make_user("volunteer", world.a.community, name="王小明")
    bob = factories.make_user("volunteer", world.a.community, name="李大华")
    old = _award(alice.person, 10, day=date(2026, 1, 5))
    mid = _award(bob.person, 20, day=date(2026, 3, 5), kind="help")
    new = _award(alice.person, 30, day=date(2026, 6, 5))
    adj = ledger.adjust(
        bob.person.id, points=5, hours=Decimal(0), reason="补录", actor_id=world.a.secretary.id
    )
    db.session.commit()
    auth.login("secretary_a")

    def shown(**args):
        return _ids(client.get(URL, query_string=args).get_data(as_text=True))

    assert shown() == [adj.id, new.id, mid.id, old.id]
    assert shown(kind="help") == [mid.id]
    assert shown(kind="adjustment") == [adj.id]
    assert shown(kind="nonsense") == [adj.id, new.id, mid.id, old.id]  # unknown: any
    assert shown(date_from="2026-03-01", date_to="2026-06-30") == [new.id, mid.id]
    assert shown(date_from="2026-03-06", date_to="2026-03-01") == []
    assert shown(date_from="not a date") == [adj.id, new.id, mid.id, old.id]
    assert shown(q="小明") == [new.id, old.id]
    assert shown(q="小明", kind="patrol", date_to="2026-02-01") == [old.id]
    assert shown(q="%") == []  # LIKE wildcards are matched literally
    body = client.get(URL, query_string={"kind": "adjustment"}).get_data(as_text=True)
    assert "补录" in body and world.a.secretary.person.name in body and "Adjustment" in body
    # The export links keep the filters.
    assert 'href="/points/ledger/export.csv?kind=adjustment"' in body


def test_reversed_rows_are_marked(client, auth, world, pa_english):
    entry = _award(world.a.volunteer.person, 10)
    reversal = ledger.reverse(entry, reason="错记", actor_id=world.a.secretary.id)
    db.session.commit()
    auth.login("secretary_a")
    body = client.get(URL).get_data(as_text=True)
    row = body[body.index(f'id="entry-{entry.id}"') :]
    assert "Reversed" in row[: row.index("</tr>")]
    assert f"cancels No. {entry.id}" in body and f'id="entry-{reversal.id}"' in body


def test_keyset_pages_with_a_fixed_number_of_queries(client, auth, world):
    people = [factories.make_user("volunteer", world.a.community).person for _ in range(3)]
    for person in people:
        _award(person, 5)
    auth.login("admin_a")
    client.get(URL)
    with count_queries() as few:
        assert client.get(URL).status_code == 200
    more = [factories.make_user("volunteer", world.a.community).person for _ in range(27)]
    entries = [_award(p, 5) for p in more]
    with count_queries() as many:
        body = client.get(URL).get_data(as_text=True)
    assert many["n"] == few["n"]
    assert len(_ids(body)) == 20 and _ids(body)[0] == entries[-1].id
    older = re.search(r'href="/points/ledger\?before=(\d+)"', body).group(1)
    with count_queries() as deep:
        second = client.get(URL, query_string={"before": older}).get_data(as_text=True)
    assert deep["n"] == few["n"]
    assert len(_ids(second)) == 10 and 'href="/points/ledger?before=' not in second
    # An htmx page swap answers the list only.
    fragment = client.get(URL, query_string={"before": older}, headers=HX)
    text = fragment.get_data(as_text=True)
    assert "<html" not in text and text.lstrip().startswith('<div id="ledger-results"')
    assert "HX-Request" in fragment.headers["Vary"]


def test_nonsense_cursors_are_ignored(client, auth, world):
    entry = _award(world.a.volunteer.person, 5)
    auth.login("secretary_a")
    for cursor in ("abc", "-1", str(2**64), "1e9"):
        body = client.get(URL, query_string={"before": cursor}).get_data(as_text=True)
        assert _ids(body) == [entry.id]


# --- the ledger export ------------------------------------------------------------------------


def test_export_honours_the_filters_and_holds_no_phone(client, auth, world, pa_english):
    person = world.a.volunteer.person
    award = _award(person, 10, day=date(2026, 5, 1), hours="2.50", note="夜间巡逻")
    adj = ledger.adjust(
        person.id,
        points=-3,
        hours=Decimal(0),
        reason="=HYPERLINK(1)",
        actor_id=world.a.secretary.id,
    )
    db.session.commit()
    auth.login("secretary_a")
    response = client.get(EXPORTS[0])
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="points-ledger-'
    )
    rows = _csv(response)
    assert rows[0][:7] == ["Entry No.", "Date", "Name", "Community", "Kind", "Points", "Hours"]
    by_id = {int(r[0]): r for r in rows[1:]}
    assert by_id[award.id][1:9] == [
        "2026-05-01", person.name, world.a.community.name, "Patrol", "10", "2.50", "夜间巡逻",
        "signup",
    ]  # fmt: skip
    assert by_id[adj.id][5] == "-3" and by_id[adj.id][7] == "'=HYPERLINK(1)"
    assert by_id[adj.id][10] == world.a.secretary.person.name
    text = response.get_data(as_text=True)
    assert person.phone not in text and world.a.secretary.person.phone not in text
    filtered = _csv(client.get(EXPORTS[0], query_string={"kind": "adjustment"}))
    assert [int(r[0]) for r in filtered[1:]] == [adj.id]
    xlsx = client.get(EXPORTS[1], query_string={"date_from": "2026-05-01", "date_to": "2026-05-01"})
    assert xlsx.mimetype.endswith("spreadsheetml.sheet")
    content = _xlsx_text(xlsx)
    assert person.name in content and "夜间巡逻" in content and "HYPERLINK" not in content
    assert person.phone not in content


# --- the staff leaderboard export --------------------------------------------------------------


def _tally_time(person, period: str, when) -> None:
    db.session.execute(
        update(PointsTally)
        .where(PointsTally.person_id == person.id, PointsTally.period == period)
        .values(last_earned_at=when)
    )
    db.session.commit()


def test_leaderboard_export_ranks_everyone_with_full_names(client, auth, world, pa_english):
    today = local_today()
    a = world.a
    names = ["张三丰", "李四光", "王五常", "赵六合", "钱七星"]
    people = [factories.make_user("volunteer", a.community, name=n).person for n in names]
    factories.make_volunteer(people[0], grid_id=a.grid.id)
    zhang, li, wang, zhao, qian = people
    _award(zhang, 50, hours="2.00")
    _award(li, 50, hours="3.00")  # equal points, more hours: ranks first
    _award(wang, 40, hours="1.00")
    _award(zhao, 40, hours="1.00")  # equal points and hours: whoever got there first
    _award(qian, 100, day=today.replace(day=1) - timedelta(days=40))  # not this month
    _award(world.b.volunteer.person, 500)  # another community
    nobody = factories.make_user("volunteer", a.community, name="孙无分").person
    ledger.adjust(nobody.id, points=0, hours=Decimal(1), reason="时长", actor_id=None)
    db.session.commit()
    month = f"{today.year:04d}-{today.month:02d}"
    base = db.session.get(PointsTally, (wang.id, month)).last_earned_at
    _tally_time(wang, month, base + timedelta(minutes=5))
    _tally_time(zhao, month, base)
    db.session.execute(
        update(PointsAccount).where(PointsAccount.person_id == li.id).values(listed=True)
    )
    db.session.commit()
    auth.login("secretary_a")
    rows = _csv(client.get(BOARD_EXPORTS[0], query_string={"period": "month"}))
    assert rows[0] == [
        "Rank", "Name", "Community", "Grid", "Points", "Hours", "Activities",
        "Shown on leaderboard",
    ]  # fmt: skip
    assert [r[:2] for r in rows[1:]] == [
        ["1", "李四光"],
        ["2", "张三丰"],
        ["3", "赵六合"],
        ["4", "王五常"],
    ]
    assert rows[1][4:] == ["50", "3.00", "1", "yes"] and rows[2][7] == "no"
    assert rows[2][3] == a.grid.name and rows[1][3] == ""
    everything = _csv(client.get(BOARD_EXPORTS[0], query_string={"period": "all"}))
    assert [r[1] for r in everything[1:]][0] == "钱七星"
    assert "孙无分" not in {r[1] for r in everything[1:]}  # no points: not ranked
    assert world.b.volunteer.person.name not in {r[1] for r in everything[1:]}
    xlsx = _xlsx_text(client.get(BOARD_EXPORTS[1], query_string={"period": "year"}))
    assert "李四光" in xlsx and zhang.phone not in xlsx


def test_leaderboard_export_unknown_period_means_this_month(client, auth, world):
    today = local_today()
    old = factories.make_user("volunteer", world.a.community, name="周旧月").person
    _award(old, 10, day=today.replace(day=1) - timedelta(days=40))
    auth.login("secretary_a")
    rows = _csv(client.get(BOARD_EXPORTS[0], query_string={"period": "forever"}))
    assert rows[1:] == []
    assert (
        client.get(BOARD_EXPORTS[0], query_string={"period": "month"})
        .headers["Content-Disposition"]
        .endswith(f'leaderboard-{today.year:04d}-{today.month:02d}.csv"')
    )
