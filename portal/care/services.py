"""Scheduled household help: enrolment, tasks, standing sign-ups, visits, missed visits, coverage.

The occurrences are shifts (kind ``help_visit``): creating a task goes through the schedulers'
own ``create_shift``/``create_series`` (their field rules and the 500-occurrence cap), signing up
through ``signups.sign_up`` (capacity, waitlist, overlap, eligibility; ``check_visitor`` adds the
household's wish), check-in through ``attendance.check_in`` and hours through
``attendance.record_hours`` (written once, then the points ledger). Services flush, never commit.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import case, exists, func, select, update
from sqlalchemy.orm import joinedload

from portal.auth.models import User
from portal.care.models import (
    VOLUNTEER_SEXES,
    CareHousehold,
    HelpTask,
    HelpVisit,
    TaskCommitment,
    help_task_household,
)
from portal.core.errors import DomainError
from portal.core.labels import label
from portal.core.timeutil import now_utc, to_local
from portal.database import insert_unless_conflict
from portal.extensions import db
from portal.help.models import Category, HelpRequest
from portal.notifications.services import notify
from portal.patrols import attendance, scheduling, signups
from portal.patrols.codes import ALPHABET, normalise_code
from portal.patrols.models import Shift, ShiftSeries, Signup
from portal.people.models import Person
from portal.places.models import Building, Household, grid_worker
from portal.trust.privacy import active_consent, give_consent
from portal.volunteers.models import Volunteer

CONSENT_PURPOSE = "regular_help"
DOOR_CODE_LENGTH = 8
MAX_HOUSEHOLDS = 10
MAX_PRIVATE_NOTES = 2000
MAX_SKILL = 40
MAX_NOTE = 500
MAX_COMMENT = 500
COVERAGE_DAYS = 14
MISSED_LOOKBACK = timedelta(days=7)  # the cron flags visits that ended within this window
REPORT_CLOSES_AFTER = attendance.CHECKOUT_CLOSES_AFTER


# --- enrolment ----------------------------------------------------------------------------------


def new_door_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(DOOR_CODE_LENGTH))


def _check_sex(value: str | None, errors: dict[str, str], key: str = "volunteer_sex") -> None:
    if value not in (None, *VOLUNTEER_SEXES):
        errors[key] = _("Choose from the list.")


def enrol_household(
    household: Household,
    person_id: int | None,
    volunteer_sex: str | None,
    actor: User,
    *,
    consent_given: bool,
) -> CareHousehold:
    """Enrol a household for regular help on the consent of one of its residents, recorded by
    staff now (a paper form). DomainError: no resident chosen, a person of another household,
    no consent ticked, a household already enrolled."""
    errors: dict[str, str] = {}
    person = db.session.get(Person, person_id) if person_id else None
    if person is None or person.household_id != household.id or person.erased_at is not None:
        errors["person_id"] = _("Choose a resident of this household.")
    if not consent_given:
        errors["consent"] = _(
            "Record the household's consent to regular help visits first "
            "(the resident signs the paper form)."
        )
    _check_sex(volunteer_sex, errors)
    existing = db.session.scalar(
        select(CareHousehold.id).where(CareHousehold.household_id == household.id)
    )
    if existing is not None:
        errors["_"] = _("This household is already enrolled for regular help.")
    if errors:
        raise DomainError(errors)
    give_consent(person, CONSENT_PURPOSE, recorded_by=actor)
    care = CareHousehold(
        community_id=household.community_id,
        grid_id=household.building.grid_id,
        household_id=household.id,
        consent_person_id=person.id,
        door_code=new_door_code(),
        volunteer_sex=volunteer_sex,
        created_by_id=actor.id,
    )
    db.session.add(care)
    db.session.flush()
    return care


def set_preference(care: CareHousehold, volunteer_sex: str | None) -> None:
    """The household's wish about who visits; applies to tasks made from now on."""
    errors: dict[str, str] = {}
    _check_sex(volunteer_sex, errors)
    if errors:
        raise DomainError(errors)
    care.volunteer_sex = volunteer_sex
    db.session.flush()


def has_consent(care: CareHousehold) -> bool:
    return active_consent(care.consent_person_id, CONSENT_PURPOSE) is not None


