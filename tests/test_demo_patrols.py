"""The demo shifts: two weeks ahead in community 1, a past week with attendance, consistent."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.auth.models import User
from portal.core.timeutil import now_utc, to_local
from portal.extensions import db
from portal.notifications.models import Notification
from portal.notifications.services import send_reminders
from portal.patrols.models import DoorVisit, Hazard, PatrolReport, Shift, ShiftSeries, Signup
from portal.people.models import Person
from portal.places.models import Building, Community, Household
from portal.volunteers.models import Volunteer
from tests.conftest import seed_demo


@pytest.fixture
def seeded(runner):
    seed_demo(runner)
    return db.session.scalars(select(Community).order_by(Community.id)).first()


def _shifts() -> list[Shift]:
    """The patrols demo's shifts (the household help visits are tested in test_demo_care)."""
    return list(
        db.session.scalars(
            select(Shift).where(Shift.kind != "help_visit").order_by(Shift.starts_at, Shift.id)
        )
    )


def test_every_shift_is_in_community_1_with_taken_equal_to_confirmed(seeded):
    shifts = _shifts()
    assert len(shifts) > 30
    assert {s.community_id for s in shifts} == {seeded.id}
    confirmed = Counter(
        db.session.scalars(select(Signup.shift_id).where(Signup.status == "confirmed"))
    )
    for shift in shifts:
        assert shift.taken == confirmed[shift.id], shift.title
        assert 0 <= shift.taken <= shift.capacity
        assert shift.grid.community_id == seeded.id
        assert shift.status == "scheduled"
        assert len(shift.checkin_code) == 6
    # Every sign-up, visit and report belongs to the same community as its shift.
    for model in (Signup, DoorVisit, PatrolReport, Hazard):
        assert set(db.session.scalars(select(model.community_id).distinct())) <= {seeded.id}


def test_two_weeks_ahead_of_patrols_and_door_watches(seeded):
    now = now_utc()
    today = to_local(now).date()
    ahead = [
        s
        for s in _shifts()
        if s.starts_at > now and to_local(s.starts_at).date() < today + timedelta(days=14)
    ]
    kinds = Counter(s.kind for s in ahead)
    assert kinds["patrol"] >= 14 and kinds["door_watch"] >= 3
    last = max(to_local(s.starts_at).date() for s in ahead)
    assert last >= today + timedelta(days=12)
    # Every grid has evening patrols; door watches go round the grids.
    assert len({s.grid_id for s in ahead if s.kind == "patrol"}) == 3
    assert len({s.grid_id for s in ahead if s.kind == "door_watch"}) >= 2
    free = [s for s in ahead if s.taken < s.capacity]
    assert len(free) > len(ahead) * 0.8
    full = [s for s in ahead if s.taken == s.capacity]
    assert len(full) == 2
    for shift in full:
        waiting = db.session.scalar(
            select(func.count(Signup.id)).where(
                Signup.shift_id == shift.id, Signup.status == "waitlisted"
            )
        )
        assert waiting == 2
    below = [s for s in ahead if s.taken < s.minimum]
    assert len(below) == 1 and below[0].taken == 1


def test_routes_stay_in_the_grid_and_door_watches_visit_care_households(seeded):
    buildings = {b.id: b for b in db.session.scalars(select(Building))}
    care_buildings = set(
        db.session.scalars(
            select(Household.building_id)
            .join(Person, Person.household_id == Household.id)
            .where(Person.care_consent_at.is_not(None))
        )
    )
    for shift in _shifts():
        stops = [stop["building_id"] for stop in shift.route if stop["building_id"]]
        assert stops, shift.title
        assert {buildings[b].grid_id for b in stops} == {shift.grid_id}
        if shift.kind == "door_watch":
            assert set(stops) <= care_buildings


def test_one_weekly_series_with_its_occurrences(seeded):
    (series,) = db.session.scalars(
        select(ShiftSeries).where(ShiftSeries.help_task_id.is_(None))
    ).all()
    assert series.rrule.startswith("FREQ=WEEKLY;BYDAY=TU,SA")
    occurrences = db.session.scalars(
        select(Shift).where(Shift.series_id == series.id).order_by(Shift.starts_at)
    ).all()
    assert len(occurrences) >= 8
    dates = [s.occurrence_date for s in occurrences]
    assert len(set(dates)) == len(dates)
    assert {d.weekday() for d in dates} == {1, 5}  # Tuesdays and Saturdays
    assert all(to_local(s.starts_at).date() == s.occurrence_date for s in occurrences)
    assert all(s.grid_id == series.grid_id and s.leader_id == series.leader_id for s in occurrences)
    assert series.generated_until >= max(dates)
    # Occurrences in the next two weeks have people signed up; the leader is one of them.
    today = to_local(now_utc()).date()
    soon = [s for s in occurrences if s.occurrence_date < today + timedelta(days=14)]
    assert soon and all(s.taken >= s.minimum for s in soon)


