"""The shift list and its filters, the week view, one shift's page, and "My shifts"."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest

from portal.core.timeutil import LOCAL_TZ, local_to_utc, local_today, now_utc
from portal.extensions import db
from portal.patrols.models import Signup
from tests import factories
from tests.patrols.conftest import (
    SU_HX,
    su_count_queries,
    su_hold,
    su_make_shift,
    su_make_volunteer,
)


def _titles(page: str, candidates) -> set[str]:
    return {title for title in candidates if title in page}


@pytest.fixture
def su_board(world):
    """A's shifts of both grids (upcoming, past, cancelled, full, short-handed) and one of B's."""
    a = world.a
    return {
        "grid1": su_make_shift(a, title="一网格夜巡", minimum=2, starts_in=timedelta(days=1)),
        "grid2": su_make_shift(
            a,
            title="二网格敲门",
            grid_id=a.grid2.id,
            kind="door_watch",
            minimum=0,
            starts_in=timedelta(days=2),
        ),
        "past": su_make_shift(a, title="上周巡逻", starts_in=timedelta(days=-7)),
        "cancelled": su_make_shift(a, title="取消的巡逻", status="cancelled"),
        "b": su_make_shift(world.b, title="西城巡逻"),
    }


ALL = ("一网格夜巡", "二网格敲门", "上周巡逻", "取消的巡逻", "西城巡逻")


# --- the list -----------------------------------------------------------------------------------


def test_volunteer_sees_upcoming_shifts_of_the_community(client, auth, world, su_board, su_english):
    su_hold(su_board["grid1"], world.a.volunteer.person)
    auth.login("volunteer_a")
    response = client.get("/shifts")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert _titles(page, ALL) == {"一网格夜巡", "二网格敲门"}
    assert 'id="shift-results"' in page
    item = page[page.index('id="shift-' + str(su_board["grid1"].id) + '"') :]
    item = item[: item.index("</article>")]
    assert "Patrol" in item and world.a.grid.name in item
    assert "1 of 5 places taken" in item
    assert "Below minimum" in item  # 1 of at least 2
    assert "Signed up" in item  # the viewer's own status
    local = su_board["grid1"].starts_at.astimezone(LOCAL_TZ)
    assert local.strftime("%Y-%m-%d") in item and local.strftime("%H:%M") in item
    other = page[page.index('id="shift-' + str(su_board["grid2"].id) + '"') :]
    other = other[: other.index("</article>")]
    assert "Door-to-door watch" in other and "Below minimum" not in other
    assert "Signed up" not in other


def test_list_is_soonest_first(client, auth, world, su_board):
    auth.login("volunteer_a")
    page = client.get("/shifts").get_data(as_text=True)
    assert page.index("一网格夜巡") < page.index("二网格敲门")


def test_grid_worker_sees_their_grids(client, auth, world, su_board):
    auth.login("gridworker_a")
    page = client.get("/shifts").get_data(as_text=True)
    assert _titles(page, ALL) == {"一网格夜巡"}


def test_secretary_sees_the_whole_community(client, auth, world, su_board):
    auth.login("secretary_a")
    page = client.get("/shifts").get_data(as_text=True)
    assert _titles(page, ALL) == {"一网格夜巡", "二网格敲门"}


def test_subdistrict_admin_sees_the_subdistrict_read_only(client, auth, world, su_board):
    other = factories.make_community(world.a.subdistrict, name="东城二社区")
    side = type("Side", (), {"community": other, "grid": factories.make_grid(other)})
    su_make_shift(side, title="邻社区巡逻")
    auth.login("admin_a")
    page = client.get("/shifts").get_data(as_text=True)
    assert _titles(page, (*ALL, "邻社区巡逻")) == {"一网格夜巡", "二网格敲门", "邻社区巡逻"}
    assert "东城二社区" in page and world.a.community.name in page
    detail = client.get(f"/shifts/{su_board['grid1'].id}").get_data(as_text=True)
    assert f'action="/shifts/{su_board["grid1"].id}/signup"' not in detail
    assert "/edit" not in detail


def test_filters(client, auth, world, su_board):
    auth.login("secretary_a")
    page = client.get(f"/shifts?grid={world.a.grid2.id}").get_data(as_text=True)
    assert _titles(page, ALL) == {"二网格敲门"}
    page = client.get("/shifts?kind=patrol").get_data(as_text=True)
    assert _titles(page, ALL) == {"一网格夜巡"}
    later = (local_today() + timedelta(days=2)).isoformat()
    page = client.get(f"/shifts?date={later}").get_data(as_text=True)
    assert _titles(page, ALL) == {"二网格敲门"}
    # Nonsense is ignored rather than an error.
    huge = "9" * 25
    for junk in (
        "grid=x&kind=zzz&date=2026-13-45&page=-3",
        "date=0001-01-01",
        "date=9999-12-31",
        f"grid={huge}",
        f"page={huge}",
    ):
        page = client.get(f"/shifts?{junk}").get_data(as_text=True)
        expected = set() if junk.startswith("page") else {"一网格夜巡", "二网格敲门"}
        assert _titles(page, ALL) == expected, junk
    # A grid of another community shows nothing of it.
    page = client.get(f"/shifts?grid={world.b.grid.id}").get_data(as_text=True)
    assert _titles(page, ALL) == set()


def test_open_to_me(client, auth, world):
    a = world.a
    start = now_utc() + timedelta(days=1)
    su_make_shift(a, title="可报名", starts_at=start + timedelta(hours=5))
    full = su_make_shift(a, title="满员可候补", capacity=1, starts_at=start + timedelta(days=1))
    su_hold(full, su_make_volunteer(a).person)
    su_make_shift(a, title="党员专场", allowed_types="party_member", starts_at=start)
    su_make_shift(a, title="红袖章专场", allowed_types="red_armband,mediator", starts_at=start)
    held = su_make_shift(a, title="本人已占位", starts_at=start + timedelta(days=2))
    su_hold(held, a.volunteer.person)
    su_make_shift(a, title="时间冲突", starts_at=held.starts_at + timedelta(minutes=30))
    su_make_shift(a, title="进行中", starts_in=timedelta(minutes=-30))
    names = ("可报名", "满员可候补", "党员专场", "红袖章专场", "本人已占位", "时间冲突", "进行中")
    auth.login("volunteer_a")
    page = client.get("/shifts").get_data(as_text=True)
    assert _titles(page, names) == set(names)
    page = client.get("/shifts?open=y").get_data(as_text=True)
    assert _titles(page, names) == {"可报名", "满员可候补", "红袖章专场"}
    assert "Only approved volunteers" not in page


def test_open_to_me_is_empty_for_a_resident(client, auth, world, su_english):
    su_make_shift(world.a, title="可报名")
    auth.login("resident_a")
    page = client.get("/shifts?open=y").get_data(as_text=True)
    assert "可报名" not in page
    assert "0 shifts found." in page
    assert "Only approved volunteers of this community can sign up." in page
    assert 'href="/volunteers/mine"' in page
    page = client.get("/shifts?view=week&open=y").get_data(as_text=True)
    assert "Only approved volunteers of this community can sign up." in page
    auth.logout()
    auth.login("admin_a")
    client.post("/language", data={"lang": "en"})
    page = client.get("/shifts?open=y").get_data(as_text=True)
    assert "可报名" not in page and "Only approved volunteers" in page
    assert 'href="/volunteers/mine"' not in page


def test_list_is_paginated(app, client, auth, world):
    app.config["PAGE_SIZE"] = 3
    for n in range(5):
        su_make_shift(world.a, title=f"巡逻第{n}班", starts_in=timedelta(days=1, hours=n))
    auth.login("volunteer_a")
    page = client.get("/shifts?kind=patrol").get_data(as_text=True)
    assert _titles(page, [f"巡逻第{n}班" for n in range(5)]) == {
        "巡逻第0班",
        "巡逻第1班",
        "巡逻第2班",
    }
    assert 'href="/shifts?page=2&amp;kind=patrol"' in page
    page = client.get("/shifts?kind=patrol&page=2").get_data(as_text=True)
    assert _titles(page, [f"巡逻第{n}班" for n in range(5)]) == {"巡逻第3班", "巡逻第4班"}


def test_htmx_filter_returns_the_results_fragment(client, auth, world, su_board):
    auth.login("volunteer_a")
    response = client.get("/shifts?kind=door_watch", headers=SU_HX)
    body = response.get_data(as_text=True)
    assert "<html" not in body
    assert body.lstrip().startswith('<div id="shift-results">')
    assert _titles(body, ALL) == {"二网格敲门"}
    assert "HX-Request" in response.headers["Vary"]


def _list_queries(client) -> int:
    with su_count_queries() as counter:
        assert client.get("/shifts").status_code == 200
    return counter["n"]


@pytest.mark.parametrize("username", ["volunteer_a", "gridworker_a", "admin_a"])
def test_list_runs_a_fixed_number_of_queries(client, auth, world, username):
    def add(n):
        for i in range(n):
            shift = su_make_shift(world.a, starts_in=timedelta(days=1, hours=i))
            su_hold(shift, su_make_volunteer(world.a).person)

    add(2)
    auth.login(username)
    few = _list_queries(client)
    add(10)
    assert _list_queries(client) == few


# --- the week -------------------------------------------------------------------------------------


def _monday_after(days: int) -> date:
    day = local_today() + timedelta(days=days)
    return day - timedelta(days=day.weekday())


def test_week_view_puts_shifts_on_their_local_day(client, auth, world, su_english):
    monday = _monday_after(14)
    # 07:00 on Wednesday in Shanghai is still Tuesday in UTC.
    early = su_make_shift(
        world.a, title="清晨巡逻", starts_at=local_to_utc(monday + timedelta(days=2), time(7))
    )
    su_make_shift(
        world.a, title="周日巡逻", starts_at=local_to_utc(monday + timedelta(days=6), time(19))
    )
    su_make_shift(
        world.a, title="下周一", starts_at=local_to_utc(monday + timedelta(days=7), time(0))
    )
    su_make_shift(
        world.a, title="上周日", starts_at=local_to_utc(monday, time(0)) - timedelta(minutes=1)
    )
    assert early.starts_at.astimezone(UTC).date() == monday + timedelta(days=1)
    auth.login("volunteer_a")
    response = client.get(f"/shifts?view=week&week={(monday + timedelta(days=3)).isoformat()}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    days = re.findall(r'<section class="week-day[^"]*" aria-labelledby="day-([0-9-]+)"', page)
    assert days == [(monday + timedelta(days=i)).isoformat() for i in range(7)]
    sections = page.split('<section class="week-day')[1:]
    assert "清晨巡逻" in sections[2] and "07:00" in sections[2]
    assert "周日巡逻" in sections[6]
    assert "下周一" not in page and "上周日" not in page
    assert "Monday" in sections[0] and "Sunday" in sections[6]
    prev_week = (monday - timedelta(days=7)).isoformat()
    next_week = (monday + timedelta(days=7)).isoformat()
    assert f'href="/shifts?view=week&amp;week={prev_week}"' in page
    assert f'href="/shifts?view=week&amp;week={next_week}"' in page
    page = client.get(f"/shifts?view=week&week={next_week}").get_data(as_text=True)
    assert "下周一" in page and "清晨巡逻" not in page


def test_week_view_defaults_to_this_week_and_keeps_filters(client, auth, world):
    this_monday = _monday_after(0)
    auth.login("secretary_a")
    for week in ("not-a-date", "0001-01-01", "9999-12-31"):
        page = client.get(f"/shifts?view=week&week={week}").get_data(as_text=True)
        assert f'aria-labelledby="day-{this_monday.isoformat()}"' in page
    monday = _monday_after(7)
    su_make_shift(world.a, title="一网格", starts_at=local_to_utc(monday, time(9)))
    su_make_shift(
        world.a, title="二网格", grid_id=world.a.grid2.id, starts_at=local_to_utc(monday, time(9))
    )
    url = f"/shifts?view=week&week={monday.isoformat()}&grid={world.a.grid2.id}"
    response = client.get(url, headers=SU_HX)
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="shift-results">')
    assert "二网格" in body and "一网格<" not in body
    assert f"grid={world.a.grid2.id}" in body.split('rel="next"')[0].rsplit("href=", 1)[1]


def _week_queries(client, monday: date) -> int:
    with su_count_queries() as counter:
        assert client.get(f"/shifts?view=week&week={monday.isoformat()}").status_code == 200
    return counter["n"]


def test_week_view_runs_a_fixed_number_of_queries(client, auth, world):
    monday = _monday_after(7)

    def add(n):
        for i in range(n):
            shift = su_make_shift(
                world.a, starts_at=local_to_utc(monday + timedelta(days=i % 7), time(8 + i % 10))
            )
            su_hold(shift, su_make_volunteer(world.a).person)

    add(2)
    auth.login("volunteer_a")
    few = _week_queries(client, monday)
    add(12)
    assert _week_queries(client, monday) == few


# --- one shift ---------------------------------------------------------------------------------


@pytest.fixture
def su_detail(world):
    a = world.a
    leader = su_make_volunteer(a, name="欧阳明华", username="leader_su")
    shift = su_make_shift(
        a,
        title="楼道巡查",
        kind="door_watch",
        meeting_point="二号楼门口",
        route=[
            {"building_id": a.building2.id, "label": ""},
            {"building_id": None, "label": "东门岗亭"},
            {"building_id": a.building.id, "label": "顶楼"},
            {"building_id": world.b.building.id, "label": ""},
        ],
        notes="带好手电筒",
        points_per_hour=10,
        allowed_types="red_armband,five_elders",
        leader_id=leader.person.id,
        capacity=2,
    )
    goer = su_make_volunteer(a, name="张秀英")
    su_hold(shift, goer.person)
    su_hold(shift, leader.person)
    waiting = su_make_volunteer(a, name="李建国")
    su_hold(shift, waiting.person, "waitlisted")
    return shift


def test_detail_shows_everything_about_the_shift(client, auth, world, su_detail, su_english):
    auth.login("volunteer_a")
    response = client.get(f"/shifts/{su_detail.id}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "楼道巡查" in page and "Door-to-door watch" in page
    assert "二号楼门口" in page and "带好手电筒" in page
    assert world.a.grid.name in page
    route = page[page.index('<ol class="route">') :]
    route = route[: route.index("</ol>")]
    stops = re.findall(r"<li>(.*?)</li>", route)
    assert stops == [
        "2号楼",
        "东门岗亭",
        '1号楼 <span class="muted">(顶楼)</span>',
    ]  # B's building is never named
    assert "Red armband patrol、Five elders" in page
    assert "Points per hour" in page and ">10<" in page
    local = su_detail.starts_at.astimezone(LOCAL_TZ)
    assert local.strftime("%Y-%m-%d") in page and local.strftime("%H:%M") in page
    assert f'id="signup-{su_detail.id}"' in page
    assert "2 of 2 places taken" in page and "1 on the waitlist" in page
    assert "Join the waitlist" in page
    assert f'href="/shifts/{su_detail.id}.ics"' in page
    assert f'id="going-{su_detail.id}"' in page


def test_volunteers_see_masked_names(client, auth, world, su_detail):
    auth.login("volunteer_a")
    page = client.get(f"/shifts/{su_detail.id}").get_data(as_text=True)
    assert "张秀英" not in page and "张*英" in page
    assert "欧阳明华" not in page and "欧**华" in page
    assert "李建国" not in page and "李*国" not in page  # the waitlist is a number only
    assert f"/shifts/{su_detail.id}/lead" not in page and "/edit" not in page


@pytest.mark.parametrize("username", ["secretary_a", "gridworker_a", "admin_a", "leader_su"])
def test_staff_and_the_leader_see_full_names(client, auth, world, su_detail, username):
    auth.login(username)
    page = client.get(f"/shifts/{su_detail.id}").get_data(as_text=True)
    assert "张秀英" in page and "欧阳明华" in page and "李建国" in page
    assert "张*英" not in page


@pytest.mark.parametrize(
    ("username", "edit", "lead"),
    [
        ("secretary_a", True, True),
        ("gridworker_a", True, True),
        ("leader_su", False, True),
        ("admin_a", False, False),
        ("volunteer_a", False, False),
    ],
)
def test_links_to_edit_and_lead(client, auth, world, su_detail, username, edit, lead):
    auth.login(username)
    page = client.get(f"/shifts/{su_detail.id}").get_data(as_text=True)
    assert (f'href="/shifts/{su_detail.id}/edit"' in page) is edit
    assert (f'href="/shifts/{su_detail.id}/lead"' in page) is lead


def test_own_name_is_shown_in_full(client, auth, world, su_detail):
    su_detail.capacity = 3
    db.session.commit()
    auth.login("volunteer_a")
    client.post(f"/shifts/{su_detail.id}/signup")
    page = client.get(f"/shifts/{su_detail.id}").get_data(as_text=True)
    assert world.a.volunteer.person.name in page
    assert "张*英" in page


def test_going_list_refreshes_itself_after_a_change(client, auth, world, su_detail):
    auth.login("volunteer_a")
    page = client.get(f"/shifts/{su_detail.id}").get_data(as_text=True)
    section = re.search(rf'<section[^>]*id="going-{su_detail.id}"[^>]*>', page).group(0)
    assert 'hx-trigger="signup-changed from:body"' in section
    assert f'hx-select="#going-{su_detail.id}"' in section


# --- my shifts ------------------------------------------------------------------------------


def test_my_shifts_upcoming_and_past(client, auth, world, su_english):
    person = world.a.volunteer.person
    soon = su_make_shift(world.a, title="明天巡逻", starts_in=timedelta(days=1))
    su_hold(soon, person)
    full = su_make_shift(world.a, title="候补中", capacity=1, starts_in=timedelta(days=3))
    su_hold(full, su_make_volunteer(world.a).person)
    su_hold(full, person, "waitlisted")
    gave_back = su_make_shift(world.a, title="已取消报名")
    su_hold(gave_back, person, "cancelled")
    someone_elses = su_make_shift(world.a, title="别人的班")
    su_hold(someone_elses, su_make_volunteer(world.a).person)
    past = su_make_shift(world.a, title="上周巡逻", starts_in=timedelta(days=-7))
    checked_in = datetime.combine(date.today(), time(11, 5), tzinfo=UTC)
    su_hold(
        past,
        person,
        attendance="present",
        hours=Decimal("2.00"),
        checked_in_at=checked_in,
        checked_out_at=checked_in + timedelta(hours=2),
    )
    missed = su_make_shift(world.a, title="缺席那次", starts_in=timedelta(days=-14))
    su_hold(missed, person, attendance="no_show")
    auth.login("volunteer_a")
    response = client.get("/my/shifts")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    upcoming, rest = page.split('id="past-title"')
    assert "明天巡逻" in upcoming and "候补中" in upcoming
    assert "已取消报名" not in page and "别人的班" not in page
    assert upcoming.index("明天巡逻") < upcoming.index("候补中")
    assert f'id="signup-{soon.id}"' in upcoming and "Cancel my place" in upcoming
    assert "You are number 1 on the waitlist" in upcoming and "Leave the waitlist" in upcoming
    assert 'name="next" value="/my/shifts"' in upcoming
    past_part = rest.split('id="calendar"')[0]
    assert past_part.index("上周巡逻") < past_part.index("缺席那次")
    assert "Present" in past_part and "No-show" in past_part and "2.00" in past_part
    assert "19:05" in past_part and "21:05" in past_part  # local check-in and check-out


def test_my_shifts_survives_absurd_page_numbers(client, auth, world):
    auth.login("volunteer_a")
    huge = "9" * 25
    # A page past any real list is not found app-wide; an absurd filter matches nothing.
    assert client.get(f"/my/shifts?page={huge}&past={huge}").status_code == 404
    assert client.get(f"/shifts?view=week&grid={huge}").status_code == 200


def test_my_shifts_is_paginated(app, client, auth, world):
    app.config["PAGE_SIZE"] = 2
    person = world.a.volunteer.person
    for n in range(3):
        su_hold(su_make_shift(world.a, title=f"将来{n}", starts_in=timedelta(days=1 + n)), person)
        su_hold(su_make_shift(world.a, title=f"过去{n}", starts_in=timedelta(days=-1 - n)), person)
    auth.login("volunteer_a")
    page = client.get("/my/shifts").get_data(as_text=True)
    assert _titles(page, [f"将来{n}" for n in range(3)]) == {"将来0", "将来1"}
    assert _titles(page, [f"过去{n}" for n in range(3)]) == {"过去0", "过去1"}
    page = client.get("/my/shifts?page=2&past=2").get_data(as_text=True)
    assert _titles(page, [f"将来{n}" for n in range(3)]) == {"将来2"}
    assert _titles(page, [f"过去{n}" for n in range(3)]) == {"过去2"}


def test_my_shifts_cancel_with_htmx_updates_the_row(client, auth, world, su_english):
    shift = su_make_shift(world.a)
    signup = su_hold(shift, world.a.volunteer.person)
    auth.login("volunteer_a")
    response = client.post(f"/shifts/{shift.id}/cancel", data={"next": "/my/shifts"}, headers=SU_HX)
    body = response.get_data(as_text=True)
    assert f'id="signup-{shift.id}"' in body and "Your place was given back." in body
    assert 'name="next" value="/my/shifts"' in body
    assert response.headers["HX-Trigger"] == "signup-changed"
    db.session.commit()
    assert db.session.get(Signup, signup.id).status == "cancelled"


def _mine_queries(client) -> int:
    with su_count_queries() as counter:
        assert client.get("/my/shifts").status_code == 200
    return counter["n"]


def test_my_shifts_runs_a_fixed_number_of_queries(client, auth, world):
    person = world.a.volunteer.person

    def add(n):
        for i in range(n):
            upcoming = su_make_shift(world.a, capacity=1, starts_in=timedelta(days=1 + i))
            su_hold(upcoming, su_make_volunteer(world.a).person)
            su_hold(upcoming, person, "waitlisted")
            su_hold(su_make_shift(world.a, starts_in=timedelta(days=30 + i)), person)
            su_hold(su_make_shift(world.a, starts_in=timedelta(days=-1 - i)), person)

    add(1)
    auth.login("volunteer_a")
    _mine_queries(client)  # the first visit makes the calendar token
    few = _mine_queries(client)
    add(6)
    assert _mine_queries(client) == few