def consents_of(cares: list[CareHousehold]) -> set[int]:
    """Ids of the care households whose consenting resident's consent is still active."""
    from portal.trust.models import Consent

    person_ids = {c.consent_person_id for c in cares}
    if not person_ids:
        return set()
    active = set(
        db.session.scalars(
            select(Consent.person_id).where(
                Consent.person_id.in_(person_ids),
                Consent.purpose == CONSENT_PURPOSE,
                Consent.withdrawn_at.is_(None),
            )
        )
    )
    return {c.id for c in cares if c.consent_person_id in active}


def care_of_household(household_id: int) -> CareHousehold | None:
    return db.session.scalar(
        select(CareHousehold).where(CareHousehold.household_id == household_id)
    )


# --- tasks ---------------------------------------------------------------------------------------


def help_categories(community_id: int) -> list[Category]:
    """The minor neighbour-help categories a task may be for, in catalogue order."""
    return list(
        db.session.scalars(
            select(Category)
            .where(
                Category.community_id == community_id,
                Category.kind == "neighbour_help",
                Category.parent_id.is_not(None),
                Category.active.is_(True),
            )
            .order_by(Category.position, Category.id)
        )
    )


def task_checkin_code(task_id: int) -> str | None:
    """The door code of the task's first household (by room): what its occurrences take."""
    return db.session.scalar(
        select(CareHousehold.door_code)
        .join(help_task_household, help_task_household.c.household_id == CareHousehold.household_id)
        .join(Household, Household.id == CareHousehold.household_id)
        .where(help_task_household.c.task_id == task_id)
        .order_by(Household.room, Household.id)
        .limit(1)
    )


@dataclass
class TaskInput:
    household_ids: list[int]
    category_id: int | None
    title: str
    private_notes: str
    volunteer_sex: str | None
    repeat: str  # once | weekly
    plan: scheduling.ShiftPlan
    day: date | None = None
    weekdays: list[str] = field(default_factory=list)
    starts_on: date | None = None
    ends_on: date | None = None
    required_skill: str = ""


def _sex_wish_error(cares: list[CareHousehold], wanted: str | None) -> str | None:
    for care in cares:
        if care.volunteer_sex is not None and wanted != care.volunteer_sex:
            return _(
                "Room %(room)s asked for %(who)s: choose that for this task.",
                room=care.household.room,
                who=label("volunteer_sex", care.volunteer_sex),
            )
    return None


