"""Leaderboards: order and the tie rule, masked names, consent, scopes, periods, the type filter,
ids of elsewhere, access for every role, the viewer's place, htmx, and a fixed number of queries."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import update

from portal.core.timeutil import local_today
from portal.core.validators import mask_name
from portal.extensions import db
from portal.points import ledger
from portal.points.models import PointsTally
from tests import factories
from tests.helpers import count_queries
from tests.points.conftest import HX

ROLES = ("resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin")
# First characters that nobody else in the world fixture has, so masked names are unique.
NAMES = "甲乙丙丁戊己庚辛壬癸"


@pytest.fixture
def member(award_rows, listed):
    """``member(side, name, points, hours=0, grid=None, types=..., shown=True, day=None)``:
    an approved volunteer of ``side`` with points, listed on leaderboards unless ``shown=False``."""

    def make(side, name, points=0, hours=0, *, grid=None, types=("red_armband",), shown=True,
             day=None):  # fmt: skip
        person = factories.make_person(side.community, name=name)
        factories.make_volunteer(person, types, grid_id=(grid or side.grid).id)
        if points:
            award_rows(person, points, hours, day=day)
        if shown:
            listed(person)
        return person

    return make


def board(client, query: str = "", headers=None) -> list[tuple[int, str, str]]:
    """(rank, masked name, points) of every row shown."""
    response = client.get(f"/points/leaderboard?{query}", headers=headers or {})
    assert response.status_code == 200, query
    return rows_of(response.get_data(as_text=True))


def rows_of(page: str) -> list[tuple[int, str, str]]:
    found = []
    for rank, row in re.findall(r'<tr id="rank-(\d+)"[^>]*>(.*?)</tr>', page, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        name = re.sub(r"<.*", "", cells[1], flags=re.S).strip()
        found.append((int(rank), name, cells[-2].strip()))
    return found


def names(client, query: str = "") -> list[str]:
    return [name for _rank, name, _points in board(client, query)]


def _set_last_earned(person, moment: datetime) -> None:
    db.session.execute(
        update(PointsTally).where(PointsTally.person_id == person.id).values(last_earned_at=moment)
    )
    db.session.commit()


def test_order_and_tie_rule(client, auth, world, member, english):
    a = world.a
    first = member(a, "甲一号", 80, 1)
    more_hours = member(a, "乙二号", 50, 5)
    early = member(a, "丙三号", 50, 2)
    late = member(a, "丁四号", 50, 2)
    same_a = member(a, "戊五号", 30, 1)
    same_b = member(a, "己六号", 30, 1)
    moment = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    _set_last_earned(early, moment)
    _set_last_earned(late, moment + timedelta(seconds=1))
    # All equal, even the moment: the lower person id goes first (a stable, documented order).
    _set_last_earned(same_b, moment)
    _set_last_earned(same_a, moment)
    auth.login("secretary_a")
    response = client.get("/points/leaderboard?scope=community")
    page = response.get_data(as_text=True)
    assert rows_of(page) == [
        (1, "甲*号", "80"),
        (2, "乙*号", "50"),
        (3, "丙*号", "50"),
        (4, "丁*号", "50"),
        (5, "戊*号", "30"),
        (6, "己*号", "30"),
    ]
    assert same_a.id < same_b.id and first and more_hours
    assert "Equal points: more hours first, then whoever reached the total first." in page


def test_ties_follow_who_got_there_first_without_help(client, auth, world, member):
    """The tally's time moves only when the total grows: of two equal totals, the one reached
    first stays ahead, whoever had it first before."""
    a = world.a
    early = member(a, "甲早到", 20)
    late = member(a, "乙晚到", 20)
    auth.login("volunteer_a")
    assert names(client, "scope=community") == ["甲*到", "乙*到"]
    # A correction that lowers and restores the total does not move the early one down.
    ledger.adjust(late.id, points=5, hours=Decimal(0), reason="补录", actor_id=a.secretary.id)
    ledger.adjust(early.id, points=5, hours=Decimal(0), reason="补录", actor_id=a.secretary.id)
    db.session.commit()
    assert names(client, "scope=community") == ["乙*到", "甲*到"]


def test_names_are_masked_for_everyone(client, auth, world, member):
    a = world.a
    member(a, "张三明", 40, 2)
    member(a, "欧阳晓东", 30, 1)
    member(a, "李四", 20, 1)
    for username in ("volunteer_a", "secretary_a", "admin_a"):
        auth.login(username)
        for scope in ("community", "subdistrict"):
            page = client.get(
                f"/points/leaderboard?scope={scope}&community={a.community.id}"
            ).get_data(as_text=True)
            for full, masked in (("张三明", "张*明"), ("欧阳晓东", "欧**东"), ("李四", "李*")):
                assert full not in page
                assert masked in page
        auth.logout()


def test_unlisted_absent_until_they_opt_in_and_gone_at_once(client, auth, world, award_rows):
    a = world.a
    volunteer = a.volunteer.person
    award_rows(volunteer, 60, 3)
    masked = mask_name(volunteer.name)
    auth.login("volunteer_a")
    page = client.get("/points/leaderboard").get_data(as_text=True)
    assert rows_of(page) == []
    assert "选择公开显示" in page and 'href="/points#listing"' in page
    assert client.post("/points/listing", data={"listed": "y"}).status_code == 303
    page = client.get("/points/leaderboard").get_data(as_text=True)
    assert rows_of(page) == [(1, masked, "60")]
    assert re.search(r'<tr id="rank-1" class="me">', page)
    client.post("/points/listing", data={})
    assert board(client) == []
    auth.logout()
    auth.login("secretary_a")
    assert board(client, "scope=community") == []


def test_people_without_points_in_the_period_are_absent(client, auth, world, member):
    a = world.a
    member(a, "甲有分", 10)
    member(a, "乙无分")
    zeroed = member(a, "丙归零", 10)
    ledger.adjust(zeroed.id, points=-10, hours=Decimal(0), reason="撤销", actor_id=a.secretary.id)
    db.session.commit()
    auth.login("resident_a")
    assert names(client, "scope=community") == ["甲*分"]


def test_scopes(client, auth, world, member):
    a, b = world.a, world.b
    neighbour = factories.make_community(a.subdistrict, name="社区C")
    c = SimpleNamespace(community=neighbour, grid=factories.make_grid(neighbour))
    member(a, "甲一格", 50, grid=a.grid)
    member(a, "乙二格", 40, grid=a.grid2)
    member(b, "丙西城", 90)
    member(c, "丁邻居", 70)
    auth.login("volunteer_a")  # serves in A's first grid
    assert names(client) == ["甲*格"]  # default: their grid
    assert names(client, "scope=grid") == ["甲*格"]
    assert names(client, "scope=community") == ["甲*格", "乙*格"]
    assert names(client, "scope=subdistrict") == ["丁*居", "甲*格", "乙*格"]
    # A volunteer cannot look into another grid of their community: their own is shown.
    assert names(client, f"scope=grid&grid={a.grid2.id}") == ["甲*格"]
    auth.logout()
    auth.login("secretary_a")
    assert names(client) == ["甲*格", "乙*格"]  # default for staff: the community
    assert names(client, f"scope=grid&grid={a.grid2.id}") == ["乙*格"]
    auth.logout()
    auth.login("admin_a")
    assert names(client, "scope=subdistrict") == ["丁*居", "甲*格", "乙*格"]
    assert names(client, f"scope=community&community={neighbour.id}") == ["丁*居"]
    assert names(client, f"scope=community&community={a.community.id}") == ["甲*格", "乙*格"]
    assert names(client, f"scope=grid&grid={c.grid.id}") == ["丁*居"]
    auth.logout()
    auth.login("volunteer_b")
    assert names(client, "scope=subdistrict") == ["丙*城"]
    assert names(client, "scope=community") == ["丙*城"]


def test_subdistrict_board_names_the_community(client, auth, world, member):
    member(world.a, "甲一号", 10)
    auth.login("volunteer_a")
    page = client.get("/points/leaderboard?scope=subdistrict").get_data(as_text=True)
    assert world.a.community.name in re.search(r'<tr id="rank-1".*?</tr>', page, re.S)[0]
    assert world.a.subdistrict.name in page


def test_periods(client, auth, world, member, award_rows):
    a = world.a
    today = local_today()
    this_month = member(a, "甲本月", 10)
    last_year = member(a, "乙去年", 30, day=date(today.year - 1, 6, 1))
    both = member(a, "丙两者", 5)
    award_rows(both, 100, day=date(today.year - 2, 3, 1))
    if today.month > 1:
        member(a, "丁今年", 20, day=date(today.year, 1, 1))
    auth.login("volunteer_a")
    assert names(client, "scope=community") == ["甲*月", "丙*者"]  # default: this month
    assert names(client, "scope=community&period=month") == ["甲*月", "丙*者"]
    year = ["丁*年", "甲*月", "丙*者"] if today.month > 1 else ["甲*月", "丙*者"]
    assert names(client, "scope=community&period=year") == year
    every = board(client, "scope=community&period=all")
    assert [name for _rank, name, _points in every][:2] == ["丙*者", "乙*年"]
    assert every[0][2] == "105"
    assert this_month.id and last_year.id
    assert names(client, "scope=community&period=nonsense") == ["甲*月", "丙*者"]


def test_type_filter(client, auth, world, member):
    a = world.a
    member(a, "甲巡逻", 30, types=("red_armband",))
    member(a, "乙调解", 20, types=("mediator", "five_elders"))
    member(a, "丙党员", 10, types=("party_member", "red_armband"))
    auth.login("secretary_a")
    assert names(client, "scope=community&type=mediator") == ["乙*解"]
    assert names(client, "scope=community&type=red_armband") == ["甲*逻", "丙*员"]
    assert names(client, "scope=community&type=building_captain") == []
    assert names(client, "scope=community&type=nonsense") == ["甲*逻", "乙*解", "丙*员"]
    page = client.get("/points/leaderboard?scope=community&type=mediator").get_data(as_text=True)
    assert '<option selected value="mediator">' in page


def test_ids_of_elsewhere_are_not_found(client, auth, world, member):
    member(world.b, "甲西城", 10)
    for username in ("volunteer_a", "secretary_a", "admin_a", "gridworker_a", "resident_a"):
        auth.login(username)
        for query in (
            f"scope=grid&grid={world.b.grid.id}",
            f"grid={world.b.grid2.id}",
            f"scope=community&community={world.b.community.id}",
            "grid=999999",
            f"grid={2**63}",
        ):
            response = client.get(f"/points/leaderboard?{query}")
            assert response.status_code == 404, (username, query)
            assert "甲*城" not in response.get_data(as_text=True)
        htmx = client.get(f"/points/leaderboard?grid={world.b.grid.id}", headers=HX)
        assert htmx.headers["HX-Retarget"] == "#flash"
        # Nonsense is simply ignored.
        assert client.get("/points/leaderboard?grid=abc&community=x").status_code == 200
        auth.logout()


@pytest.mark.parametrize("role", ("anonymous", *ROLES))
def test_every_role_can_view(client, auth, world, member, role):
    member(world.a, "甲一号", 10, grid=world.a.grid)
    member(world.a, "乙二号", 10, grid=world.a.grid2)
    if role == "anonymous":
        response = client.get("/points/leaderboard")
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")
        htmx = client.get("/points/leaderboard", headers=HX)
        assert htmx.headers["HX-Redirect"].startswith("/login")
        return
    auth.login(world.a.users[role].username)
    for scope in ("grid", "community", "subdistrict"):
        for period in ("month", "year", "all"):
            response = client.get(f"/points/leaderboard?scope={scope}&period={period}")
            assert response.status_code == 200
            page = response.get_data(as_text=True)
            assert "甲*号" in page or "乙*号" in page


def test_default_scope(client, auth, world, english):
    auth.login("volunteer_a")
    page = client.get("/points/leaderboard").get_data(as_text=True)
    assert '<option selected value="grid">' in page and world.a.grid.name in page
    auth.logout()
    auth.login("resident_a")
    page = client.get("/points/leaderboard").get_data(as_text=True)
    assert '<option selected value="community">' in page
    # A resident serves in no grid: asked for one, they see their community's board and why.
    page = client.get("/points/leaderboard?scope=grid").get_data(as_text=True)
    assert '<option selected value="community">' in page
    assert "You serve in no grid" in page


def test_your_place(client, auth, world, member, listed, award_rows, english):
    a = world.a
    member(a, "甲一号", 100)
    member(a, "乙二号", 50)
    volunteer = a.volunteer.person
    award_rows(volunteer, 70, 2)
    auth.login("volunteer_a")
    page = client.get("/points/leaderboard").get_data(as_text=True)
    assert "Your place" not in page and "You are not shown on leaderboards." in page
    listed(volunteer)
    page = client.get("/points/leaderboard").get_data(as_text=True)
    assert "Your place: 2" in page
    # In the grid board and the community board; with another type, not on the board.
    assert "Your place: 2" in client.get("/points/leaderboard?scope=community").text
    page = client.get("/points/leaderboard?type=mediator").get_data(as_text=True)
    assert "Your place" not in page and "You are not on this board" in page
    # Staff without a person see no place and no hint.
    auth.logout()
    auth.login("admin_a")
    page = client.get("/points/leaderboard").get_data(as_text=True)
    assert 'id="my-place"' not in page


def test_pages_continue_the_ranks(client, auth, world, member, listed, award_rows, english):
    a = world.a
    for n in range(55):
        member(a, f"{NAMES[n % 10]}{n:02d}号", 1000 - n)
    volunteer = a.volunteer.person
    award_rows(volunteer, 946)  # between 54th (947) and 55th (946, an earlier one)
    listed(volunteer)
    auth.login("volunteer_a")
    first = board(client, "scope=community")
    assert [rank for rank, _n, _p in first] == list(range(1, 51))
    assert first[0] == (1, "甲**号", "1000")
    page = client.get("/points/leaderboard?scope=community").get_data(as_text=True)
    assert "Page 1 of 2" in page and "Your place: 56" in page
    assert 'href="/points/leaderboard?page=2&amp;scope=community&amp;period=month"' in page
    second = board(client, "scope=community&period=month&page=2")
    assert [rank for rank, _n, _p in second] == list(range(51, 57))
    assert second[-1] == (56, mask_name(volunteer.name), "946")
    assert board(client, "scope=community&page=9") == []


def test_htmx_swaps_the_board(client, auth, world, member):
    member(world.a, "甲一号", 10)
    auth.login("secretary_a")
    page = client.get("/points/leaderboard").get_data(as_text=True)
    form = re.search(r'<form class="filters"[^>]*>', page).group(0)
    assert 'method="get"' in form and 'action="/points/leaderboard"' in form
    assert 'hx-target="#board"' in form and 'hx-push-url="true"' in form
    response = client.get("/points/leaderboard?scope=community", headers=HX)
    body = response.get_data(as_text=True)
    assert "<html" not in body and body.lstrip().startswith('<div id="board">')
    assert "HX-Request" in response.headers["Vary"]
    assert rows_of(body) == [(1, "甲*号", "10")]


@pytest.mark.parametrize("username", ["volunteer_a", "secretary_a", "admin_a", "gridworker_a"])
def test_fixed_number_of_queries(client, auth, world, member, listed, award_rows, username):
    a = world.a
    listed(a.volunteer.person)
    award_rows(a.volunteer.person, 35)
    auth.login(username)

    def queries() -> tuple[int, ...]:
        counts = []
        for query in ("", "scope=community&type=red_armband", "scope=subdistrict&period=all"):
            with count_queries() as counter:
                assert client.get(f"/points/leaderboard?{query}").status_code == 200
            counts.append(counter["n"])
        with count_queries() as counter:
            client.get("/points/leaderboard?scope=grid&page=2", headers=HX)
        counts.append(counter["n"])
        return tuple(counts)

    for n in range(5):
        member(a, f"甲{n:02d}号", 10 + n, types=("red_armband", "mediator"))
    few = queries()
    for n in range(55):
        member(a, f"乙{n:02d}号", 100 + n, grid=a.grid if n % 2 else a.grid2)
    assert queries() == few
    assert max(few) <= 12
