"""Scheduled household help, the service layer: enrolment on a recorded consent, tasks (one date or
a weekly series) with nothing half-saved after a refusal, the sign-up rules shared with shifts and
the household's wish, standing places on a whole series, visits (door check-in, report, the
household's confirmation with hours and points once), missed visits flagged once, coverage and
the private-notes rule."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, update

from portal.auth.models import User
from portal.care import services
from portal.care.models import (
    CareHousehold,
    HelpTask,
    HelpVisit,
    TaskCommitment,
    help_task_household,
)
from portal.core.errors import DomainError
from portal.core.timeutil import local_to_utc, local_today, now_utc
from portal.extensions import db
from portal.help.models import Category, HelpRequest
from portal.notifications.models import Notification
from portal.patrols import attendance, scheduling, signups
from portal.patrols.codes import ALPHABET, new_checkin_code
from portal.patrols.models import Shift, ShiftSeries, Signup
from portal.points.models import PointsAccount, PointsEntry
from portal.trust.models import Consent
from portal.trust.privacy import end_consents
from tests import factories

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


# --- the scene ----------------------------------------------------------------------------------


@pytest.fixture
def care_request(app):
    """A request context in English, for calling the services directly."""
    from flask import session

    with app.test_request_context():
        session["lang"] = "en"
        yield


def _volunteer(side, sex: str | None, name: str):
    """An approved volunteer of ``side`` (with an account) whose person has ``sex``."""
    person = factories.make_person(side.community, name=name, sex=sex)
    user = factories.make_user("volunteer", side.community, person=person)
    factories.make_volunteer(person, grid_id=side.grid.id)
    return user


@pytest.fixture
def scene(world, care_request):
    """World A with a neighbour-help category, a second household (102) in building 1, and
    approved volunteers: two women, one man (world A's own volunteer has no sex recorded)."""
    a = world.a
    with factories.batch():
        major = Category(
            community_id=a.community.id, code="neighbour", name_zh="邻里互助",
            name_en="Neighbour help", kind="neighbour_help",
        )  # fmt: skip
        db.session.add(major)
        db.session.flush()
        category = Category(
            community_id=a.community.id, parent_id=major.id, code="neighbour.shopping",
            name_zh="代买代办", name_en="Shopping", kind="neighbour_help",
            handler="grid_worker", time_limit_hours=24,
        )  # fmt: skip
        db.session.add(category)
        household102 = factories.make_household(a.building, room="102")
        elder102 = factories.make_person(a.community, name="王阿姨", household=household102)
        female = _volunteer(a, "female", "李芳")
        female2 = _volunteer(a, "female", "张丽")
        male = _volunteer(a, "male", "赵强")
    return SimpleNamespace(
        world=world, a=a, b=world.b, major=major, category=category,
        household101=a.household, elder101=a.resident.person,
        household102=household102, elder102=elder102,
        household201=a.household2, elder201=a.pending.person,
        female=female, female2=female2, male=male,
    )  # fmt: skip


def enrol(household, person, *, sex: str | None = None, actor=None) -> CareHousehold:
    care = services.enrol_household(
        household, person.id, sex, actor or _secretary(household), consent_given=True
    )
    db.session.commit()
    return care


def _secretary(household) -> User:
    return db.session.scalar(
        select(User).where(User.community_id == household.community_id, User.role == "secretary")
    )


def task_input(scene, households, *, repeat="once", day=None, weekdays=None, starts_on=None,
               ends_on=None, sex=None, notes="", category_id=None, **plan):  # fmt: skip
    """A TaskInput: 10:00-11:00 local, one place, 10 points an hour, by default."""
    values = {
        "kind": "other", "title": "", "grid_id": None, "start_time": time(10, 0),
        "end_time": time(11, 0), "capacity": 1, "minimum": 0, "points_per_hour": 10,
    }  # fmt: skip
    values.update(plan)
    return services.TaskInput(
        household_ids=[h.id for h in households],
        category_id=category_id if category_id is not None else scene.category.id,
        title="",
        private_notes=notes,
        volunteer_sex=sex,
        repeat=repeat,
        plan=scheduling.ShiftPlan(**values),
        day=day,
        weekdays=list(weekdays or []),
        starts_on=starts_on,
        ends_on=ends_on,
    )


def tomorrow() -> date:
    return local_today() + DAY


def weekly_input(scene, households, *, weeks=20, **kw):
    """Every week on tomorrow's weekday, from tomorrow for ``weeks`` weeks."""
    start = tomorrow()
    kw.setdefault("weekdays", [WEEKDAYS[start.weekday()]])
    kw.setdefault("starts_on", start)
    kw.setdefault("ends_on", start + timedelta(weeks=weeks))
    return task_input(scene, households, repeat="weekly", **kw)


def create(scene, data, actor=None) -> HelpTask:
    task = services.create_task(scene.a.community.id, actor or scene.a.secretary, data)
    db.session.commit()
    return task


def once_task(scene, households=None, *, day=None, **kw) -> HelpTask:
    day = day or local_today() + 2 * DAY
    return create(scene, task_input(scene, households or [scene.household101], day=day, **kw))


def weekly_task(scene, households=None, **kw) -> HelpTask:
    return create(scene, weekly_input(scene, households or [scene.household101], **kw))


def occurrences(task_id: int) -> list[Shift]:
    db.session.commit()  # ends the read snapshot and expires what was loaded
    return list(
        db.session.scalars(
            select(Shift).where(Shift.help_task_id == task_id).order_by(Shift.starts_at)
        )
    )


def signups_of(person_id: int, status: str | None = None) -> list[Signup]:
    db.session.commit()
    query = select(Signup).where(Signup.person_id == person_id).order_by(Signup.shift_id)
    if status:
        query = query.where(Signup.status == status)
    return list(db.session.scalars(query))


def counts() -> dict[str, int]:
    """Rows of every table a task or an enrolment writes."""
    tables = {
        "help_task": HelpTask.__table__,
        "help_task_household": help_task_household,
        "shift": Shift.__table__,
        "shift_series": ShiftSeries.__table__,
        "signup": Signup.__table__,
        "help_task_volunteer": TaskCommitment.__table__,
        "care_household": CareHousehold.__table__,
        "consent": Consent.__table__,
    }
    return {
        name: db.session.scalar(select(func.count()).select_from(table))
        for name, table in tables.items()
    }


def refused(call) -> dict[str, str]:
    """Run ``call``, expect a DomainError, roll back as the view does, and check that no row of
    the tasks' tables was left. Returns the error's messages."""
    db.session.commit()
    before = counts()
    with pytest.raises(DomainError) as caught:
        call()
    db.session.rollback()
    assert counts() == before
    return caught.value.errors


def patrol_at(side, starts_at: datetime, ends_at: datetime, title="晚间巡逻") -> Shift:
    shift = Shift(
        community_id=side.community.id, grid_id=side.grid.id, kind="patrol", title=title,
        meeting_point="东门", route=[], starts_at=starts_at, ends_at=ends_at, capacity=5,
        minimum=0, checkin_code=new_checkin_code(),
    )  # fmt: skip
    db.session.add(shift)
    db.session.commit()
    return shift


def hold(shift: Shift, person) -> Signup:
    """A confirmed place put in directly (``taken`` kept right)."""
    db.session.execute(update(Shift).where(Shift.id == shift.id).values(taken=Shift.taken + 1))
    signup = Signup(
        community_id=shift.community_id, shift_id=shift.id, person_id=person.id,
        status="confirmed",
    )  # fmt: skip
    db.session.add(signup)
    db.session.commit()
    return signup


def sign(shift: Shift, user) -> signups.SignupOutcome:
    outcome = signups.sign_up(shift, user.person, now_utc())
    db.session.commit()
    return outcome


def ledger_rows(signup_id: int) -> list[PointsEntry]:
    db.session.commit()
    return list(
        db.session.scalars(
            select(PointsEntry).where(
                PointsEntry.source_type == "signup", PointsEntry.source_id == signup_id
            )
        )
    )


def missed_notices() -> list[Notification]:
    db.session.commit()
    return list(
        db.session.scalars(select(Notification).where(Notification.kind == "help_visit_missed"))
    )


def visits() -> list[HelpVisit]:
    db.session.commit()
    return list(db.session.scalars(select(HelpVisit).order_by(HelpVisit.id)))


# --- 1. enrolment -------------------------------------------------------------------------------


def test_enrolment_records_the_consent_and_a_door_code(scene):
    a = scene.a
    care = services.enrol_household(
        scene.household101, scene.elder101.id, "female", a.secretary, consent_given=True
    )
    db.session.commit()
    care = db.session.get(CareHousehold, care.id)
    assert (care.community_id, care.grid_id, care.household_id) == (
        a.community.id, a.grid.id, scene.household101.id,
    )  # fmt: skip
    assert care.consent_person_id == scene.elder101.id
    assert care.volunteer_sex == "female" and care.created_by_id == a.secretary.id
    assert len(care.door_code) == services.DOOR_CODE_LENGTH
    assert set(care.door_code) <= set(ALPHABET)
    consents = list(db.session.scalars(select(Consent)))
    assert len(consents) == 1
    consent = consents[0]
    assert (consent.person_id, consent.purpose) == (scene.elder101.id, "regular_help")
    assert consent.withdrawn_at is None and consent.recorded_by_user_id == a.secretary.id
    assert services.has_consent(care)
    assert services.care_of_household(scene.household101.id).id == care.id


def test_enrolment_of_two_households_gives_different_door_codes(scene):
    first = enrol(scene.household101, scene.elder101)
    second = enrol(scene.household102, scene.elder102)
    assert first.door_code != second.door_code


def test_enrolment_keeps_an_active_consent_already_given(scene):
    from portal.trust.privacy import give_consent

    give_consent(scene.elder101, "regular_help", recorded_by=scene.a.secretary)
    db.session.commit()
    enrol(scene.household101, scene.elder101)
    assert db.session.scalar(select(func.count(Consent.id))) == 1


@pytest.mark.parametrize(
    ("who", "consent_given", "sex", "key"),
    [
        ("elder102", True, None, "person_id"),  # a resident of another household
        (None, True, None, "person_id"),  # nobody chosen
        ("elder101", False, None, "consent"),  # no consent ticked
        ("elder101", True, "other", "volunteer_sex"),
    ],
)
def test_enrolment_refusals_save_nothing(scene, who, consent_given, sex, key):
    person_id = getattr(scene, who).id if who else None
    errors = refused(
        lambda: services.enrol_household(
            scene.household101, person_id, sex, scene.a.secretary, consent_given=consent_given
        )
    )
    assert list(errors) == [key]
    assert db.session.scalar(select(func.count(CareHousehold.id))) == 0
    assert db.session.scalar(select(func.count(Consent.id))) == 0


def test_enrolment_messages(scene):
    errors = refused(
        lambda: services.enrol_household(
            scene.household101, scene.elder102.id, None, scene.a.secretary, consent_given=False
        )
    )
    assert errors == {
        "person_id": "Choose a resident of this household.",
        "consent": "Record the household's consent to regular help visits first "
        "(the resident signs the paper form).",
    }


def test_a_household_is_enrolled_once(scene):
    care = enrol(scene.household101, scene.elder101)
    errors = refused(
        lambda: services.enrol_household(
            scene.household101,
            scene.a.resident.person.id,
            None,
            scene.a.secretary,
            consent_given=True,
        )  # fmt: skip
    )
    assert errors == {"_": "This household is already enrolled for regular help."}
    assert list(db.session.scalars(select(CareHousehold.id))) == [care.id]
    assert db.session.scalar(select(func.count(Consent.id))) == 1


def test_set_preference(scene):
    care = enrol(scene.household101, scene.elder101)
    services.set_preference(care, "male")
    db.session.commit()
    assert db.session.get(CareHousehold, care.id).volunteer_sex == "male"
    with pytest.raises(DomainError) as caught:
        services.set_preference(care, "nobody")
    assert list(caught.value.errors) == ["volunteer_sex"]


# --- 2. creating a task -------------------------------------------------------------------------


def test_one_date_task_is_one_help_visit_shift(scene):
    a = scene.a
    care = enrol(scene.household101, scene.elder101)
    day = local_today() + 2 * DAY
    task = once_task(scene, day=day, notes="  钥匙在门卫处  ")
    task = db.session.get(HelpTask, task.id)
    assert (task.community_id, task.grid_id, task.building_id) == (
        a.community.id, a.grid.id, a.building.id,
    )  # fmt: skip
    assert task.category_id == scene.category.id and task.status == "active"
    assert task.title == "代买代办 · 1号楼"
    assert task.private_notes == "钥匙在门卫处" and task.created_by_id == a.secretary.id
    assert [h.id for h in task.households] == [scene.household101.id]
    [shift] = occurrences(task.id)
    assert shift.kind == "help_visit" and shift.help_task_id == task.id
    assert shift.checkin_code == care.door_code
    assert shift.series_id is None and shift.leader_id is None
    assert shift.grid_id == a.grid.id and shift.title == task.title
    assert shift.starts_at == local_to_utc(day, time(10, 0))
    assert shift.ends_at == local_to_utc(day, time(11, 0))
    assert (shift.capacity, shift.taken, shift.points_per_hour) == (1, 0, 10)
    assert db.session.scalar(select(func.count(ShiftSeries.id))) == 0


def test_weekly_task_generates_its_occurrences_with_the_first_households_code(scene, app):
    care101 = enrol(scene.household101, scene.elder101)
    care102 = enrol(scene.household102, scene.elder102)
    task = weekly_task(scene, [scene.household102, scene.household101], capacity=2)
    series = services.task_series(task)
    assert series is not None and series.help_task_id == task.id
    assert series.kind == "help_visit" and series.leader_id is None
    horizon = local_today() + timedelta(days=app.config["SERIES_HORIZON_DAYS"])
    assert series.generated_until == horizon
    expected = []
    day = tomorrow()
    while day <= horizon:
        expected.append(day)
        day += timedelta(weeks=1)
    shifts = occurrences(task.id)
    assert [s.occurrence_date for s in shifts] == expected
    for shift in shifts:
        assert shift.kind == "help_visit" and shift.help_task_id == task.id
        assert shift.series_id == series.id and shift.capacity == 2
        # Room 101 comes first: its card is the one the occurrences take.
        assert shift.checkin_code == care101.door_code != care102.door_code
        assert shift.starts_at == local_to_utc(shift.occurrence_date, time(10, 0))
    assert [h.room for h in db.session.get(HelpTask, task.id).households] == ["101", "102"]


def test_grid_worker_plans_in_their_own_grid(scene):
    enrol(scene.household101, scene.elder101)
    data = task_input(scene, [scene.household101], day=local_today() + 2 * DAY)
    task = create(scene, data, actor=scene.a.gridworker)
    assert len(occurrences(task.id)) == 1


def test_a_wish_matched_by_the_task_is_accepted(scene):
    enrol(scene.household101, scene.elder101, sex="female")
    task = once_task(scene, sex="female")
    assert db.session.get(HelpTask, task.id).volunteer_sex == "female"
    assert len(occurrences(task.id)) == 1


def _create_call(scene, data, actor=None):
    return lambda: services.create_task(scene.a.community.id, actor or scene.a.secretary, data)


def _input(scene, repeat, households, **kw):
    if repeat == "weekly":
        return weekly_input(scene, households, **kw)
    return task_input(scene, households, day=local_today() + 2 * DAY, **kw)


@pytest.mark.parametrize("repeat", ["once", "weekly"])
def test_a_household_not_enrolled_is_refused(scene, repeat):
    enrol(scene.household101, scene.elder101)
    errors = refused(
        _create_call(scene, _input(scene, repeat, [scene.household101, scene.household102]))
    )
    assert errors == {"household_ids": "Choose households enrolled for regular help."}


@pytest.mark.parametrize("repeat", ["once", "weekly"])
@pytest.mark.parametrize("how", ["end_consents", "withdrawn_at"])
def test_a_household_whose_consent_was_withdrawn_is_refused(scene, repeat, how):
    care = enrol(scene.household101, scene.elder101)
    enrol(scene.household102, scene.elder102)
    if how == "end_consents":
        assert end_consents(scene.elder101, "regular_help") == 1
    else:
        db.session.execute(
            update(Consent)
            .where(Consent.person_id == scene.elder101.id)
            .values(withdrawn_at=now_utc())
        )
    db.session.commit()
    assert not services.has_consent(care)
    errors = refused(
        _create_call(scene, _input(scene, repeat, [scene.household101, scene.household102]))
    )
    assert list(errors) == ["household_ids"]
    assert "room 101:" in errors["household_ids"] and "102" not in errors["household_ids"]


@pytest.mark.parametrize("repeat", ["once", "weekly"])
def test_households_in_two_buildings_are_refused(scene, repeat):
    enrol(scene.household101, scene.elder101)
    enrol(scene.household201, scene.elder201)
    errors = refused(
        _create_call(scene, _input(scene, repeat, [scene.household101, scene.household201]))
    )
    assert errors == {"household_ids": "The households of one task must be in one building."}


@pytest.mark.parametrize("repeat", ["once", "weekly"])
def test_grid_worker_outside_their_grids_is_refused(scene, repeat):
    enrol(scene.household201, scene.elder201)  # building 2, grid 2: not gridworker_a's
    errors = refused(
        _create_call(scene, _input(scene, repeat, [scene.household201]), scene.a.gridworker)
    )
    assert errors == {"household_ids": "You can only plan help in your own grids."}


def test_a_series_with_no_end_is_refused(scene):
    enrol(scene.household101, scene.elder101)
    errors = refused(_create_call(scene, weekly_input(scene, [scene.household101], ends_on=None)))
    assert errors == {"ends_on": "A series needs an end date: a series with no end is not allowed."}


def test_a_series_over_500_occurrences_is_refused(scene):
    enrol(scene.household101, scene.elder101)
    data = weekly_input(
        scene, [scene.household101], weekdays=list(WEEKDAYS),
        ends_on=tomorrow() + timedelta(days=600),
    )  # fmt: skip
    errors = refused(_create_call(scene, data))
    assert list(errors) == ["ends_on"]
    assert "more than 500" in errors["ends_on"]


@pytest.mark.parametrize("repeat", ["once", "weekly"])
@pytest.mark.parametrize("wanted", [None, "male"])
def test_a_volunteer_choice_against_the_households_wish_is_refused(scene, repeat, wanted):
    enrol(scene.household101, scene.elder101, sex="female")
    errors = refused(_create_call(scene, _input(scene, repeat, [scene.household101], sex=wanted)))
    assert errors == {
        "volunteer_sex": "Room 101 asked for Women volunteers only: choose that for this task."
    }


def test_a_category_not_of_neighbour_help_is_refused(scene):
    enrol(scene.household101, scene.elder101)
    data = task_input(
        scene, [scene.household101], day=local_today() + 2 * DAY, category_id=scene.major.id
    )
    errors = refused(_create_call(scene, data))
    assert errors == {"category_id": "Choose a kind of help from the list."}


def test_a_household_of_another_community_is_refused(scene):
    b = scene.b
    enrol(b.household, b.resident.person, actor=b.secretary)
    errors = refused(_create_call(scene, _input(scene, "once", [b.household])))
    assert errors == {"household_ids": "Choose households enrolled for regular help."}


def test_a_title_given_is_kept(scene):
    enrol(scene.household101, scene.elder101)
    data = task_input(scene, [scene.household101], day=local_today() + 2 * DAY)
    data.title = "  每周买菜  "
    task = create(scene, data)
    assert db.session.get(HelpTask, task.id).title == "每周买菜"
    assert [s.title for s in occurrences(task.id)] == ["每周买菜"]


def test_every_message_at_once_and_nothing_kept(scene):
    """Household and shift rules are reported together; still nothing is saved."""
    enrol(scene.household201, scene.elder201)
    data = weekly_input(
        scene, [scene.household201], ends_on=None, capacity=0, category_id=scene.major.id
    )
    errors = refused(_create_call(scene, data, scene.a.gridworker))
    assert set(errors) == {"household_ids", "category_id", "ends_on", "capacity"}


# --- 3. sign-up rules shared with shifts --------------------------------------------------------


def test_capacity_then_waitlist(scene):
    enrol(scene.household101, scene.elder101)
    [shift] = occurrences(once_task(scene).id)
    first = sign(shift, scene.female)
    second = sign(shift, scene.male)
    assert first.status == "confirmed"
    assert (second.status, second.position) == ("waitlisted", 1)
    assert db.session.get(Shift, shift.id).taken == 1
    statuses = {s.person_id: s.status for s in db.session.scalars(select(Signup))}
    assert statuses == {scene.female.person.id: "confirmed", scene.male.person.id: "waitlisted"}


def test_an_overlapping_shift_is_refused(scene):
    enrol(scene.household101, scene.elder101)
    [shift] = occurrences(once_task(scene).id)
    patrol = patrol_at(
        scene.a, shift.starts_at + timedelta(minutes=30), shift.ends_at + DAY / 24, "午间巡逻"
    )
    hold(patrol, scene.female.person)
    with pytest.raises(DomainError) as caught:
        sign(shift, scene.female)
    assert caught.value.errors["_"].startswith("You already have a place on “午间巡逻” at that")
    db.session.rollback()
    assert [s.shift_id for s in signups_of(scene.female.person.id)] == [patrol.id]
    assert db.session.get(Shift, shift.id).taken == 0


def test_a_volunteer_not_approved_is_refused(scene):
    enrol(scene.household101, scene.elder101)
    [shift] = occurrences(once_task(scene).id)
    with pytest.raises(DomainError) as caught:
        sign(shift, scene.a.pending)
    assert caught.value.errors == {"_": "Only approved volunteers of this community can sign up."}


def test_the_households_wish_decides_who_may_sign_up(scene):
    enrol(scene.household101, scene.elder101, sex="female")
    [shift] = occurrences(once_task(scene, sex="female", capacity=3).id)
    for user in (scene.male, scene.a.volunteer):  # a man; a volunteer whose sex is unknown
        with pytest.raises(DomainError) as caught:
            sign(shift, user)
        assert caught.value.errors == {"_": "This household asked for Women volunteers only."}
        db.session.rollback()
    assert sign(shift, scene.female).status == "confirmed"
    assert [s.person_id for s in signups_of(scene.female.person.id)] == [scene.female.person.id]
    assert db.session.scalar(select(func.count(Signup.id))) == 1


def test_a_task_without_a_wish_takes_anyone_approved(scene):
    enrol(scene.household101, scene.elder101)
    [shift] = occurrences(once_task(scene, capacity=3).id)
    for user in (scene.male, scene.female, scene.a.volunteer):
        assert sign(shift, user).status == "confirmed"


# --- 4. the whole series ------------------------------------------------------------------------


def test_take_series_gives_places_on_every_coming_occurrence(scene):
    care = enrol(scene.household101, scene.elder101)
    task = weekly_task(scene)
    shifts = occurrences(task.id)
    outcome = services.take_series(task, scene.female.person)
    db.session.commit()
    assert (outcome.confirmed, outcome.waitlisted, outcome.skipped) == (len(shifts), 0, [])
    held = signups_of(scene.female.person.id, "confirmed")
    assert [s.shift_id for s in held] == [s.id for s in shifts]
    assert services.is_standing(task.id, scene.female.person.id)
    assert [s.taken for s in occurrences(task.id)] == [1] * len(shifts)
    assert {s.checkin_code for s in shifts} == {care.door_code}


def test_take_series_names_the_dates_it_skips(scene):
    enrol(scene.household101, scene.elder101)
    task = weekly_task(scene)
    shifts = occurrences(task.id)
    clash = shifts[1]
    hold(patrol_at(scene.a, clash.starts_at, clash.ends_at, "周三巡逻"), scene.female.person)
    outcome = services.take_series(task, scene.female.person)
    db.session.commit()
    assert outcome.confirmed == len(shifts) - 1 and outcome.waitlisted == 0
    assert len(outcome.skipped) == 1
    day, message = outcome.skipped[0]
    assert day == clash.occurrence_date
    assert message.startswith("You already have a place on “周三巡逻”")
    held = {s.shift_id for s in signups_of(scene.female.person.id, "confirmed")}
    assert clash.id not in held and shifts[0].id in held and shifts[2].id in held


def test_take_series_twice_is_refused(scene):
    enrol(scene.household101, scene.elder101)
    task = weekly_task(scene)
    services.take_series(task, scene.female.person)
    db.session.commit()
    before = len(signups_of(scene.female.person.id))
    errors = refused(lambda: services.take_series(task, scene.female.person))
    assert errors == {"_": "You already help with every visit of this task."}
    assert len(signups_of(scene.female.person.id)) == before
    assert db.session.scalar(select(func.count(TaskCommitment.id))) == 1


def test_take_series_against_the_wish_is_refused_as_a_whole(scene):
    enrol(scene.household101, scene.elder101, sex="female")
    task = weekly_task(scene, sex="female")
    errors = refused(lambda: services.take_series(task, scene.male.person))
    assert errors == {"_": "This household asked for Women volunteers only."}
    assert db.session.scalar(select(func.count(TaskCommitment.id))) == 0
    assert db.session.scalar(select(func.count(Signup.id))) == 0


def test_take_series_by_someone_not_approved_is_refused(scene):
    enrol(scene.household101, scene.elder101)
    task = weekly_task(scene)
    errors = refused(lambda: services.take_series(task, scene.a.pending.person))
    assert errors == {"_": "Only approved volunteers of this community can sign up."}


def test_a_second_standing_volunteer_waits_when_the_places_are_taken(scene):
    enrol(scene.household101, scene.elder101)
    task = weekly_task(scene)
    n = len(occurrences(task.id))
    services.take_series(task, scene.female.person)
    outcome = services.take_series(task, scene.female2.person)
    db.session.commit()
    assert (outcome.confirmed, outcome.waitlisted) == (0, n)
    assert len(signups_of(scene.female2.person.id, "waitlisted")) == n


def test_extending_the_series_signs_the_standing_volunteer_up(scene, app):
    care = enrol(scene.household101, scene.elder101)
    task = weekly_task(scene, weeks=20)
    first = {s.id for s in occurrences(task.id)}
    services.take_series(task, scene.female.person)
    db.session.commit()
    created = scheduling.extend_all_series(local_today() + timedelta(weeks=3))
    db.session.commit()
    assert created == 3
    shifts = occurrences(task.id)
    new = [s for s in shifts if s.id not in first]
    assert len(new) == 3
    for shift in new:
        assert shift.kind == "help_visit" and shift.help_task_id == task.id
        assert shift.checkin_code == care.door_code and shift.taken == 1
    held = {s.shift_id for s in signups_of(scene.female.person.id, "confirmed")}
    assert held == {s.id for s in shifts}
    # Cron-safe: a second run creates and signs up nothing more.
    assert scheduling.extend_all_series(local_today() + timedelta(weeks=3)) == 0
    db.session.commit()
    assert len(signups_of(scene.female.person.id)) == len(shifts)


def test_leave_series_gives_the_places_back(scene):
    enrol(scene.household101, scene.elder101)
    task = weekly_task(scene, weeks=20)
    n = len(occurrences(task.id))
    services.take_series(task, scene.female.person)
    db.session.commit()
    given = services.leave_series(task, scene.female.person)
    db.session.commit()
    assert given == n
    assert signups_of(scene.female.person.id, "confirmed") == []
    assert len(signups_of(scene.female.person.id, "cancelled")) == n
    assert [s.taken for s in occurrences(task.id)] == [0] * n
    assert not services.is_standing(task.id, scene.female.person.id)
    # Later occurrences no longer get her.
    scheduling.extend_all_series(local_today() + timedelta(weeks=3))
    db.session.commit()
    assert signups_of(scene.female.person.id, "confirmed") == []
    errors = refused(lambda: services.leave_series(task, scene.female.person))
    assert errors == {"_": "You have no standing place on this task."}


def test_leave_series_promotes_the_waitlist(scene):
    enrol(scene.household101, scene.elder101)
    task = weekly_task(scene)
    n = len(occurrences(task.id))
    services.take_series(task, scene.female.person)
    services.take_series(task, scene.female2.person)
    db.session.commit()
    assert services.leave_series(task, scene.female.person) == n
    db.session.commit()
    assert len(signups_of(scene.female2.person.id, "confirmed")) == n


def test_take_series_of_an_ended_task_is_refused(scene):
    enrol(scene.household101, scene.elder101)
    task = weekly_task(scene)
    cancelled = services.end_task(task, scene.a.secretary, "搬走了")
    db.session.commit()
    assert cancelled == len(occurrences(task.id))
    assert {s.status for s in occurrences(task.id)} == {"cancelled"}
    errors = refused(lambda: services.take_series(task, scene.female.person))
    assert errors == {"_": "This help task has ended."}


def test_an_ended_task_gets_no_new_occurrences_nor_places(scene):
    enrol(scene.household101, scene.elder101)
    task = weekly_task(scene, weeks=20)
    services.take_series(task, scene.female.person)
    db.session.commit()
    n = len(occurrences(task.id))
    assert services.end_task(task, scene.a.secretary, "搬走了") == n
    db.session.commit()
    assert signups_of(scene.female.person.id, "confirmed") == []
    assert scheduling.extend_all_series(local_today() + timedelta(weeks=3)) == 0
    db.session.commit()
    assert len(occurrences(task.id)) == n
    assert {s.status for s in occurrences(task.id)} == {"cancelled"}
    assert services.end_task(db.session.get(HelpTask, task.id), scene.a.secretary, "") == 0


# --- 5. visits ----------------------------------------------------------------------------------


@pytest.fixture
def visit(scene):
    """A one-date visit for rooms 101 and 102 (two places) with both women signed up."""
    care101 = enrol(scene.household101, scene.elder101)
    care102 = enrol(scene.household102, scene.elder102)
    task = once_task(scene, [scene.household101, scene.household102], capacity=2)
    [shift] = occurrences(task.id)
    first = sign(shift, scene.female)
    second = sign(shift, scene.female2)
    return SimpleNamespace(
        task=task, shift=shift, care101=care101, care102=care102,
        signup=db.session.get(Signup, first.signup_id),
        signup2=db.session.get(Signup, second.signup_id),
        start=shift.starts_at, end=shift.ends_at,
    )  # fmt: skip


def check_in(v, user, code, minutes=5):
    outcome = services.check_in_at_door(v.shift, user.person.id, code, v.start + minutes * MINUTE)
    db.session.commit()
    return outcome


def test_check_in_with_a_wrong_or_empty_code_is_refused(scene, visit):
    for code in ("WRONG222", "", None, visit.shift.checkin_code[:-1]):
        with pytest.raises(DomainError) as caught:
            check_in(visit, scene.female, code)
        assert list(caught.value.errors) == ["code"]
    db.session.rollback()
    assert db.session.get(Signup, visit.signup.id).checked_in_at is None


def test_check_in_with_the_code_of_either_household(scene, visit):
    code = visit.care101.door_code
    first = check_in(visit, scene.female, f" {code[:4].lower()} {code[4:]} ", minutes=-10)
    assert first.won is True
    second = check_in(visit, scene.female2, visit.care102.door_code)
    assert second.won is True
    assert db.session.get(Signup, visit.signup.id).checked_in_at == visit.start - 10 * MINUTE
    assert db.session.get(Signup, visit.signup2.id).checked_in_at == visit.start + 5 * MINUTE
    # Again: the first time is kept.
    assert check_in(visit, scene.female, code, minutes=20).won is False
    assert db.session.get(Signup, visit.signup.id).checked_in_at == visit.start - 10 * MINUTE


def test_the_code_of_a_household_outside_the_task_is_refused(scene, visit):
    care201 = enrol(scene.household201, scene.elder201)
    with pytest.raises(DomainError) as caught:
        check_in(visit, scene.female, care201.door_code)
    assert caught.value.errors == {"code": "Wrong code. Check the card on the household's door."}


def test_check_in_needs_a_place_and_the_window(scene, visit):
    with pytest.raises(DomainError) as caught:
        check_in(visit, scene.male, visit.care101.door_code)
    assert caught.value.errors == {"code": "You are not signed up for this shift."}
    with pytest.raises(DomainError) as caught:
        check_in(visit, scene.female, visit.care101.door_code, minutes=-31)
    assert list(caught.value.errors) == ["code"]
    with pytest.raises(DomainError) as caught:
        check_in(visit, scene.female, visit.care101.door_code, minutes=61)
    assert list(caught.value.errors) == ["code"]


def report(v, user, note="买好了菜", *, problem=False, minutes=50):
    result = services.report_visit(
        v.shift, user.person, note=note, problem=problem, actor=user,
        now=v.start + minutes * MINUTE,
    )  # fmt: skip
    db.session.commit()
    return result


def test_report_done_needs_a_check_in_and_happens_once(scene, visit):
    errors = refused(lambda: report(visit, scene.female))
    assert errors == {"_": "Check in at the door first, with the household's code."}
    errors = refused(lambda: report(visit, scene.male))
    assert errors == {"_": "You do not have a place on this visit."}
    check_in(visit, scene.female, visit.care101.door_code)
    done = report(visit, scene.female, "  买好了菜，放在冰箱  ")
    [row] = visits()
    assert row.id == done.id and row.shift_id == visit.shift.id and row.task_id == visit.task.id
    assert (row.status, row.note) == ("done", "买好了菜，放在冰箱")
    assert row.reported_by_id == scene.female.person.id
    assert row.reported_at == visit.start + 50 * MINUTE and row.request_id is None
    check_in(visit, scene.female2, visit.care102.door_code)
    errors = refused(lambda: report(visit, scene.female2, "我也来了"))
    assert errors == {"_": "This visit was already reported."}
    assert [(v.status, v.note) for v in visits()] == [("done", "买好了菜，放在冰箱")]


def test_report_window_and_note_rules(scene, visit):
    check_in(visit, scene.female, visit.care101.door_code)
    errors = refused(lambda: report(visit, scene.female, "x" * 501))
    assert list(errors) == ["note"]
    errors = refused(lambda: report(visit, scene.female, minutes=60 + 121))
    assert list(errors) == ["_"] and "closed two hours after its end" in errors["_"]
    assert visits() == []
    assert report(visit, scene.female, minutes=60 + 120).status == "done"


def test_something_wrong_opens_a_request_to_the_grid_worker(scene, visit):
    check_in(visit, scene.female, visit.care101.door_code)
    row = report(visit, scene.female, "老人摔倒了，已叫120", problem=True)
    [saved] = visits()
    assert saved.id == row.id and saved.status == "problem"
    assert saved.request_id is not None
    req = db.session.get(HelpRequest, saved.request_id)
    assert req.handler_user_id == scene.a.gridworker.id
    assert req.category_id == visit.task.category_id == scene.category.id
    assert req.grid_id == scene.a.grid.id and req.building_id == scene.a.building.id
    assert req.urgency == "urgent" and req.status == "submitted"
    assert req.requester_id == scene.female.person.id
    assert "老人摔倒了，已叫120" in req.description and "101、102" in req.description
    assert db.session.scalar(select(func.count(HelpRequest.id))) == 1


def confirm(v, actor, came, *, rating=None, comment="", minutes=70):
    outcome = services.confirm_visit(
        v.shift, actor, came=came, rating=rating, comment=comment,
        now=v.start + minutes * MINUTE,
    )  # fmt: skip
    db.session.commit()
    return outcome


def test_household_confirms_and_hours_are_recorded_once(scene, visit):
    a = scene.a
    check_in(visit, scene.female, visit.care101.door_code)
    report(visit, scene.female)
    outcome = confirm(visit, a.resident, [scene.female.person.id], rating=5, comment=" 很好 ")
    assert outcome.hours_recorded == 1
    [row] = visits()
    assert row.status == "done" and row.rating == 5 and row.rating_comment == "很好"
    assert row.confirmed_by_id == a.resident.id
    assert row.confirmed_at == visit.start + 70 * MINUTE
    signup = db.session.get(Signup, visit.signup.id)
    assert signup.attendance == "present" and signup.attendance_marked_by_id == a.resident.id
    assert signup.hours == Decimal("1.00")
    assert signup.hours_recorded_at == visit.start + 70 * MINUTE
    assert signup.checked_in_at == visit.start + 5 * MINUTE  # the check-in is kept
    [entry] = ledger_rows(signup.id)
    assert entry.person_id == scene.female.person.id and entry.kind == "help"
    assert entry.points == 10 and entry.hours == Decimal("1.00")
    account = db.session.get(PointsAccount, scene.female.person.id)
    assert account.balance == 10 and account.hours == Decimal("1.00")
    # Not ticked: nothing for the second volunteer.
    second = db.session.get(Signup, visit.signup2.id)
    assert second.hours_recorded_at is None and ledger_rows(second.id) == []
    # A second confirmation (the grid worker's too) is refused and writes nothing.
    for actor in (a.resident, a.gridworker):
        errors = refused(
            lambda actor=actor: confirm(
                visit, actor, [scene.female.person.id, scene.female2.person.id], rating=1
            )
        )
        assert errors == {"_": "This visit was already confirmed."}
    assert len(ledger_rows(signup.id)) == 1 and ledger_rows(second.id) == []
    assert db.session.get(PointsAccount, scene.female.person.id).balance == 10
    [row] = visits()
    assert row.rating == 5 and row.confirmed_by_id == a.resident.id


def test_grid_worker_confirms_on_the_households_behalf(scene, visit):
    worker = scene.a.gridworker
    outcome = confirm(visit, worker, [scene.female.person.id, scene.female2.person.id])
    assert outcome.hours_recorded == 2
    [row] = visits()
    assert row.status == "done" and row.confirmed_by_id == worker.id and row.rating is None
    for signup_id in (visit.signup.id, visit.signup2.id):
        signup = db.session.get(Signup, signup_id)
        # The household's word stands in for the door check-in.
        assert signup.checked_in_at == visit.start + 70 * MINUTE
        assert signup.attendance == "present" and signup.hours == Decimal("1.00")
        [entry] = ledger_rows(signup_id)
        assert entry.points == 10 and entry.hours == Decimal("1.00")


def test_check_out_is_refused_and_hours_are_not_written_twice(scene, visit):
    check_in(visit, scene.female, visit.care101.door_code, minutes=0)
    errors = refused(
        lambda: attendance.check_out(visit.shift, scene.female.person.id, visit.start + 45 * MINUTE)
    )
    assert "the household confirms it and your hours" in errors["_"]
    # The grid worker marks the volunteer present on the leader's page: hours written there...
    signup = db.session.get(Signup, visit.signup.id)
    marked = attendance.mark_attendance(
        signup, "present", scene.a.gridworker, visit.start + 45 * MINUTE
    )
    db.session.commit()
    assert marked.hours_recorded is True
    # ... and the household's confirmation does not write them again.
    outcome = confirm(visit, scene.a.resident, [scene.female.person.id])
    assert outcome.hours_recorded == 0
    [entry] = ledger_rows(visit.signup.id)
    assert entry.hours == db.session.get(Signup, visit.signup.id).hours


def test_hours_are_the_planned_duration(scene):
    enrol(scene.household101, scene.elder101)
    task = once_task(scene, start_time=time(9, 0), end_time=time(10, 30), points_per_hour=20)
    [shift] = occurrences(task.id)
    placed = sign(shift, scene.female)
    services.confirm_visit(
        shift, scene.a.resident, came=[scene.female.person.id], rating=None, comment="",
        now=shift.ends_at,
    )  # fmt: skip
    db.session.commit()
    assert db.session.get(Signup, placed.signup_id).hours == Decimal("1.50")
    [entry] = ledger_rows(placed.signup_id)
    assert (entry.points, entry.hours) == (30, Decimal("1.50"))


def test_confirm_refusals_write_nothing(scene, visit):
    came = [scene.female.person.id]
    errors = refused(lambda: confirm(visit, scene.a.resident, came, minutes=-1))
    assert errors == {"_": "A visit can be confirmed once it has begun."}
    for rating in (0, 6):
        errors = refused(
            lambda rating=rating: confirm(visit, scene.a.resident, came, rating=rating)
        )
        assert errors == {"rating": "Choose 1 to 5 stars, or none."}
    errors = refused(lambda: confirm(visit, scene.a.resident, [scene.male.person.id]))
    assert errors == {"came": "Tick the volunteers who came."}
    errors = refused(lambda: confirm(visit, scene.a.resident, came, comment="x" * 501))
    assert list(errors) == ["comment"]
    assert visits() == []
    assert ledger_rows(visit.signup.id) == []
    assert db.session.get(Signup, visit.signup.id).hours_recorded_at is None


def test_who_may_confirm(scene, visit):
    task = db.session.get(HelpTask, visit.task.id)
    assert services.may_confirm(task, scene.a.resident)  # lives in 101
    assert services.may_confirm(task, scene.a.gridworker)
    assert services.may_confirm(task, scene.a.secretary)
    assert not services.may_confirm(task, scene.a.pending)  # lives in 201
    assert not services.may_confirm(task, scene.female)
    assert services.lives_in(task, scene.elder102.id)
    assert not services.lives_in(task, None)


# --- 6. missed visits ---------------------------------------------------------------------------


def flag(v, minutes_after_end=1) -> int:
    flagged = services.flag_missed_visits(v.end + minutes_after_end * MINUTE)
    db.session.commit()
    return flagged


def test_a_visit_nobody_checked_in_to_is_flagged_once(scene, visit):
    assert flag(visit, -1) == 0  # not ended yet
    assert flag(visit) == 1
    [row] = visits()
    assert (row.status, row.shift_id, row.task_id) == ("missed", visit.shift.id, visit.task.id)
    assert row.reported_by_id is None and row.confirmed_at is None
    [notice] = missed_notices()
    assert notice.user_id == scene.a.gridworker.id
    assert notice.community_id == scene.a.community.id
    assert notice.link == f"/shifts/{visit.shift.id}"
    assert notice.params["title"] == visit.shift.title
    assert flag(visit, 5) == 0
    assert flag(visit, 60 * 24) == 0
    assert len(visits()) == 1 and len(missed_notices()) == 1


def test_every_worker_of_the_grid_is_told_once(scene, visit):
    second = factories.make_user("grid_worker", scene.a.community, grids=[scene.a.grid])
    factories.make_user("grid_worker", scene.a.community, grids=[scene.a.grid2])
    assert flag(visit) == 1
    assert flag(visit, 30) == 0
    notices = missed_notices()
    assert sorted(n.user_id for n in notices) == sorted([scene.a.gridworker.id, second.id])
    assert {n.dedupe_key for n in notices} == {f"help_visit_missed:shift:{visit.shift.id}"}


def test_an_unfilled_visit_is_flagged_too(scene):
    enrol(scene.household101, scene.elder101)
    [shift] = occurrences(once_task(scene).id)
    assert services.flag_missed_visits(shift.ends_at) == 1
    db.session.commit()
    assert [v.status for v in visits()] == ["missed"]


def test_a_visit_checked_in_to_is_not_flagged(scene, visit):
    check_in(visit, scene.female, visit.care101.door_code)
    assert flag(visit) == 0
    assert visits() == [] and missed_notices() == []


def test_only_visits_ended_within_the_last_week_are_flagged(scene, visit):
    assert flag(visit, 60 * 24 * 8) == 0
    assert visits() == [] and missed_notices() == []


def test_a_cancelled_visit_is_not_flagged(scene, visit):
    scheduling.cancel_shift(visit.shift, scene.a.secretary, "家人在")
    db.session.commit()
    assert flag(visit) == 0
    assert visits() == []


def test_a_report_after_the_flag_turns_the_visit_done(scene, visit):
    assert flag(visit, 0) == 1  # at the very end, before the volunteer's late check-in
    [missed] = visits()
    check_in(visit, scene.female, visit.care101.door_code, minutes=60)
    done = report(visit, scene.female, "来晚了，已做完", minutes=75)
    [row] = visits()
    assert row.id == missed.id == done.id
    assert (row.status, row.note) == ("done", "来晚了，已做完")
    assert row.reported_by_id == scene.female.person.id


def test_confirming_a_missed_visit_turns_it_done(scene, visit):
    assert flag(visit) == 1
    outcome = confirm(visit, scene.a.resident, [scene.female.person.id], minutes=90)
    assert outcome.hours_recorded == 1
    [row] = visits()
    assert row.status == "done" and row.confirmed_by_id == scene.a.resident.id
    assert len(ledger_rows(visit.signup.id)) == 1


# --- 7. coverage --------------------------------------------------------------------------------


def test_coverage_of_a_grid(scene):
    care101 = enrol(scene.household101, scene.elder101)
    care102 = enrol(scene.household102, scene.elder102)
    enrol(scene.household201, scene.elder201)  # grid 2: not listed
    task = weekly_task(scene, [scene.household101], capacity=2)
    shifts = occurrences(task.id)
    sign(shifts[0], scene.female)
    sign(shifts[0], scene.female2)
    sign(shifts[1], scene.male)
    rows = services.coverage(scene.a.grid.id)
    assert [r.care.id for r in rows] == [care101.id, care102.id]
    first, second = rows
    # Weekly from tomorrow: two visits in the next 14 days.
    assert [o.shift_id for o in first.occurrences] == [shifts[0].id, shifts[1].id]
    assert [(o.taken, o.capacity) for o in first.occurrences] == [(2, 2), (1, 2)]
    assert first.consent and not first.none and first.unfilled == 1
    assert second.consent and second.none and second.occurrences == [] and second.unfilled == 0
    assert [r.care.household.room for r in services.coverage(scene.a.grid2.id)] == ["201"]


def test_coverage_shows_withdrawn_consent_and_cancelled_visits(scene):
    enrol(scene.household101, scene.elder101)
    task = once_task(scene)
    [shift] = occurrences(task.id)
    scheduling.cancel_shift(shift, scene.a.secretary, "住院")
    end_consents(scene.elder101, "regular_help")
    db.session.commit()
    [row] = services.coverage(scene.a.grid.id)
    assert not row.consent
    assert [o.status for o in row.occurrences] == ["cancelled"]
    assert row.none and row.unfilled == 0


def test_coverage_of_an_empty_grid(scene):
    assert services.coverage(scene.a.grid.id) == []


# --- 8. the private-notes rule ------------------------------------------------------------------


def test_holds_place(scene):
    enrol(scene.household101, scene.elder101)
    task = once_task(scene)
    [shift] = occurrences(task.id)
    sign(shift, scene.female)
    sign(shift, scene.male)  # waitlisted
    assert services.holds_place(task.id, scene.female.person.id) is True
    assert services.holds_place(task.id, scene.male.person.id) is False
    assert services.holds_place(task.id, scene.female2.person.id) is False
    assert services.holds_place(task.id, None) is False
    other = once_task(scene, day=local_today() + 3 * DAY)
    assert services.holds_place(other.id, scene.female.person.id) is False


def test_holds_place_through_a_standing_place(scene):
    enrol(scene.household101, scene.elder101)
    task = weekly_task(scene)
    services.take_series(task, scene.female.person)
    services.take_series(task, scene.female2.person)  # waitlisted everywhere, but standing
    db.session.commit()
    assert signups_of(scene.female2.person.id, "confirmed") == []
    assert services.holds_place(task.id, scene.female.person.id) is True
    assert services.holds_place(task.id, scene.female2.person.id) is True
    services.leave_series(task, scene.female2.person)
    db.session.commit()
    assert services.holds_place(task.id, scene.female2.person.id) is False


def test_a_cancelled_place_no_longer_holds(scene):
    enrol(scene.household101, scene.elder101)
    task = once_task(scene)
    [shift] = occurrences(task.id)
    sign(shift, scene.female)
    signups.cancel_signup(shift, scene.female.person, now_utc())
    db.session.commit()
    assert services.holds_place(task.id, scene.female.person.id) is False