def create_task(
    community_id: int, actor: User, data: TaskInput, *, now: datetime | None = None
) -> HelpTask:
    """A help task and its occurrence(s). DomainError with every field's message, nothing kept
    (the caller rolls back): households not enrolled, without consent, in different buildings or
    outside the actor's grids; a category not of neighbour help; a volunteer choice the household
    asked not to receive; and every rule of a shift or a series (no end, over 500 dates)."""
    now = now or now_utc()
    errors: dict[str, str] = {}
    ids = sorted({i for i in data.household_ids if i})
    cares = list(
        db.session.scalars(
            select(CareHousehold)
            .options(joinedload(CareHousehold.household).joinedload(Household.building))
            .where(CareHousehold.household_id.in_(ids), CareHousehold.community_id == community_id)
        )
    ) if ids else []  # fmt: skip
    allowed_grids = scheduling.allowed_grid_ids(actor)
    if not ids or len(cares) != len(ids):
        errors["household_ids"] = _("Choose households enrolled for regular help.")
    elif len(ids) > MAX_HOUSEHOLDS:
        errors["household_ids"] = _("At most %(n)d households in one task.", n=MAX_HOUSEHOLDS)
    elif len({c.household.building_id for c in cares}) != 1:
        errors["household_ids"] = _("The households of one task must be in one building.")
    elif allowed_grids is not None and cares[0].grid_id not in allowed_grids:
        errors["household_ids"] = _("You can only plan help in your own grids.")
    else:
        consenting = consents_of(cares)
        missing = [c.household.room for c in cares if c.id not in consenting]
        if missing:
            errors["household_ids"] = _(
                "No consent to regular help is recorded for room %(rooms)s: "
                "record it on the household's care page first.",
                rooms="、".join(missing),
            )
    category = db.session.get(Category, data.category_id) if data.category_id else None
    if category not in help_categories(community_id):
        errors["category_id"] = _("Choose a kind of help from the list.")
    _check_sex(data.volunteer_sex, errors)
    if "household_ids" not in errors and "volunteer_sex" not in errors:
        wish = _sex_wish_error(cares, data.volunteer_sex)
        if wish:
            errors["volunteer_sex"] = wish
    skill = (data.required_skill or "").strip()
    if len(skill) > MAX_SKILL:
        errors["required_skill"] = _("At most %(n)d characters.", n=MAX_SKILL)
    notes = (data.private_notes or "").strip()
    if len(notes) > MAX_PRIVATE_NOTES:
        errors["private_notes"] = _("At most %(n)d characters.", n=MAX_PRIVATE_NOTES)
    if data.repeat not in ("once", "weekly"):
        errors["repeat"] = _("Choose from the list.")
    title = (data.title or "").strip()
    if not title and category is not None and not errors.keys() & {"household_ids"}:
        title = f"{category.name_zh} · {cares[0].household.building.name}"

    grid_id = cares[0].grid_id if cares and "household_ids" not in errors else None
    task = HelpTask(
        community_id=community_id,
        grid_id=grid_id or 0,
        building_id=cares[0].household.building_id if grid_id else 0,
        category_id=category.id if category else 0,
        title=title[:100],
        private_notes=notes,
        volunteer_sex=data.volunteer_sex,
        required_skill=skill[:MAX_SKILL],
        status="active",
        created_by_id=actor.id,
    )
    # An empty title is made from the category and building; when it cannot be (a wrong
    # household or category, already reported), a placeholder keeps out "give a title".
    # Checked as kind "other" (the schedulers accept only their own kinds); the occurrences
    # become "help_visit" by the overrides below.
    plan = scheduling.ShiftPlan(
        **{**data.plan.__dict__, "kind": "other", "title": title or "-", "grid_id": grid_id}
    )
    if not errors:
        db.session.add(task)
        db.session.flush()
        db.session.execute(
            help_task_household.insert(), [{"task_id": task.id, "household_id": i} for i in ids]
        )
    overrides = {"kind": "help_visit", "help_task_id": task.id, "leader_id": None}
    try:
        if data.repeat == "weekly":
            scheduling.create_series(
                community_id, actor, plan, weekdays=data.weekdays, starts_on=data.starts_on,
                ends_on=data.ends_on, now=now, overrides=overrides,
            )  # fmt: skip
        else:
            shift = scheduling.create_shift(
                community_id, actor, plan, data.day, now=now,
                overrides={**overrides, "checkin_code": "-"},
            )  # fmt: skip
            if not errors:
                shift.checkin_code = task_checkin_code(task.id)
    except DomainError as error:
        errors.update({k: v for k, v in error.errors.items() if k not in errors})
    if errors:
        # Route and grid are fixed by the households: their messages belong to the households.
        if "grid_id" in errors:
            errors.setdefault("household_ids", errors.pop("grid_id"))
        raise DomainError(errors)
    db.session.flush()
    return task


def task_series(task: HelpTask) -> ShiftSeries | None:
    return db.session.scalar(select(ShiftSeries).where(ShiftSeries.help_task_id == task.id))


def end_task(
    task: HelpTask, actor: User | None, reason: str, *, now: datetime | None = None
) -> int:
    """End a task: its future occurrences are cancelled (holders told once). Returns how many."""
    now = now or now_utc()
    if task.status == "ended":
        return 0
    cancelled = 0
    series = task_series(task)
    if series is not None and series.ends_on >= to_local(now).date() + timedelta(days=1):
        cancelled += scheduling.cancel_series(
            series, actor, to_local(now).date() + timedelta(days=1), reason, now=now
        )
    for shift in db.session.scalars(
        select(Shift).where(
            Shift.help_task_id == task.id, Shift.status == "scheduled", Shift.starts_at > now
        )
    ):
        cancelled += int(scheduling.cancel_shift(shift, actor, reason, now=now))
    task.status = "ended"
    db.session.flush()
    return cancelled


def stop_household_help(person: Person, *, now: datetime | None = None) -> int:
    """The resident withdrew the consent the enrolment rests on: every active task of the
    household ends and its coming visits are cancelled (volunteers told). Returns how many."""
    now = now or now_utc()
    household_ids = list(
        db.session.scalars(
            select(CareHousehold.household_id).where(CareHousehold.consent_person_id == person.id)
        )
    )
    if not household_ids:
        return 0
    tasks = db.session.scalars(
        select(HelpTask)
        .join(help_task_household, help_task_household.c.task_id == HelpTask.id)
        .where(help_task_household.c.household_id.in_(household_ids), HelpTask.status == "active")
        .distinct()
    ).all()
    reason = _("The household withdrew its consent to regular help visits.")
    return sum(end_task(task, None, reason, now=now) for task in tasks)


