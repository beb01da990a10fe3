"""The demo household help: care households on consent, tasks filled and unfilled, a history of
visits confirmed and rated with hours in the ledger, a problem and a missed visit."""

from __future__ import annotations

from collections import Counter
from datetime import time, timedelta

import pytest
from sqlalchemy import select

from portal.auth.models import User
from portal.care import services as care
from portal.care.models import CareHousehold, HelpTask, HelpVisit, help_task_household
from portal.core.timeutil import now_utc, to_local
from portal.demo_care import seed_care_demo
from portal.extensions import db
from portal.help.models import HelpRequest
from portal.notifications.models import Notification
from portal.patrols.models import Shift, ShiftSeries, Signup
from portal.people.models import Person
from portal.places.models import Community
from portal.points.models import PointsEntry
from tests.conftest import seed_demo


@pytest.fixture
def seeded(runner):
    seed_demo(runner)
    return db.session.scalars(select(Community).order_by(Community.id)).first()


def _occurrences(task_id: int | None = None) -> list[Shift]:
    query = select(Shift).where(Shift.kind == "help_visit").order_by(Shift.starts_at, Shift.id)
    if task_id is not None:
        query = query.where(Shift.help_task_id == task_id)
    return list(db.session.scalars(query))


def _tasks() -> dict[str, HelpTask]:
    return {t.title: t for t in db.session.scalars(select(HelpTask).order_by(HelpTask.id))}


def test_households_enrolled_on_a_residents_consent(seeded):
    cares = db.session.scalars(select(CareHousehold).order_by(CareHousehold.id)).all()
    assert len(cares) >= 6
    staff = {
        u.id for u in db.session.scalars(select(User)) if u.role in ("grid_worker", "secretary")
    }
    for enrolled in cares:
        assert enrolled.community_id == seeded.id
        assert enrolled.consent_person.household_id == enrolled.household_id
        assert enrolled.grid_id == enrolled.household.building.grid_id
        consent = care.active_consent(enrolled.consent_person_id, care.CONSENT_PURPOSE)
        assert consent is not None and consent.recorded_by_user_id in staff
        assert enrolled.created_by_id in staff and len(enrolled.door_code) == care.DOOR_CODE_LENGTH
    assert care.consents_of(cares) == {c.id for c in cares}
    # An elder woman living alone asked for women volunteers only.
    (women_only,) = [c for c in cares if c.volunteer_sex == "female"]
    elder = women_only.consent_person
    assert elder.lives_alone and elder.sex == "female"
    assert to_local(now_utc()).year - elder.birth_year >= 70


def test_regular_tasks_of_every_kind(seeded):
    tasks = _tasks()
    assert len(tasks) >= 4
    categories = {c.id for c in care.help_categories(seeded.id)}
    rules = {
        s.help_task_id: s
        for s in db.session.scalars(
            select(ShiftSeries).where(ShiftSeries.help_task_id.is_not(None))
        )
    }
    for task in tasks.values():
        assert task.category_id in categories and task.status == "active"
        assert task.households and task.private_notes
        for shift in _occurrences(task.id):
            assert shift.checkin_code == care.task_checkin_code(task.id)
            assert shift.grid_id == task.grid_id and shift.community_id == seeded.id
    # Series by their weekdays: a Saturday shop, a daily call, a walk home every school day.
    by_days = {s.rrule.split("BYDAY=")[1].split(";")[0]: s for s in rules.values()}
    shop, daily, school_days = (
        by_days.get(d) for d in ("SA", "MO,TU,WE,TH,FR,SA,SU", "MO,TU,WE,TH,FR")
    )
    assert shop and daily and school_days
    assert (shop.start_time, shop.duration_minutes) == (time(9, 0), 60)
    assert daily.duration_minutes <= 30
    assert (school_days.start_time, school_days.duration_minutes) == (time(16, 0), 30)
    today = to_local(now_utc()).date()
    assert shop.ends_on >= today + timedelta(days=80)
    # The walk home is for a household with a child.
    school = db.session.get(HelpTask, school_days.help_task_id)
    residents = db.session.scalars(
        select(Person).where(Person.household_id == school.households[0].id)
    ).all()
    assert any(today.year - p.birth_year <= 12 for p in residents)
    # And one task on one date only.
    once = [t for t in tasks.values() if t.id not in rules]
    assert once and all(len(_occurrences(t.id)) == 1 for t in once)


def test_coming_occurrences_filled_and_unfilled(seeded):
    now = now_utc()
    confirmed = Counter(
        db.session.scalars(select(Signup.shift_id).where(Signup.status == "confirmed"))
    )
    coming = [s for s in _occurrences() if s.starts_at > now]
    for shift in _occurrences():
        assert shift.taken == confirmed[shift.id] <= shift.capacity
    soon = [s for s in coming if s.starts_at <= now + timedelta(days=14)]
    assert any(s.taken == s.capacity for s in soon)
    assert any(s.taken < s.capacity for s in soon)
    # Nothing ahead is checked in, reported or has hours.
    ahead = db.session.scalars(select(Signup).where(Signup.shift_id.in_([s.id for s in coming])))
    assert all(s.checked_in_at is None and s.hours is None for s in ahead)
    assert not db.session.scalars(
        select(HelpVisit).where(HelpVisit.shift_id.in_([s.id for s in coming]))
    ).all()
    # Coverage shows households fully covered, with places open, and with nothing planned.
    rows = [
        row
        for grid_id in {c.grid_id for c in db.session.scalars(select(CareHousehold))}
        for row in care.coverage(grid_id, now)
    ]
    assert any(row.none for row in rows)
    assert any(row.unfilled for row in rows)
    assert any(row.occurrences and not row.unfilled for row in rows)
    # A standing volunteer holds every coming occurrence of a weekly task.
    assert db.session.scalar(select(care.TaskCommitment.id).limit(1)) is not None


