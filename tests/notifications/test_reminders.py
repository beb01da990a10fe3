"""send_reminders(now): 24 hours and 2 hours before each shift, exactly once each."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.notifications.services import send_reminders
from tests import factories
from tests.notifications.conftest import NOW, make_shift, notifications_of, sign_up


def kinds(user) -> list[tuple[str, str]]:
    return [(n.kind, n.dedupe_key) for n in notifications_of(user)]


def test_24h_then_2h_reminder_exactly_once_each(world):
    volunteer = world.a.volunteer
    shift = make_shift(world.a, NOW + timedelta(hours=10), title="夜间巡逻")
    sign_up(shift, volunteer.person)

    assert send_reminders(NOW) == 1
    db.session.commit()
    assert send_reminders(NOW) == 0
    assert send_reminders(NOW + timedelta(minutes=5)) == 0
    db.session.commit()
    assert kinds(volunteer) == [("shift_reminder_24h", f"shift_reminder_24h:shift:{shift.id}")]
    (reminder,) = notifications_of(volunteer)
    # 12:00 UTC is 20:00 in Shanghai; the link leads to the shift.
    assert reminder.params == {"title": "夜间巡逻", "when": "2026-12-01 20:00"}
    assert reminder.link == f"/shifts/{shift.id}"
    assert reminder.community_id == world.a.community.id
    assert reminder.read_at is None

    later = NOW + timedelta(hours=8, minutes=30)  # 1.5 hours before the start
    assert send_reminders(later) == 1
    db.session.commit()
    assert send_reminders(later) == 0
    assert send_reminders(later + timedelta(minutes=30)) == 0
    db.session.commit()
    assert kinds(volunteer) == [
        ("shift_reminder_24h", f"shift_reminder_24h:shift:{shift.id}"),
        ("shift_reminder_2h", f"shift_reminder_2h:shift:{shift.id}"),
    ]


def test_a_shift_booked_an_hour_before_gets_only_the_2h_reminder(world):
    volunteer = world.a.volunteer
    shift = make_shift(world.a, NOW + timedelta(hours=1))
    sign_up(shift, volunteer.person)
    assert send_reminders(NOW) == 1
    assert send_reminders(NOW + timedelta(minutes=30)) == 0
    db.session.commit()
    assert kinds(volunteer) == [("shift_reminder_2h", f"shift_reminder_2h:shift:{shift.id}")]


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (timedelta(hours=24, seconds=1), []),
        (timedelta(hours=24), ["shift_reminder_24h"]),
        (timedelta(hours=2, seconds=1), ["shift_reminder_24h"]),
        (timedelta(hours=2), ["shift_reminder_2h"]),
        (timedelta(minutes=1), ["shift_reminder_2h"]),
        (timedelta(0), []),  # started: too late to remind
        (-timedelta(hours=1), []),
    ],
)
def test_windows(world, offset, expected):
    volunteer = world.a.volunteer
    sign_up(make_shift(world.a, NOW + offset), volunteer.person)
    assert send_reminders(NOW) == len(expected)
    assert [n.kind for n in notifications_of(volunteer)] == expected


def test_cancelled_shifts_and_signups_get_no_reminder(world):
    a = world.a
    cancelled_shift = make_shift(a, NOW + timedelta(hours=3), status="cancelled")
    sign_up(cancelled_shift, a.volunteer.person)
    shift = make_shift(a, NOW + timedelta(hours=5))
    sign_up(shift, a.resident.person, status="cancelled")
    sign_up(shift, a.pending.person, status="waitlisted", waitlisted_at=NOW)
    assert send_reminders(NOW) == 0
    assert send_reminders(NOW + timedelta(hours=4)) == 0
    for user in (a.volunteer, a.resident, a.pending):
        assert notifications_of(user) == []


def test_people_without_an_active_account_are_skipped(world):
    a = world.a
    shift = make_shift(a, NOW + timedelta(hours=5))
    no_account = factories.make_person(a.community, name="王建国")
    sign_up(shift, no_account)
    sign_up(shift, a.resident.person)
    a.resident.active = False
    sign_up(shift, a.volunteer.person)
    db.session.commit()
    assert send_reminders(NOW) == 1
    assert [n.kind for n in notifications_of(a.volunteer)] == ["shift_reminder_24h"]
    assert notifications_of(a.resident) == []


def test_every_confirmed_volunteer_of_every_community_is_reminded(world):
    a, b = world.a, world.b
    shift_a = make_shift(a, NOW + timedelta(hours=20))
    shift_b = make_shift(b, NOW + timedelta(minutes=90))
    sign_up(shift_a, a.volunteer.person)
    sign_up(shift_a, a.resident.person)
    sign_up(shift_b, b.volunteer.person)
    assert send_reminders(NOW) == 3
    db.session.commit()
    assert [n.kind for n in notifications_of(a.resident)] == ["shift_reminder_24h"]
    (b_reminder,) = notifications_of(b.volunteer)
    assert (b_reminder.kind, b_reminder.community_id) == ("shift_reminder_2h", b.community.id)


def test_a_new_signup_after_a_run_is_reminded_on_the_next_run(world):
    a = world.a
    shift = make_shift(a, NOW + timedelta(hours=12))
    sign_up(shift, a.volunteer.person)
    assert send_reminders(NOW) == 1
    db.session.commit()
    sign_up(shift, a.resident.person)
    assert send_reminders(NOW + timedelta(minutes=5)) == 1
    assert [n.kind for n in notifications_of(a.resident)] == ["shift_reminder_24h"]


def test_send_reminders_command(world, runner):
    """The cron command uses the real clock: a shift starting in an hour gets its reminder."""
    from portal.core.timeutil import now_utc

    shift = make_shift(world.a, now_utc() + timedelta(hours=1))
    sign_up(shift, world.a.volunteer.person)
    result = runner.invoke(args=["send-reminders"])
    assert result.exit_code == 0, result.output
    assert "1 reminder" in result.output
    assert [n.kind for n in notifications_of(world.a.volunteer)] == ["shift_reminder_2h"]
    again = runner.invoke(args=["send-reminders"])
    assert again.exit_code == 0, again.output
    assert "0 reminder" in again.output
    assert len(notifications_of(world.a.volunteer)) == 1


def test_send_reminders_command_extends_series(world, runner):
    """The same cron command generates a series' occurrences up to the horizon, once."""
    from portal.core.timeutil import local_today
    from portal.patrols.models import Shift, ShiftSeries
    from portal.patrols.scheduling import build_rrule, occurrence_dates

    today = local_today()
    ends_on = today + timedelta(days=20)
    rule = build_rrule(["MO", "TH"], ends_on)
    series = ShiftSeries(
        community_id=world.a.community.id,
        grid_id=world.a.grid.id,
        kind="patrol",
        title="周一周四巡逻",
        rrule=rule,
        starts_on=today + timedelta(days=1),
        ends_on=ends_on,
        start_time=time(19, 0),
        duration_minutes=120,
        capacity=5,
        minimum=2,
    )
    db.session.add(series)
    db.session.commit()
    expected = occurrence_dates(rule, series.starts_on, series.starts_on, ends_on)
    assert expected

    def occurrences() -> list:
        db.session.commit()
        return sorted(
            db.session.scalars(select(Shift.occurrence_date).where(Shift.series_id == series.id))
        )

    result = runner.invoke(args=["send-reminders"])
    assert result.exit_code == 0, result.output
    assert "reminder(s) created" in result.output
    assert occurrences() == expected
    again = runner.invoke(args=["send-reminders"])
    assert again.exit_code == 0, again.output
    assert "0 reminder(s) created; 0 shift(s) generated" in again.output
    assert occurrences() == expected