# --- who may see and do what ---------------------------------------------------------------------


def holds_place(task_id: int, person_id: int | None) -> bool:
    """Assigned: a confirmed place on an occurrence of the task, or the whole series."""
    if person_id is None:
        return False
    committed = exists().where(
        TaskCommitment.task_id == task_id, TaskCommitment.person_id == person_id
    )
    placed = exists().where(
        Signup.shift_id == Shift.id,
        Shift.help_task_id == task_id,
        Signup.person_id == person_id,
        Signup.status == "confirmed",
    )
    return bool(db.session.scalar(select(committed | placed)))


def lives_in(task: HelpTask, person_id: int | None) -> bool:
    """The person is a resident of one of the task's households."""
    if person_id is None:
        return False
    return (
        db.session.scalar(
            select(Person.id)
            .join(
                help_task_household,
                help_task_household.c.household_id == Person.household_id,
            )
            .where(help_task_household.c.task_id == task.id, Person.id == person_id)
        )
        is not None
    )


def check_visitor(task_id: int, person: Person) -> None:
    """The sign-up rules a task adds to the shifts' own: the household's wish about who visits,
    and the skill the task needs (named in the volunteer's registration)."""
    wanted, skill = db.session.execute(
        select(HelpTask.volunteer_sex, HelpTask.required_skill).where(HelpTask.id == task_id)
    ).one()
    if wanted is not None and person.sex != wanted:
        raise DomainError(
            {"_": _("This household asked for %(who)s.", who=label("volunteer_sex", wanted))}
        )
    if skill:
        skills = db.session.scalar(select(Volunteer.skills).where(Volunteer.person_id == person.id))
        if skill.casefold() not in (skills or "").casefold():
            raise DomainError(
                {
                    "_": _(
                        "This visit needs a volunteer whose registration names the skill "
                        "“%(skill)s”.",
                        skill=skill,
                    )
                }
            )


# --- the whole series ----------------------------------------------------------------------------


@dataclass
class SeriesOutcome:
    confirmed: int = 0
    waitlisted: int = 0
    skipped: list[tuple[date, str]] = field(default_factory=list)


def _future_occurrences(task_id: int, now: datetime) -> list[Shift]:
    return list(
        db.session.scalars(
            select(Shift)
            .where(
                Shift.help_task_id == task_id,
                Shift.status == "scheduled",
                Shift.starts_at > now,
            )
            .order_by(Shift.starts_at)
        )
    )


def take_series(task: HelpTask, person: Person, *, now: datetime | None = None) -> SeriesOutcome:
    """A standing place on every occurrence, now and as the series is extended. Occurrences the
    rules refuse (a clash, one already held) are skipped and named; the first rule that refuses
    every occurrence (not eligible, the household's wish) refuses the whole (DomainError)."""
    now = now or now_utc()
    if task.status != "active":
        raise DomainError({"_": _("This help task has ended.")})
    shifts = _future_occurrences(task.id, now)
    if not shifts:
        raise DomainError({"_": _("This task has no coming visits to sign up for.")})
    check_visitor(task.id, person)
    if signups.eligibility(person.id) is None:
        raise DomainError({"_": _("Only approved volunteers of this community can sign up.")})
    inserted = insert_unless_conflict(
        TaskCommitment,
        {"community_id": task.community_id, "task_id": task.id, "person_id": person.id,
         "created_at": now},
        ["task_id", "person_id"],
    )  # fmt: skip
    if inserted is None:
        raise DomainError({"_": _("You already help with every visit of this task.")})
    outcome = SeriesOutcome()
    held = signups.own_statuses(person.id, [s.id for s in shifts])
    for shift in shifts:
        if held.get(shift.id) in signups.HELD:
            continue
        try:
            result = signups.sign_up(shift, person, now, read_under_lock=True)
        except DomainError as error:
            outcome.skipped.append((to_local(shift.starts_at).date(), error.errors["_"]))
            continue
        if result.status == "confirmed":
            outcome.confirmed += 1
        else:
            outcome.waitlisted += 1
    return outcome


