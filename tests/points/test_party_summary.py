"""The party members' annual summary: one row per approved party-member volunteer with the
year's activities, hours and points (zeros when none), its pages and its export."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from decimal import Decimal

import pytest

from portal.core.timeutil import local_today
from portal.extensions import db
from portal.points import ledger
from tests import factories
from tests.helpers import count_queries

ROLES = ("anonymous", "resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin")
URL = "/points/party"
HX = {"HX-Request": "true"}


@pytest.fixture
def pa_english(client):
    assert client.post("/language", data={"lang": "en"}).status_code == 303


_sources = iter(range(1, 10**6))


def _member(side, name, *, status="approved", types=("party_member",), **kw):
    user = factories.make_user("volunteer", side.community, name=name)
    volunteer = factories.make_volunteer(
        user.person,
        types,
        status=status,
        grid_id=kw.pop("grid_id", side.grid.id),
        employer=kw.pop("employer", "市第一医院"),
        party_branch=kw.pop("party_branch", "医院第二党支部"),
        party_reported_on=kw.pop("party_reported_on", date(2025, 3, 1)),
        **kw,
    )
    return volunteer


def _award(person, points, day, hours="1.00"):
    ledger.award(
        person.id,
        kind="patrol",
        source_type="signup",
        source_id=next(_sources),
        base_points=Decimal(points),
        hours=Decimal(hours),
        occurred_on=day,
    )
    db.session.commit()


def _csv(response) -> list[list[str]]:
    text = response.get_data(as_text=True)
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def _row(body: str, volunteer) -> str:
    start = body.index(f'id="party-{volunteer.id}"')
    return body[start : body.index("</tr>", start)]


def _cells(row: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)
    ]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", [URL, "/points/party/export.csv", "/points/party/export.xlsx"])
def test_who_may_read_the_summary(client, auth, world, role, url):
    if role != "anonymous":
        auth.login(world.a.users[role].username)
    expected = {"anonymous": 302, "secretary": 200, "subdistrict_admin": 200}.get(role, 403)
    assert client.get(url).status_code == expected


def test_one_row_per_approved_party_member_with_the_years_figures(client, auth, world, pa_english):
    year = local_today().year
    a = world.a
    busy = _member(a, "陈党员", types=("party_member", "red_armband"))
    idle = _member(a, "林党员", grid_id=a.grid2.id, party_branch="街道机关支部")
    _member(a, "许待批", status="pending")
    _member(a, "郑红袖", types=("red_armband",))
    other = _member(world.b, "外社区党员")
    _award(busy.person, 20, date(year, 1, 10), hours="2.00")
    _award(busy.person, 15, date(year, 2, 10), hours="1.50")
    _award(busy.person, 99, date(year - 1, 12, 31), hours="9.00")  # last year
    _award(other.person, 50, date(year, 1, 10))
    auth.login("secretary_a")
    body = client.get(URL).get_data(as_text=True)
    assert "2 party members in" in body
    assert sorted(re.findall(r'id="party-(\d+)"', body)) == sorted([str(busy.id), str(idle.id)])
    assert _cells(_row(body, busy)) == [
        "陈党员", "医院第二党支部", "2025-03-01", a.grid.name, "2", "3.50", "35",
    ]  # fmt: skip
    assert _cells(_row(body, idle)) == [
        "林党员", "街道机关支部", "2025-03-01", a.grid2.name, "0", "0.00", "0",
    ]  # fmt: skip
    for absent in ("许待批", "郑红袖", "外社区党员"):
        assert absent not in body
    last_year = client.get(URL, query_string={"year": year - 1}).get_data(as_text=True)
    assert _cells(_row(last_year, busy))[-3:] == ["1", "9.00", "99"]


def test_years_offered_are_this_one_and_four_before(client, auth, world):
    year = local_today().year
    auth.login("admin_a")
    body = client.get(URL).get_data(as_text=True)
    offered = re.findall(r'<option[^>]*value="(\d{4})"', body)
    assert offered == [str(year - n) for n in range(5)]
    assert re.search(rf'<option selected value="{year}"|<option value="{year}" selected', body)
    for nonsense in ("1999", str(year + 1), "abc", str(10**30)):
        response = client.get(URL, query_string={"year": nonsense})
        assert response.status_code == 200
        assert re.search(
            rf'<option selected value="{year}"|<option value="{year}" selected',
            response.get_data(as_text=True),
        )


def test_pages_run_a_fixed_number_of_queries(client, auth, world):
    year = local_today().year
    members = [_member(world.a, f"党员{n:02d}") for n in range(3)]
    for m in members:
        _award(m.person, 5, date(year, 1, 2))
    auth.login("secretary_a")
    client.get(URL)
    with count_queries() as few:
        assert client.get(URL).status_code == 200
    for n in range(3, 30):
        m = _member(world.a, f"党员{n:02d}")
        _award(m.person, 5, date(year, 1, 2))
    with count_queries() as many:
        body = client.get(URL).get_data(as_text=True)
    assert many["n"] == few["n"]
    assert len(re.findall(r'id="party-\d+"', body)) == 20
    second = client.get(URL, query_string={"page": 2}, headers=HX)
    text = second.get_data(as_text=True)
    assert "<html" not in text and len(re.findall(r'id="party-\d+"', text)) == 10


def test_export_for_the_branch(client, auth, world, pa_english):
    year = local_today().year
    member = _member(world.a, "陈党员")
    idle = _member(world.a, "林党员", employer="区税务局")
    _award(member.person, 20, date(year, 3, 3), hours="2.25")
    auth.login("secretary_a")
    response = client.get("/points/party/export.csv", query_string={"year": year})
    assert response.headers["Content-Disposition"].endswith(f'party-members-{year}.csv"')
    rows = _csv(response)
    assert rows[0] == [
        "Name", "Community", "Party branch", "Employer", "Reported on", "Grid", "Activities",
        "Hours", "Points",
    ]  # fmt: skip
    by_name = {r[0]: r for r in rows[1:]}
    assert by_name["陈党员"] == [
        "陈党员", world.a.community.name, "医院第二党支部", "市第一医院", "2025-03-01",
        world.a.grid.name, "1", "2.25", "20",
    ]  # fmt: skip
    assert by_name["林党员"][3] == "区税务局" and by_name["林党员"][6:] == ["0", "0.00", "0"]
    text = response.get_data(as_text=True)
    assert member.person.phone not in text and idle.person.phone not in text
    xlsx = client.get("/points/party/export.xlsx", query_string={"year": year - 1})
    assert xlsx.status_code == 200 and xlsx.mimetype.endswith("spreadsheetml.sheet")


def test_a_subdistrict_admin_filters_by_community(client, auth, world):
    sibling = factories.make_community(world.a.subdistrict, name="社区C")
    factories.make_grid(sibling, name="C一网格")
    in_a = _member(world.a, "甲党员")
    c_user = factories.make_user("volunteer", sibling, name="丙党员")
    in_c = factories.make_volunteer(
        c_user.person, ("party_member",), party_branch="丙支部", employer="丙单位"
    )
    auth.login("admin_a")
    body = client.get(URL).get_data(as_text=True)
    assert f'id="party-{in_a.id}"' in body and f'id="party-{in_c.id}"' in body
    assert "社区C" in body  # the community column shows with several communities
    only_c = client.get(URL, query_string={"community": sibling.id}).get_data(as_text=True)
    assert f'id="party-{in_a.id}"' not in only_c and f'id="party-{in_c.id}"' in only_c
    rows = _csv(client.get("/points/party/export.csv", query_string={"community": sibling.id}))
    assert [r[0] for r in rows[1:]] == ["丙党员"]
    auth.logout()
    auth.login("admin_b")
    assert "甲党员" not in client.get(URL).get_data(as_text=True)
