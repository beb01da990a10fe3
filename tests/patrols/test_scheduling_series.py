"""Weekly series: the rule, its limits, idempotent generation (service and cron command), local
wall-clock times, editing from a date, and cancelling from a date with notices once each."""

from __future__ import annotations

import re
from datetime import date, time, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from portal.core.errors import DomainError
from portal.core.timeutil import local_to_utc, local_today, now_utc, to_local
from portal.extensions import db
from portal.notifications.models import Notification
from portal.patrols import scheduling
from portal.patrols.models import Shift, ShiftSeries, Signup
from portal.patrols.scheduling import build_rrule, occurrence_dates
from tests.patrols.conftest import sched_hold, sched_plan, sched_volunteer

DAY = timedelta(days=1)


def errors_of(response) -> list[str]:
    return re.findall(r'class="error">([^<]*)<', response.get_data(as_text=True))


def occurrences(series_id: int) -> list[Shift]:
    db.session.commit()  # ends the read snapshot and expires what was loaded
    return list(
        db.session.scalars(
            select(Shift).where(Shift.series_id == series_id).order_by(Shift.occurrence_date)
        )
    )


def reload_series(series_id: int) -> ShiftSeries:
    db.session.commit()
    return db.session.get(ShiftSeries, series_id)


def notifications(kind: str) -> list[Notification]:
    db.session.commit()
    return list(
        db.session.scalars(
            select(Notification).where(Notification.kind == kind).order_by(Notification.id)
        )
    )


def next_weekday(start: date, weekday: int) -> date:
    return start + timedelta(days=(weekday - start.weekday()) % 7)


def series_form(side, **kw) -> dict:
    start = local_today() + DAY
    data = {
        "kind": "door_watch",
        "title": "周一挨户防",
        "grid_id": str(side.grid.id),
        "weekdays": ["MO", "WE"],
        "starts_on": start.isoformat(),
        "ends_on": (start + timedelta(weeks=12)).isoformat(),
        "start_time": "19:00",
        "end_time": "20:30",
        "route-0-building_id": str(side.building.id),
        "route-0-checkpoint": "",
        "capacity": "4",
        "minimum": "2",
        "points_per_hour": "5",
    }
    data.update(kw)
    return {k: v for k, v in data.items() if v is not None}


def make_series(side, weeks: int = 12, weekdays=("MO",), **kw) -> ShiftSeries:
    start = local_today() + DAY
    series = scheduling.create_series(
        side.community.id,
        None,
        sched_plan(side, **kw),
        weekdays=list(weekdays),
        starts_on=start,
        ends_on=start + timedelta(weeks=weeks),
    )
    db.session.commit()
    return series


# --- the rule -------------------------------------------------------------------------------


def test_rule_string_and_dates():
    assert (
        build_rrule(["FR", "MO", "WE"], date(2027, 1, 31))
        == "FREQ=WEEKLY;BYDAY=MO,WE,FR;UNTIL=20270131T235959"
    )
    rule = build_rrule(["MO"], date(2027, 1, 4))
    dates = occurrence_dates(rule, date(2026, 12, 1), date(2026, 12, 1), date(2027, 12, 31))
    assert dates == [date(2026, 12, 7), date(2026, 12, 14), date(2026, 12, 21),
                     date(2026, 12, 28), date(2027, 1, 4)]  # fmt: skip