def leave_series(task: HelpTask, person: Person, *, now: datetime | None = None) -> int:
    """Give up the standing place: places on coming occurrences are given back (those past the
    cancel cut-off stay, and are counted as kept). Returns how many were given back."""
    now = now or now_utc()
    deleted = db.session.execute(
        TaskCommitment.__table__.delete().where(
            TaskCommitment.task_id == task.id, TaskCommitment.person_id == person.id
        )
    ).rowcount
    if not deleted:
        raise DomainError({"_": _("You have no standing place on this task.")})
    given = 0
    held = signups.own_statuses(person.id, [s.id for s in _future_occurrences(task.id, now)])
    for shift in _future_occurrences(task.id, now):
        if held.get(shift.id) not in signups.HELD:
            continue
        try:
            signups.cancel_signup(shift, person, now)
            given += 1
        except DomainError:
            continue
    return given


def sign_up_standing(task_id: int, shift_ids: list[int], now: datetime) -> int:
    """Places for the task's standing volunteers on new occurrences (series extension)."""
    person_ids = list(
        db.session.scalars(
            select(TaskCommitment.person_id)
            .where(TaskCommitment.task_id == task_id)
            .order_by(TaskCommitment.id)
        )
    )
    if not person_ids:
        return 0
    people = {p.id: p for p in db.session.scalars(select(Person).where(Person.id.in_(person_ids)))}
    shifts = db.session.scalars(
        select(Shift).where(Shift.id.in_(shift_ids)).order_by(Shift.starts_at)
    ).all()
    taken = 0
    for shift in shifts:
        for person_id in person_ids:
            try:
                signups.sign_up(shift, people[person_id], now, read_under_lock=True)
                taken += 1
            except DomainError:
                continue
    return taken


def is_standing(task_id: int, person_id: int | None) -> bool:
    if person_id is None:
        return False
    return (
        db.session.scalar(
            select(TaskCommitment.id).where(
                TaskCommitment.task_id == task_id, TaskCommitment.person_id == person_id
            )
        )
        is not None
    )


# --- the visit -----------------------------------------------------------------------------------


def visit_of(shift_id: int) -> HelpVisit | None:
    return db.session.scalar(select(HelpVisit).where(HelpVisit.shift_id == shift_id))


def _door_codes(task_id: int) -> list[str]:
    return list(
        db.session.scalars(
            select(CareHousehold.door_code)
            .join(
                help_task_household,
                help_task_household.c.household_id == CareHousehold.household_id,
            )
            .where(help_task_household.c.task_id == task_id)
        )
    )


def check_in_at_door(
    shift: Shift, person_id: int | None, code: str | None, now: datetime
) -> attendance.Outcome:
    """Check in with the door code of any of the task's households (the shift's own rules for
    the place held and the time window). DomainError({"code": ...})."""
    given = normalise_code(code)
    if not given:
        raise DomainError({"code": _("Enter the code on the household's door card.")})
    if not any(
        hmac.compare_digest(given.encode(), c.encode()) for c in _door_codes(shift.help_task_id)
    ):
        raise DomainError({"code": _("Wrong code. Check the card on the household's door.")})
    return attendance.check_in(shift, person_id, shift.checkin_code, now)


def _report_window_error(shift: Shift, now: datetime) -> str | None:
    if shift.status == "cancelled":
        return _("This visit was cancelled.")
    if now < attendance.checkin_opens(shift):
        return _("The visit has not begun yet.")
    if now > shift.ends_at + REPORT_CLOSES_AFTER:
        return _("Reports for this visit closed two hours after its end. Tell the grid worker.")
    return None


