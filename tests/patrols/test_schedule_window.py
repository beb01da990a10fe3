"""Scheduled dates stay within two years from today: a shift, a series' first and last dates
(household help uses the same services). Views are checked with a year of margin on each side of
the limit; the limit itself with a fixed ``now``, so no test depends on when it runs."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from portal.core.errors import DomainError
from portal.core.timeutil import LOCAL_TZ, latest_schedulable, local_today
from portal.extensions import db
from portal.patrols import scheduling
from portal.patrols.models import Shift, ShiftSeries
from tests.patrols.conftest import duty_make_shift, sched_form, sched_plan

TOO_FAR = "Choose a date within two years from today"
# 10:00 in Beijing on 1 March 2026: the limit is 1 March 2028.
NOW = datetime(2026, 3, 1, 10, 0, tzinfo=LOCAL_TZ)


def _errors(response) -> list[str]:
    return re.findall(r'class="error">([^<]*)<', response.get_data(as_text=True))


def _count(model) -> int:
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(model))


def test_latest_schedulable():
    assert latest_schedulable(date(2026, 3, 1)) == date(2028, 3, 1)
    assert latest_schedulable(date(2028, 2, 29)) == date(2030, 2, 28)
    assert latest_schedulable(date(2026, 12, 31)) == date(2028, 12, 31)


@pytest.mark.parametrize(
    ("day", "accepted"),
    [(date(2028, 3, 1), True), (date(2028, 3, 2), False), (date(9999, 12, 31), False)],
)
def test_the_limit_of_a_shift(world, sched_request, day, accepted):
    plan = sched_plan(world.a)
    if accepted:
        assert scheduling.create_shift(world.a.community.id, None, plan, day, now=NOW)
        return
    with pytest.raises(DomainError) as caught:
        scheduling.create_shift(world.a.community.id, None, plan, day, now=NOW)
    assert caught.value.errors["day"].startswith(TOO_FAR)
    assert "2028-03-01" in caught.value.errors["day"]


def test_a_year_one_date_is_refused_not_a_crash(world, sched_request):
    # 00:30 on 1 January of year 1 in Beijing would be before year 1 in UTC.
    plan = sched_plan(world.a, start_time=time(0, 30), end_time=time(1, 30))
    with pytest.raises(DomainError) as caught:
        scheduling.create_shift(world.a.community.id, None, plan, date(1, 1, 1), now=NOW)
    assert caught.value.errors == {"day": "A shift cannot start in the past."}
    shift = duty_make_shift(world.a, starts_in=timedelta(days=3))
    for day in (date(1, 1, 1), date(9999, 12, 31)):
        with pytest.raises(DomainError) as caught:
            scheduling.update_shift(shift, None, plan, day)
        assert "day" in caught.value.errors


@pytest.mark.parametrize(
    ("starts_on", "ends_on", "field"),
    [
        (date(2026, 3, 2), date(2028, 3, 2), "ends_on"),
        (date(2026, 3, 2), date(9999, 12, 31), "ends_on"),
        (date(2028, 3, 6), date(2028, 3, 20), "starts_on"),
    ],
)
def test_the_limit_of_a_series(world, sched_request, starts_on, ends_on, field):
    with pytest.raises(DomainError) as caught:
        scheduling.create_series(
            world.a.community.id, None, sched_plan(world.a), weekdays=["MO"],
            starts_on=starts_on, ends_on=ends_on, now=NOW,
        )  # fmt: skip
    assert caught.value.errors[field].startswith(TOO_FAR)


def test_a_series_up_to_the_limit_is_accepted(world, sched_request):
    series = scheduling.create_series(
        world.a.community.id, None, sched_plan(world.a), weekdays=["WE"],
        starts_on=date(2026, 3, 4), ends_on=date(2028, 3, 1), now=NOW,
    )  # fmt: skip
    assert series.ends_on == date(2028, 3, 1)


# --- through the form: the message on the field, nothing written ------------------------------


@pytest.mark.parametrize(
    "day",
    [date(9999, 12, 31), local_today() + timedelta(days=3 * 365 + 1)],
    ids=["9999-12-31", "three years ahead"],
)
def test_a_shift_too_far_ahead_is_refused_on_the_form(client, auth, world, sched_english, day):
    auth.login("secretary_a")
    response = client.post("/shifts/new", data=sched_form(world.a, day, title="远期巡逻"))
    assert response.status_code == 200
    assert any(e.startswith(TOO_FAR) for e in _errors(response)), _errors(response)
    assert "远期巡逻" in response.get_data(as_text=True)  # what was typed is still there
    assert _count(Shift) == 0


def test_a_shift_a_year_ahead_is_accepted(client, auth, world, sched_english):
    auth.login("secretary_a")
    day = local_today() + timedelta(days=365)
    assert client.post("/shifts/new", data=sched_form(world.a, day)).status_code == 303
    assert _count(Shift) == 1


def test_a_series_ending_three_years_ahead_is_refused_on_the_form(
    client, auth, world, sched_english
):
    auth.login("secretary_a")
    start = local_today() + timedelta(days=7)
    data = sched_form(world.a, start)
    data.pop("day")
    data.update(
        weekdays="MO",
        starts_on=start.isoformat(),
        ends_on=(start + timedelta(days=3 * 365)).isoformat(),
    )
    response = client.post("/series/new", data=data)
    assert response.status_code == 200
    assert any(e.startswith(TOO_FAR) for e in _errors(response)), _errors(response)
    assert _count(ShiftSeries) == 0 and _count(Shift) == 0