def test_history_of_confirmed_rated_visits_with_hours_in_the_ledger(seeded):
    now = now_utc()
    visits = db.session.scalars(select(HelpVisit).order_by(HelpVisit.id)).all()
    confirmed = [v for v in visits if v.confirmed_at is not None]
    assert len(confirmed) >= 10
    assert any(v.rating for v in confirmed) and all(
        v.rating is None or 1 <= v.rating <= 5 for v in confirmed
    )
    ledger = {
        e.source_id: e
        for e in db.session.scalars(select(PointsEntry).where(PointsEntry.source_type == "signup"))
    }
    for visit in confirmed:
        shift = visit.shift
        assert shift.ends_at <= now and visit.confirmed_at >= shift.starts_at
        assert visit.reported_at is not None and visit.reported_by_id is not None
        (signup,) = db.session.scalars(
            select(Signup).where(Signup.shift_id == shift.id, Signup.status == "confirmed")
        ).all()
        assert signup.person_id == visit.reported_by_id
        assert signup.attendance == "present" and signup.checked_in_at is not None
        assert signup.hours == (shift.ends_at - shift.starts_at).total_seconds() / 3600
        entry = ledger[signup.id]
        assert entry.kind == "help" and entry.person_id == signup.person_id
        assert entry.hours == signup.hours
    # One visit reported and waiting for the household's confirmation.
    waiting = [v for v in visits if v.status == "done" and v.confirmed_at is None]
    assert waiting
    assert all(
        not db.session.scalar(select(Signup.hours).where(Signup.shift_id == v.shift_id))
        for v in waiting
    )
    family = db.session.scalar(select(User).where(User.username == "applicant01"))
    task = db.session.get(HelpTask, waiting[0].task_id)
    assert care.may_confirm(task, family)


def test_a_problem_visit_opened_a_request(seeded):
    (problem,) = db.session.scalars(select(HelpVisit).where(HelpVisit.status == "problem")).all()
    assert problem.note and problem.request_id is not None
    req = db.session.get(HelpRequest, problem.request_id)
    task = db.session.get(HelpTask, problem.task_id)
    assert req.building_id == task.building_id and req.category_id == task.category_id
    assert req.handler_user_id is not None


def test_one_missed_visit_flagged_once(seeded):
    now = now_utc()
    (missed,) = db.session.scalars(select(HelpVisit).where(HelpVisit.status == "missed")).all()
    shift = missed.shift
    assert now - care.MISSED_LOOKBACK < shift.ends_at <= now
    assert missed.confirmed_at is None
    assert not db.session.scalars(
        select(Signup).where(Signup.shift_id == shift.id, Signup.checked_in_at.is_not(None))
    ).all()
    notes = db.session.scalars(
        select(Notification).where(Notification.kind == "help_visit_missed")
    ).all()
    assert notes and {n.dedupe_key for n in notes} == {f"help_visit_missed:shift:{shift.id}"}
    # Every other visit that ended this week was attended; the cron job finds nothing new.
    assert care.flag_missed_visits(now) == 0
    # Seeding again adds nothing.
    count = len(_occurrences())
    seed_care_demo(now)
    assert len(_occurrences()) == count


def test_women_only_household_gets_only_women(seeded):
    (enrolled,) = db.session.scalars(
        select(CareHousehold).where(CareHousehold.volunteer_sex == "female")
    ).all()
    task_ids = db.session.scalars(
        select(help_task_household.c.task_id).where(
            help_task_household.c.household_id == enrolled.household_id
        )
    ).all()
    assert task_ids
    shifts = [s for task_id in task_ids for s in _occurrences(task_id)]
    now = now_utc()
    assert any(s.starts_at < now for s in shifts) and any(s.starts_at > now for s in shifts)
    people = db.session.scalars(
        select(Person)
        .join(Signup, Signup.person_id == Person.id)
        .where(Signup.shift_id.in_([s.id for s in shifts]))
    ).all()
    assert people and {p.sex for p in people} == {"female"}
    assert all(db.session.get(HelpTask, t).volunteer_sex == "female" for t in task_ids)


def test_the_demo_volunteer_has_a_coming_visit(seeded):
    volunteer = db.session.scalar(select(User).where(User.username == "volunteer"))
    now = now_utc()
    mine = db.session.scalars(
        select(Shift)
        .join(Signup, Signup.shift_id == Shift.id)
        .where(
            Signup.person_id == volunteer.person_id,
            Signup.status == "confirmed",
            Shift.kind == "help_visit",
        )
    ).all()
    assert mine and all(s.starts_at > now for s in mine)
    assert len(db.session.execute(care.open_tasks_query(seeded.id, None, now)).all()) >= 4