def report_visit(
    shift: Shift,
    person: Person | None,
    *,
    note: str,
    problem: bool,
    actor: User,
    now: datetime,
) -> HelpVisit:
    """The checked-in volunteer marks the visit done with a short note, or says something is
    wrong (one tap: the note is optional): then a request goes to the grid worker in the same
    step, linked to the visit. DomainError({"note"|"_": ...}): no place, not checked in, outside
    the window, a note too long, a visit already reported."""
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise DomainError({"note": _("At most %(n)d characters.", n=MAX_NOTE)})
    window = _report_window_error(shift, now)
    if window:
        raise DomainError({"_": window})
    signup = attendance.own_signup(shift, person.id if person else None)
    if signup is None:
        raise DomainError({"_": _("You do not have a place on this visit.")})
    if signup.checked_in_at is None:
        raise DomainError({"_": _("Check in at the door first, with the household's code.")})
    visit = visit_of(shift.id)
    if visit is not None and visit.status != "missed":
        raise DomainError({"_": _("This visit was already reported.")})
    status = "problem" if problem else "done"
    request_id = _open_problem_request(shift, actor, note, now).id if problem else None
    values = {
        "status": status, "note": note, "reported_by_id": person.id, "reported_at": now,
        "request_id": request_id,
    }  # fmt: skip
    if visit is None:
        visit = insert_unless_conflict(
            HelpVisit,
            {"community_id": shift.community_id, "task_id": shift.help_task_id,
             "shift_id": shift.id, "created_at": now, **values},
            ["shift_id"],
        )  # fmt: skip
        if visit is None:
            raise DomainError({"_": _("This visit was already reported.")})
    else:
        won = db.session.execute(
            update(HelpVisit)
            .where(HelpVisit.id == visit.id, HelpVisit.status == "missed")
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won != 1:
            raise DomainError({"_": _("This visit was already reported.")})
        db.session.refresh(visit)
    return visit


def _open_problem_request(shift: Shift, actor: User, note: str, now: datetime) -> HelpRequest:
    """A request to the grid worker of the task's grid, at the task's building."""
    from portal.help.intake import create_request

    task = db.session.get(HelpTask, shift.help_task_id)
    rooms = "、".join(h.room for h in task.households)
    description = _(
        "Help visit “%(title)s” on %(when)s, room %(rooms)s: %(note)s",
        title=task.title,
        when=scheduling.local_when(shift.starts_at),
        rooms=rooms,
        note=note or _("no details given, please call the volunteer"),
    )
    req, _names = create_request(
        actor,
        category_id=task.category_id,
        description=description[:1000],
        where="building",
        building_id=task.building_id,
        urgency="urgent",
        now=now,
    )
    return req


@dataclass
class ConfirmOutcome:
    visit: HelpVisit
    hours_recorded: int  # volunteers whose hours were written by this confirmation


def may_confirm(task: HelpTask, user: User) -> bool:
    """The household (a resident of it) or the staff of its grid confirm a visit."""
    if user.role in ("grid_worker", "secretary"):
        return True
    return lives_in(task, user.person_id)


def confirm_visit(
    shift: Shift,
    actor: User,
    *,
    came: list[int],
    rating: int | None,
    comment: str,
    now: datetime,
) -> ConfirmOutcome:
    """The household (or the grid worker on its behalf) confirms who came, and may rate.

    Once only: the visit's ``confirmed_at`` moves by a conditional UPDATE; each volunteer who came
    is marked present and gets the visit's planned hours once (``record_hours``, then the
    points ledger). A resident's confirmation stands in for a volunteer's check-in.
    DomainError: before the visit began, a cancelled or missed-and-unattended visit, nobody
    chosen, a bad rating, a comment too long, already confirmed."""
    comment = (comment or "").strip()
    errors: dict[str, str] = {}
    if rating is not None and not 1 <= rating <= 5:
        errors["rating"] = _("Choose 1 to 5 stars, or none.")
    if len(comment) > MAX_COMMENT:
        errors["comment"] = _("At most %(n)d characters.", n=MAX_COMMENT)
    if shift.status == "cancelled":
        errors["_"] = _("This visit was cancelled.")
    elif now < shift.starts_at:
        errors["_"] = _("A visit can be confirmed once it has begun.")
    holders = {
        s.person_id: s
        for s in db.session.scalars(
            select(Signup).where(Signup.shift_id == shift.id, Signup.status == "confirmed")
        )
    }
    chosen = [holders[i] for i in dict.fromkeys(came) if i in holders]
    if not chosen and "_" not in errors:
        errors["came"] = _("Tick the volunteers who came.")
    if errors:
        raise DomainError(errors)
    visit = visit_of(shift.id)
    if visit is None:
        visit = insert_unless_conflict(
            HelpVisit,
            {"community_id": shift.community_id, "task_id": shift.help_task_id,
             "shift_id": shift.id, "status": "done", "created_at": now},
            ["shift_id"],
        )  # fmt: skip
        if visit is None:
            visit = visit_of(shift.id)
    won = db.session.execute(
        update(HelpVisit)
        .where(HelpVisit.id == visit.id, HelpVisit.confirmed_at.is_(None))
        .values(
            confirmed_at=now,
            confirmed_by_id=actor.id,
            rating=rating,
            rating_comment=comment,
            status=case((HelpVisit.status == "missed", "done"), else_=HelpVisit.status),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        raise DomainError({"_": _("This visit was already confirmed.")})
    db.session.refresh(visit)
    hours = attendance.hours_between(shift, shift.starts_at, shift.ends_at)
    recorded = 0
    for signup in chosen:
        db.session.execute(
            update(Signup)
            .where(Signup.id == signup.id)
            .values(
                attendance="present",
                attendance_marked_by_id=actor.id,
                checked_in_at=func.coalesce(Signup.checked_in_at, now),
            )
            .execution_options(synchronize_session=False)
        )
        db.session.refresh(signup)
        recorded += int(attendance.record_hours(signup, hours, now))
    return ConfirmOutcome(visit=visit, hours_recorded=recorded)


# --- missed visits (the cron job) ----------------------------------------------------------------


def _grid_workers(grid_ids: set[int]) -> dict[int, list[int]]:
    rows = db.session.execute(
        select(grid_worker.c.grid_id, User.id)
        .join(User, User.id == grid_worker.c.user_id)
        .where(grid_worker.c.grid_id.in_(grid_ids), User.active.is_(True))
        .order_by(User.id)
    ).all()
    found: dict[int, list[int]] = {}
    for grid_id, user_id in rows:
        found.setdefault(grid_id, []).append(user_id)
    return found


def flag_missed_visits(now: datetime | None = None) -> int:
    """Flag visits that ended (within the last week) with nobody checked in and no report: a
    ``missed`` visit row (once: UNIQUE(shift_id)) and a notification to the grid's workers (once
    each: their dedupe key). Safe to run any number of times. Returns how many were flagged."""
    now = now or now_utc()
    checked_in = exists().where(
        Signup.shift_id == Shift.id,
        Signup.status == "confirmed",
        Signup.checked_in_at.is_not(None),
    )
    reported = exists().where(HelpVisit.shift_id == Shift.id)
    rows = db.session.execute(
        select(Shift.id, Shift.community_id, Shift.grid_id, Shift.help_task_id, Shift.title,
               Shift.starts_at)
        .where(
            Shift.kind == "help_visit",
            Shift.status == "scheduled",
            Shift.ends_at <= now,
            Shift.ends_at > now - MISSED_LOOKBACK,
            ~checked_in,
            ~reported,
        )
        .order_by(Shift.ends_at, Shift.id)
    ).all()  # fmt: skip
    if not rows:
        return 0
    workers = _grid_workers({r.grid_id for r in rows})
    flagged = 0
    for row in rows:
        visit = insert_unless_conflict(
            HelpVisit,
            {"community_id": row.community_id, "task_id": row.help_task_id, "shift_id": row.id,
             "status": "missed", "created_at": now},
            ["shift_id"],
        )  # fmt: skip
        if visit is None:
            continue
        flagged += 1
        for user_id in workers.get(row.grid_id, []):
            notify(
                user_id,
                "help_visit_missed",
                dedupe_key=f"help_visit_missed:shift:{row.id}",
                params={"title": row.title, "when": scheduling.local_when(row.starts_at)},
                link=scheduling.shift_link(row.id),
                community_id=row.community_id,
            )
    return flagged


# --- lists ---------------------------------------------------------------------------------------


@dataclass
class Occurrence:
    shift_id: int
    starts_at: datetime
    taken: int
    capacity: int
    status: str

    @property
    def unfilled(self) -> bool:
        return self.status == "scheduled" and self.taken < self.capacity


@dataclass
class CoverageRow:
    care: CareHousehold
    consent: bool
    occurrences: list[Occurrence]

    @property
    def none(self) -> bool:
        return not any(o.status == "scheduled" for o in self.occurrences)

    @property
    def unfilled(self) -> int:
        return sum(1 for o in self.occurrences if o.unfilled)


def coverage_query(grid_id: int):
    """The grid's care households, by building and room (for a paginated page)."""
    return (
        select(CareHousehold)
        .options(
            joinedload(CareHousehold.household).joinedload(Household.building),
            joinedload(CareHousehold.consent_person),
        )
        .join(Household, Household.id == CareHousehold.household_id)
        .join(Building, Building.id == Household.building_id)
        .where(CareHousehold.grid_id == grid_id)
        .order_by(Building.name, Household.room, CareHousehold.id)
    )


def coverage(grid_id: int, now: datetime | None = None) -> list[CoverageRow]:
    """Every care household of the grid with its coming visits (see ``coverage_rows``)."""
    return coverage_rows(list(db.session.scalars(coverage_query(grid_id))), now)


def coverage_rows(cares: list[CareHousehold], now: datetime | None = None) -> list[CoverageRow]:
    """These care households and the visits each is scheduled to get in the next 14 days; two
    queries whatever their number."""
    now = now or now_utc()
    rows = db.session.execute(
        select(
            help_task_household.c.household_id,
            Shift.id,
            Shift.starts_at,
            Shift.taken,
            Shift.capacity,
            Shift.status,
        )
        .join(Shift, Shift.help_task_id == help_task_household.c.task_id)
        .where(
            help_task_household.c.household_id.in_([c.household_id for c in cares]),
            Shift.starts_at > now,
            Shift.starts_at <= now + timedelta(days=COVERAGE_DAYS),
        )
        .order_by(Shift.starts_at, Shift.id)
    ).all() if cares else []  # fmt: skip
    by_household: dict[int, list[Occurrence]] = {}
    for household_id, *values in rows:
        by_household.setdefault(household_id, []).append(Occurrence(*values))
    consenting = consents_of(cares)
    return [
        CoverageRow(
            care=c, consent=c.id in consenting, occurrences=by_household.get(c.household_id, [])
        )
        for c in cares
    ]


def household_tasks(household_id: int) -> list[HelpTask]:
    return list(
        db.session.scalars(
            select(HelpTask)
            .options(joinedload(HelpTask.category))
            .join(help_task_household, help_task_household.c.task_id == HelpTask.id)
            .where(help_task_household.c.household_id == household_id)
            .order_by(HelpTask.status, HelpTask.id.desc())
        )
    )


def visits_query(household_id: int):
    """The household's visits, newest first (for a paginated history)."""
    return (
        select(HelpVisit)
        .options(joinedload(HelpVisit.shift))
        .join(help_task_household, help_task_household.c.task_id == HelpVisit.task_id)
        .join(Shift, Shift.id == HelpVisit.shift_id)
        .where(help_task_household.c.household_id == household_id)
        .order_by(Shift.starts_at.desc(), HelpVisit.id.desc())
    )


def visitors_of(shift_ids: list[int]) -> dict[int, list[Signup]]:
    """Confirmed sign-ups (with their person) of these shifts, in one query."""
    if not shift_ids:
        return {}
    found: dict[int, list[Signup]] = {}
    for signup in db.session.scalars(
        select(Signup)
        .options(joinedload(Signup.person))
        .where(Signup.shift_id.in_(shift_ids), Signup.status == "confirmed")
        .order_by(Signup.id)
    ):
        found.setdefault(signup.shift_id, []).append(signup)
    return found


def _next_start(now: datetime):
    return (
        select(func.min(Shift.starts_at))
        .where(
            Shift.help_task_id == HelpTask.id,
            Shift.status == "scheduled",
            Shift.starts_at > now,
        )
        .correlate(HelpTask)
        .scalar_subquery()
    )


def open_tasks_query(community_id: int, grid_ids: list[int] | None, now: datetime):
    """Active tasks (of these grids) with a coming occurrence, soonest first."""
    next_start = _next_start(now)
    query = (
        select(HelpTask)
        .options(
            joinedload(HelpTask.category), joinedload(HelpTask.grid), joinedload(HelpTask.building)
        )
        .where(HelpTask.community_id == community_id, HelpTask.status == "active")
        .where(next_start.is_not(None))
        .order_by(next_start, HelpTask.id)
    )
    if grid_ids is not None:
        query = query.where(HelpTask.grid_id.in_(grid_ids))
    return query


def next_starts(task_ids: list[int], now: datetime) -> dict[int, datetime]:
    """Each task's next scheduled occurrence, in one query."""
    if not task_ids:
        return {}
    rows = db.session.execute(
        select(Shift.help_task_id, func.min(Shift.starts_at))
        .where(
            Shift.help_task_id.in_(task_ids),
            Shift.status == "scheduled",
            Shift.starts_at > now,
        )
        .group_by(Shift.help_task_id)
    ).all()
    return {task_id: _aware(start) for task_id, start in rows}


def _aware(moment: datetime) -> datetime:
    """min() over a UTC column comes back naive on SQLite: make it aware again."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def coming_occurrences(task_id: int, now: datetime, limit: int = 20) -> list[Shift]:
    return list(
        db.session.scalars(
            select(Shift)
            .where(Shift.help_task_id == task_id, Shift.starts_at > now - timedelta(days=1))
            .order_by(Shift.starts_at)
            .limit(limit)
        )
    )