def test_leaders_are_approved_volunteers_holding_a_place(seeded):
    approved = set(
        db.session.scalars(select(Volunteer.person_id).where(Volunteer.status == "approved"))
    )
    confirmed = set(
        db.session.execute(
            select(Signup.shift_id, Signup.person_id).where(Signup.status == "confirmed")
        ).tuples()
    )
    for shift in _shifts():
        if shift.taken:
            assert shift.leader_id in approved
            assert (shift.id, shift.leader_id) in confirmed


def test_nobody_holds_two_overlapping_places(seeded):
    held = db.session.execute(
        select(Signup.person_id, Shift.starts_at, Shift.ends_at)
        .join(Shift, Shift.id == Signup.shift_id)
        .where(Signup.status.in_(("confirmed", "waitlisted")))
        .order_by(Signup.person_id, Shift.starts_at)
    ).all()
    for before, after in zip(held, held[1:], strict=False):
        if before.person_id == after.person_id:
            assert before.ends_at <= after.starts_at
    # Patrols are for red armbands (and party members on the series): types are respected.
    types = {
        v.person_id: set(v.types)
        for v in db.session.scalars(select(Volunteer).where(Volunteer.status == "approved"))
    }
    for signup in db.session.scalars(select(Signup)):
        allowed = set(signup.shift.types)
        assert not allowed or types[signup.person_id] & allowed


def test_the_past_week_has_attendance_hours_visits_and_a_report(seeded):
    now = now_utc()
    past = [s for s in _shifts() if s.ends_at <= now]
    assert len(past) >= 7
    assert min(s.starts_at for s in past) >= now - timedelta(days=8)
    signups = db.session.scalars(
        select(Signup).where(Signup.shift_id.in_([s.id for s in past]))
    ).all()
    assert {s.status for s in signups} == {"confirmed"}
    present = [s for s in signups if s.attendance == "present"]
    assert len(present) > len(signups) * 0.7
    assert all(s.hours is not None and s.hours > 0 and s.hours_recorded_at for s in present)
    assert any(s.checked_in_at and s.checked_out_at for s in present)
    assert any(s.checked_in_at is None and s.attendance_marked_by_id for s in present)
    for s in signups:
        if s.attendance != "present":
            assert s.attendance == "no_show" and s.hours is None
    # Nothing ahead has attendance yet.
    ahead = db.session.scalars(
        select(Signup).join(Shift, Shift.id == Signup.shift_id).where(Shift.starts_at > now)
    ).all()
    assert all(s.attendance is None and s.hours is None for s in ahead)

    visits = db.session.scalars(select(DoorVisit)).all()
    assert len(visits) >= 3
    visited_shifts = {v.shift_id for v in visits}
    assert all(db.session.get(Shift, i).kind == "door_watch" for i in visited_shifts)
    assert {v.outcome for v in visits} <= {"ok", "needs_help", "not_home"}
    (report,) = db.session.scalars(select(PatrolReport)).all()
    assert db.session.get(Shift, report.shift_id).kind == "patrol"
    assert len(report.hazards) == 3
    assert all(h.photo is None and h.description for h in report.hazards)


def test_the_demo_volunteer_has_places_a_shift_to_lead_and_past_hours(seeded):
    volunteer = db.session.scalars(select(User).where(User.username == "volunteer")).one()
    now = now_utc()
    mine = db.session.execute(
        select(Signup, Shift)
        .join(Shift, Shift.id == Signup.shift_id)
        .where(Signup.person_id == volunteer.person_id)
    ).all()
    upcoming = [(s, shift) for s, shift in mine if shift.starts_at > now]
    past = [(s, shift) for s, shift in mine if shift.ends_at <= now]
    assert len([s for s, _shift in upcoming if s.status == "confirmed"]) >= 2
    assert len([s for s, _shift in past if s.attendance == "present" and s.hours]) == 2
    led = db.session.scalars(
        select(Shift).where(Shift.leader_id == volunteer.person_id, Shift.starts_at > now)
    ).all()
    assert len(led) == 1
    # Some places are still free for the volunteer to try signing up.
    open_to_them = db.session.scalar(
        select(func.count(Shift.id)).where(
            Shift.starts_at > now,
            Shift.taken < Shift.capacity,
            Shift.allowed_types.contains("red_armband"),
            Shift.id.not_in([shift.id for _s, shift in mine]),
        )
    )
    assert open_to_them >= 5


def test_reminders_are_due_once(seeded):
    """Seeding stored the reminders of the next 24 hours; the cron job adds none twice."""
    now = now_utc()
    due = db.session.scalar(
        select(func.count(Signup.id))
        .join(Shift, Shift.id == Signup.shift_id)
        .join(User, User.person_id == Signup.person_id)
        .where(
            Signup.status == "confirmed",
            Shift.starts_at > now,
            Shift.starts_at <= now + timedelta(hours=24),
        )
    )
    reminders = db.session.scalar(
        select(func.count(Notification.id)).where(Notification.kind.like("shift_reminder_%"))
    )
    assert reminders == due
    assert send_reminders(now) == 0