def test_secretary_creates_a_series_up_to_the_horizon(client, auth, world, app):
    auth.login("secretary_a")
    assert client.get("/series/new").status_code == 200
    response = client.post("/series/new", data=series_form(world.a))
    assert response.status_code == 303
    series = db.session.scalar(select(ShiftSeries))
    assert response.headers["Location"] == f"/series/{series.id}"
    start = local_today() + DAY
    end = start + timedelta(weeks=12)
    assert series.rrule == f"FREQ=WEEKLY;BYDAY=MO,WE;UNTIL={end:%Y%m%d}T235959"
    assert (series.starts_on, series.ends_on) == (start, end)
    assert series.start_time == time(19) and series.duration_minutes == 90
    assert series.kind == "door_watch" and series.capacity == 4 and series.minimum == 2
    horizon = local_today() + timedelta(days=app.config["SERIES_HORIZON_DAYS"])
    assert series.generated_until == horizon
    shifts = occurrences(series.id)
    expected = [d for d in (start + n * DAY for n in range(57)) if d.weekday() in (0, 2)]
    expected = [d for d in expected if d <= horizon]
    assert [s.occurrence_date for s in shifts] == expected
    for shift in shifts:
        assert to_local(shift.starts_at).date() == shift.occurrence_date
        assert to_local(shift.starts_at).time() == time(19)
        assert to_local(shift.ends_at).time() == time(20, 30)
        assert shift.route == [{"building_id": world.a.building.id, "label": ""}]
        assert shift.status == "scheduled" and shift.taken == 0 and not shift.detached
    assert len({s.checkin_code for s in shifts}) > 1


def test_times_stay_local_all_year(app, world, sched_request):
    """Asia/Shanghai has no daylight saving: 19:00 every Monday is 11:00 UTC all year."""
    series = make_series(world.a, weeks=52)
    scheduling.generate_occurrences(series, series.ends_on)
    shifts = occurrences(series.id)
    assert len(shifts) == scheduling.count_occurrences(series.rrule, series.starts_on) >= 52
    for shift in shifts:
        assert shift.occurrence_date.weekday() == 0
        assert to_local(shift.starts_at).time() == time(19)
        assert (shift.starts_at.hour, shift.starts_at.minute) == (11, 0)
        assert shift.starts_at == local_to_utc(shift.occurrence_date, time(19))


BAD = [
    ({"ends_on": ""}, "A series needs an end date: a series with no end is not allowed."),
    ({"weekdays": []}, "Choose at least one weekday."),
    ({"weekdays": ["XX"]}, "is not a valid choice for this field."),
    ({"starts_on": (local_today() - DAY).isoformat()}, "A series cannot start in the past."),
    ({"ends_on": local_today().isoformat()}, "The end date cannot be before the first date."),
    ({"end_time": "18:00"}, "The end must be after the start."),
    ({"capacity": "0"}, "Offer at least 1 place."),
    ({"capacity": "2", "minimum": "3"}, "The minimum cannot be above the capacity."),
    ({"route-0-building_id": "building2"}, "is not in the grid of this shift."),
    (
        {
            "weekdays": ["MO", "TU", "WE", "TH", "FR", "SA", "SU"],
            "ends_on": (local_today() + timedelta(days=501)).isoformat(),
        },
        "This rule would create more than 500 shifts. Choose an earlier end date.",
    ),  # fmt: skip
    (
        {
            "weekdays": ["SA"],
            "ends_on": (next_weekday(local_today() + DAY, 0) + 4 * DAY).isoformat(),
            "starts_on": next_weekday(local_today() + DAY, 0).isoformat(),
        },
        "None of these weekdays falls between the two dates.",
    ),  # fmt: skip
]


@pytest.mark.parametrize("change, message", BAD)
def test_bad_series_is_refused_and_nothing_saved(
    client, auth, world, sched_english, change, message
):
    auth.login("secretary_a")
    if change.get("route-0-building_id") == "building2":
        change = {"route-0-building_id": str(world.a.building2.id)}
    response = client.post("/series/new", data=series_form(world.a, **change))
    assert response.status_code == 200
    assert any(message in e for e in errors_of(response)), errors_of(response)
    db.session.commit()
    assert db.session.scalar(select(func.count(ShiftSeries.id))) == 0
    assert db.session.scalar(select(func.count(Shift.id))) == 0


def test_exactly_500_occurrences_are_allowed(app, world, sched_request):
    # Every day: 500 dates fit in the two years a series may reach.
    every_day = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
    start = next_weekday(local_today() + DAY, 0)
    series = scheduling.create_series(
        world.a.community.id,
        None,
        sched_plan(world.a),
        weekdays=every_day,
        starts_on=start,
        ends_on=start + timedelta(days=499),
    )
    assert scheduling.count_occurrences(series.rrule, series.starts_on) == 500
    with pytest.raises(DomainError) as caught:
        scheduling.create_series(
            world.a.community.id,
            None,
            sched_plan(world.a),
            weekdays=every_day,
            starts_on=start,
            ends_on=start + timedelta(days=500),
        )
    assert "more than 500" in caught.value.errors["ends_on"]


def test_grid_worker_series_only_in_their_grids(client, auth, world):
    auth.login("gridworker_a")
    data = series_form(world.a, grid_id=str(world.a.grid2.id), **{"route-0-building_id": ""})
    assert client.post("/series/new", data=data).status_code == 200
    assert client.post("/series/new", data=series_form(world.a)).status_code == 303


# --- generation ---------------------------------------------------------------------------------


def test_generation_is_idempotent(app, world, sched_request):
    series = make_series(world.a, weeks=20)
    before = [s.id for s in occurrences(series.id)]
    assert before
    assert scheduling.generate_occurrences(series, series.ends_on - timedelta(weeks=4)) > 0
    db.session.commit()
    middle = len(occurrences(series.id))
    assert scheduling.generate_occurrences(series, series.ends_on - timedelta(weeks=4)) == 0
    # Even when generated_until is forgotten, the existing dates are not inserted again.
    db.session.execute(
        update(ShiftSeries).where(ShiftSeries.id == series.id).values(generated_until=None)
    )
    db.session.commit()
    series = reload_series(series.id)
    assert scheduling.generate_occurrences(series, series.ends_on - timedelta(weeks=4)) == 0
    db.session.commit()
    assert len(occurrences(series.id)) == middle
    assert [s.id for s in occurrences(series.id)][: len(before)] == before


def test_the_database_refuses_a_duplicate_occurrence(app, world, sched_request):
    series = make_series(world.a)
    first = occurrences(series.id)[0]
    twin = Shift(
        community_id=first.community_id,
        grid_id=first.grid_id,
        series_id=series.id,
        occurrence_date=first.occurrence_date,
        kind="patrol",
        title="重复",
        starts_at=first.starts_at,
        ends_at=first.ends_at,
        capacity=1,
        checkin_code="ABCDEF",
    )
    db.session.add(twin)
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_no_occurrence_is_created_in_the_past(app, world, sched_request):
    today = local_today()
    series = scheduling.create_series(
        world.a.community.id,
        None,
        sched_plan(world.a),
        weekdays=["MO", "TU", "WE", "TH", "FR", "SA", "SU"],
        starts_on=today,
        ends_on=today + 2 * DAY,
        now=local_to_utc(today, time(19, 30)),
    )
    assert [s.occurrence_date for s in occurrences(series.id)] == [today + DAY, today + 2 * DAY]


def test_extend_all_series_moves_the_horizon(app, world, sched_request):
    a = make_series(world.a, weeks=30)
    b = make_series(world.b, weeks=30)
    count_a, count_b = len(occurrences(a.id)), len(occurrences(b.id))
    later = local_today() + timedelta(weeks=3)
    created = scheduling.extend_all_series(later)
    db.session.commit()
    assert created == 6
    assert len(occurrences(a.id)) == count_a + 3 and len(occurrences(b.id)) == count_b + 3
    assert scheduling.extend_all_series(later) == 0


def test_cli_generate_shifts_is_cron_safe(app, runner, world, sched_request):
    series = make_series(world.a, weeks=30)
    count = len(occurrences(series.id))
    later = (local_today() + timedelta(weeks=2)).isoformat()
    result = runner.invoke(args=["generate-shifts", "--today", later])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "2 shifts generated."
    db.session.commit()
    assert len(occurrences(series.id)) == count + 2
    result = runner.invoke(args=["generate-shifts", "--today", later])
    assert result.output.strip() == "0 shifts generated."
    assert runner.invoke(args=["generate-shifts"]).output.strip() == "0 shifts generated."
    assert len(occurrences(series.id)) == count + 2


def test_generation_stops_at_the_end_date(app, world, sched_request):
    series = make_series(world.a, weeks=3)
    assert len(occurrences(series.id)) == scheduling.count_occurrences(
        series.rrule, series.starts_on
    )
    assert scheduling.extend_all_series(local_today() + timedelta(weeks=10)) == 0


# --- editing from a date ------------------------------------------------------------------------


@pytest.fixture
def weekly(world, sched_request):
    """A's Monday series over 6 weeks (all generated), two people on the first two Mondays."""
    series = make_series(world.a, weeks=6)
    shifts = occurrences(series.id)
    people = [sched_volunteer(world.a, name=f"周一队员{n}") for n in range(2)]
    for shift in shifts[:2]:
        sched_hold(shift, people[0].person)
        sched_hold(shift, people[1].person, "waitlisted")
    return series, shifts, people


def edit_data(**kw) -> dict:
    data = {
        "title": "新周一巡逻",
        "start_time": "18:00",
        "end_time": "20:00",
        "meeting_point": "北门",
        "route-0-building_id": "",
        "route-0-checkpoint": "北门岗亭",
        "capacity": "6",
        "minimum": "1",
        "points_per_hour": "8",
        "allowed_types": ["red_armband"],
    }
    data.update(kw)
    return data


def test_edit_series_from_a_date(client, auth, world, weekly):
    series, shifts, people = weekly
    auth.login("secretary_a")
    detached = shifts[3]
    client.post(f"/shifts/{detached.id}/edit", data={
        "kind": "patrol", "title": "单独改过", "grid_id": str(world.a.grid.id),
        "day": detached.occurrence_date.isoformat(), "start_time": "19:00", "end_time": "21:00",
        "capacity": "5", "minimum": "2",
    })  # fmt: skip
    page = client.get(f"/series/{series.id}/edit?from={shifts[1].occurrence_date}")
    assert page.status_code == 200
    assert f'value="{shifts[1].occurrence_date.isoformat()}"' in page.get_data(as_text=True)
    response = client.post(
        f"/series/{series.id}/edit", data=edit_data(**{"from": shifts[1].occurrence_date})
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"/series/{series.id}"
    after = occurrences(series.id)
    assert after[0].title == "晚间巡逻" and to_local(after[0].starts_at).time() == time(19)
    for shift in after[1:3] + after[4:]:
        assert shift.title == "新周一巡逻" and shift.meeting_point == "北门"
        assert to_local(shift.starts_at).time() == time(18)
        assert to_local(shift.ends_at).time() == time(20)
        assert to_local(shift.starts_at).date() == shift.occurrence_date
        assert (shift.capacity, shift.minimum, shift.points_per_hour) == (6, 1, 8)
        assert shift.route == [{"building_id": None, "label": "北门岗亭"}]
        assert shift.allowed_types == "red_armband" and not shift.detached
    assert after[3].title == "单独改过" and after[3].detached
    series = reload_series(series.id)
    assert series.title == "新周一巡逻" and series.start_time == time(18)
    assert series.duration_minutes == 120 and series.capacity == 6
    # Only the moved occurrence's holders (the second Monday) are told, once each.
    changed = notifications("shift_changed")
    assert sorted(n.user_id for n in changed) == sorted(u.id for u in people)
    assert {n.link for n in changed} == {f"/shifts/{after[1].id}"}
    when = f"{after[1].occurrence_date.isoformat()} 18:00"
    assert {n.params["when"] for n in changed} == {when}


def test_later_generation_uses_the_new_template(app, world, sched_request):
    series = make_series(world.a, weeks=20)
    generated = occurrences(series.id)
    later_from = series.generated_until + timedelta(weeks=3)
    plan = sched_plan(world.a, title="冬季巡逻", start_time=time(17), end_time=time(18))
    scheduling.update_series(series, None, plan, later_from)
    db.session.commit()
    # The days between the horizon and the change keep the old template...
    scheduling.generate_occurrences(series, series.ends_on)
    db.session.commit()
    shifts = occurrences(series.id)
    assert len(shifts) == scheduling.count_occurrences(series.rrule, series.starts_on)
    for shift in shifts:
        old = shift.occurrence_date < later_from
        assert shift.title == ("晚间巡逻" if old else "冬季巡逻")
        assert to_local(shift.starts_at).time() == (time(19) if old else time(17))
    assert {s.id for s in generated} <= {s.id for s in shifts}


def test_series_capacity_below_taken_names_the_date(client, auth, world, weekly, sched_english):
    series, shifts, people = weekly
    extra = sched_volunteer(world.a, name="周一队员X")
    sched_hold(shifts[1], extra.person)  # 2 taken on the second Monday
    auth.login("secretary_a")
    response = client.post(
        f"/series/{series.id}/edit",
        data=edit_data(capacity="1", **{"from": shifts[0].occurrence_date}),
    )
    assert response.status_code == 200
    message = f"On {shifts[1].occurrence_date.isoformat()} 2 places are already taken"
    assert any(e.startswith(message) for e in errors_of(response))
    after = occurrences(series.id)
    assert all(s.title == "晚间巡逻" and s.capacity == 5 for s in after)
    assert reload_series(series.id).title == "晚间巡逻"
    assert notifications("shift_changed") == []


def test_series_edit_from_the_past_is_refused(client, auth, world, weekly, sched_english):
    series, _shifts, _people = weekly
    auth.login("secretary_a")
    response = client.post(
        f"/series/{series.id}/edit", data=edit_data(**{"from": local_today() - DAY})
    )
    assert "Choose today or a later date." in errors_of(response)
    response = client.post(
        f"/series/{series.id}/edit", data=edit_data(**{"from": series.ends_on + DAY})
    )
    assert any(e.startswith("The series ends on") for e in errors_of(response))
    assert reload_series(series.id).title == "晚间巡逻"


def test_series_edit_route_building_must_be_in_the_grid(client, auth, world, weekly, sched_english):
    series, shifts, _people = weekly
    auth.login("secretary_a")
    data = edit_data(
        **{"from": shifts[0].occurrence_date, "route-0-building_id": str(world.b.building.id)}
    )
    response = client.post(f"/series/{series.id}/edit", data=data)
    assert "Stop 1: choose a building of this grid." in errors_of(response)


# --- cancelling from a date ---------------------------------------------------------------------


def test_cancel_series_from_a_date(client, auth, world, weekly):
    series, shifts, people = weekly
    both = sched_volunteer(world.a, name="两次都报")
    sched_hold(shifts[2], both.person)
    sched_hold(shifts[3], both.person)
    auth.login("secretary_a")
    cut = shifts[1].occurrence_date
    response = client.post(
        f"/series/{series.id}/cancel", data={"from": cut.isoformat(), "reason": "换季"}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"/series/{series.id}"
    after = occurrences(series.id)
    assert after[0].status == "scheduled"
    assert all(s.status == "cancelled" and s.cancel_reason == "换季" for s in after[1:])
    series = reload_series(series.id)
    assert series.ends_on == cut - DAY
    assert series.rrule.endswith(f"UNTIL={cut - DAY:%Y%m%d}T235959")
    told = notifications("shift_cancelled")
    pairs = sorted((n.user_id, n.link) for n in told)
    assert pairs == sorted(
        [(people[0].id, f"/shifts/{after[1].id}"), (people[1].id, f"/shifts/{after[1].id}"),
         (both.id, f"/shifts/{after[2].id}"), (both.id, f"/shifts/{after[3].id}")]
    )  # fmt: skip
    # The first Monday's holders are untouched; again cancels and tells nobody.
    assert db.session.scalar(
        select(Signup.status).where(Signup.shift_id == after[0].id, Signup.status == "confirmed")
    )
    client.post(f"/series/{series.id}/cancel", data={"from": cut.isoformat()})
    assert len(notifications("shift_cancelled")) == 4
    assert scheduling.extend_all_series(local_today() + timedelta(weeks=20)) == 0


def test_cancel_whole_series_from_its_first_day(app, world, sched_request):
    start = local_today() + timedelta(weeks=20)
    series = scheduling.create_series(
        world.a.community.id,
        None,
        sched_plan(world.a),
        weekdays=["MO"],
        starts_on=start,
        ends_on=start + timedelta(weeks=10),
    )
    db.session.commit()
    assert occurrences(series.id) == []  # beyond the horizon: nothing generated yet
    assert scheduling.cancel_series(series, None, local_today()) == 0
    db.session.commit()
    assert scheduling.extend_all_series(start + timedelta(weeks=5)) == 0
    assert occurrences(series.id) == []


def test_cancel_series_needs_a_date(client, auth, world, weekly, sched_english):
    series, _shifts, _people = weekly
    ends_on = series.ends_on
    auth.login("secretary_a")
    response = client.post(f"/series/{series.id}/cancel", data={"from": ""}, follow_redirects=True)
    assert "Enter the date from which this applies." in response.get_data(as_text=True)
    assert all(s.status == "scheduled" for s in occurrences(series.id))
    response = client.post(
        f"/series/{series.id}/cancel",
        data={"from": (local_today() - DAY).isoformat()},
        follow_redirects=True,
    )
    assert "Choose today or a later date." in response.get_data(as_text=True)
    assert reload_series(series.id).ends_on == ends_on


# --- the series page ----------------------------------------------------------------------------


def test_series_page_lists_upcoming_occurrences(
    client, auth, world, app, sched_english, sched_request
):
    series = make_series(world.a, weeks=30, weekdays=("MO", "TH"))
    scheduling.generate_occurrences(series, series.ends_on)
    db.session.commit()
    first = occurrences(series.id)[0]
    auth.login("secretary_a")
    body = client.get(f"/series/{series.id}").get_data(as_text=True)
    assert "Every week on Monday and Thursday, 19:00–21:00" in body
    assert f'href="/shifts/{first.id}"' in body and 'id="series-occurrences"' in body
    assert f'href="/shifts/{first.id}/edit"' in body
    assert body.count('id="occurrence-') == app.config["PAGE_SIZE"]
    second = client.get(f"/series/{series.id}?page=2", headers={"HX-Request": "true"})
    text = second.get_data(as_text=True)
    assert "<html" not in text and 'id="series-occurrences"' in text
    assert f'href="/shifts/{first.id}"' not in text
    assert f'action="/series/{series.id}/cancel"' in body


def test_series_page_is_read_only_for_the_subdistrict_admin(client, auth, world, sched_request):
    series = make_series(world.a)
    auth.login("admin_a")
    body = client.get(f"/series/{series.id}").get_data(as_text=True)
    assert "晚间巡逻" in body
    assert "/cancel" not in body and "/edit" not in body


def test_series_occurrences_use_a_fixed_number_of_queries(client, auth, world, sched_request):
    from tests.patrols.conftest import sched_count_queries

    small = make_series(world.a, weeks=2)
    large = make_series(world.a, weeks=8, weekdays=("MO", "TU", "WE"))
    auth.login("secretary_a")
    counts = []
    for series in (small, large):
        client.get(f"/series/{series.id}")
        with sched_count_queries() as counter:
            assert client.get(f"/series/{series.id}").status_code == 200
        counts.append(counter["n"])
    assert counts[0] == counts[1]


def test_now_is_a_parameter(app, world, sched_request):
    """The services take ``now``: a series edited "yesterday" sees yesterday's today."""
    series = make_series(world.a, weeks=4)
    yesterday_noon = now_utc() - DAY
    assert scheduling.update_series(
        series, None, sched_plan(world.a, title="补"), to_local(yesterday_noon).date(),
        now=yesterday_noon,
    ) == 4  # fmt: skip
