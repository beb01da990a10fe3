"""On the day of a shift: check-in and check-out, attendance and hours, the door-watch checklist,
and the patrol report with its hazards.

Services validate, add and flush; the view commits. Every "only once" rule is a conditional
UPDATE whose row count says whether it happened (a double tap, two leaders at once), and times
come in as ``now`` so that tests can fix them.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from flask_babel import format_datetime
from flask_babel import gettext as _
from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import contains_eager, joinedload, selectinload

from portal.auth.models import User
from portal.core.errors import DomainError
from portal.core.photos import PreparedPhoto, delete_photo, store_photo
from portal.extensions import db
from portal.patrols.codes import normalise_code
from portal.patrols.models import (
    ATTENDANCE,
    VISIT_OUTCOMES,
    DoorVisit,
    Hazard,
    PatrolReport,
    Shift,
    Signup,
)
from portal.people.models import Person
from portal.places.models import Entrance, Household

CHECKIN_OPENS_BEFORE = timedelta(minutes=30)
CHECKOUT_CLOSES_AFTER = timedelta(hours=2)
QUARTER_HOUR_SECONDS = 15 * 60
NOTE_MAX = 500
SUMMARY_MAX = 4000
DESCRIPTION_MAX = 500
LOCATION_MAX = 200


def _when(moment: datetime) -> str:
    """A moment as local wall-clock text for messages."""
    return format_datetime(moment, "yyyy-MM-dd HH:mm")


def _cancelled_error(shift: Shift, key: str = "_") -> DomainError:
    return DomainError({key: _("This shift was cancelled.")})


@dataclass
class Outcome:
    """What an action did: ``won`` is False when it had already happened (nothing moved)."""

    signup: Signup
    won: bool
    hours_recorded: bool = False


# --- check-in and check-out -------------------------------------------------------------------


def checkin_opens(shift: Shift) -> datetime:
    return shift.starts_at - CHECKIN_OPENS_BEFORE


def checkout_closes(shift: Shift) -> datetime:
    return shift.ends_at + CHECKOUT_CLOSES_AFTER


def code_is_open(shift: Shift, now: datetime) -> bool:
    """The check-in code works from 30 minutes before the start to the end of the shift."""
    return checkin_opens(shift) <= now <= shift.ends_at


def own_signup(shift: Shift, person_id: int | None) -> Signup | None:
    """The person's confirmed place on this shift, if they hold one."""
    if person_id is None:
        return None
    return db.session.scalar(
        select(Signup).where(
            Signup.shift_id == shift.id,
            Signup.person_id == person_id,
            Signup.status == "confirmed",
        )
    )


def _window_error(shift: Shift, now: datetime) -> DomainError | None:
    if now < checkin_opens(shift):
        return DomainError(
            {
                "code": _(
                    "This code is not valid now: check-in opens at %(time)s.",
                    time=_when(checkin_opens(shift)),
                )
            }
        )
    if now > shift.ends_at:
        return DomainError(
            {
                "code": _(
                    "This code is not valid now: the shift ended at %(time)s.",
                    time=_when(shift.ends_at),
                )
            }
        )
    return None


def validate_checkin(
    shift: Shift, person_id: int | None, code: str | None, now: datetime
) -> Signup:
    """The signup that ``code`` checks in now; changes nothing.

    Raises DomainError({"code": ...}) for a cancelled shift, an empty or wrong code, a person
    without a place on the shift, or a code used too early or after the end.
    """
    code = normalise_code(code)
    if not code:
        raise DomainError({"code": _("Enter the check-in code.")})
    if shift.status == "cancelled":
        raise _cancelled_error(shift, "code")
    if not hmac.compare_digest(code.encode(), shift.checkin_code.encode()):
        raise DomainError({"code": _("Wrong code. Check it with the shift leader.")})
    signup = own_signup(shift, person_id)
    if signup is None:
        raise DomainError({"code": _("You are not signed up for this shift.")})
    error = _window_error(shift, now)
    if error is not None:
        raise error
    return signup


def find_signup_for_code(
    person_id: int | None, community_ids: list[int], code: str | None, now: datetime
) -> Signup:
    """The person's confirmed signup on the shift (of these communities) that has ``code``.

    Raises DomainError({"code": ...}): empty or unknown code, or no place on that shift.
    """
    code = normalise_code(code)
    if not code:
        raise DomainError({"code": _("Enter the check-in code.")})
    shift_ids = list(
        db.session.scalars(
            select(Shift.id).where(
                Shift.checkin_code == code, Shift.community_id.in_(community_ids)
            )
        )
    )
    if not shift_ids:
        raise DomainError({"code": _("Wrong code. Check it with the shift leader.")})
    signups = []
    if person_id is not None:
        signups = list(
            db.session.scalars(
                select(Signup)
                .options(joinedload(Signup.shift))
                .where(
                    Signup.shift_id.in_(shift_ids),
                    Signup.person_id == person_id,
                    Signup.status == "confirmed",
                )
            )
        )
    if not signups:
        raise DomainError({"code": _("You are not signed up for the shift with this code.")})
    # Codes are random per shift; should two of one's shifts share one, take the one on now.
    signups.sort(key=lambda s: (not code_is_open(s.shift, now), abs(s.shift.starts_at - now)))
    return signups[0]


def check_in(shift: Shift, person_id: int | None, code: str | None, now: datetime) -> Outcome:
    """Check the person in with the shift's code. A second check-in keeps the first time
    (``won=False``). Raises DomainError as validate_checkin does."""
    signup = validate_checkin(shift, person_id, code, now)
    won = db.session.execute(
        update(Signup)
        .where(
            Signup.id == signup.id,
            Signup.status == "confirmed",
            Signup.checked_in_at.is_(None),
        )
        .values(checked_in_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(signup)
    return Outcome(signup=signup, won=won == 1)


def check_out(shift: Shift, person_id: int | None, now: datetime) -> Outcome:
    """Check the person out (once) and record their hours from the two times.

    Raises DomainError({"_": ...}) before check-in, before the start, after the check-out
    window closed, or when the leader marked the person absent.
    """
    if shift.status == "cancelled":
        raise _cancelled_error(shift)
    if shift.help_task_id is not None:
        # A household help visit's hours come with the household's confirmation (portal.care).
        raise DomainError(
            {"_": _("Mark the visit done instead: the household confirms it and your hours.")}
        )
    signup = own_signup(shift, person_id)
    if signup is None:
        raise DomainError({"_": _("You are not signed up for this shift.")})
    if signup.checked_in_at is None:
        raise DomainError({"_": _("Check in first: you have not checked in to this shift.")})
    if signup.checked_out_at is not None:
        return Outcome(signup=signup, won=False)
    if signup.attendance == "no_show":
        raise DomainError({"_": _("The shift leader marked you absent. Ask them to correct it.")})
    if now < shift.starts_at:
        raise DomainError(
            {
                "_": _(
                    "You can check out once the shift has started at %(time)s.",
                    time=_when(shift.starts_at),
                )
            }
        )
    if now > checkout_closes(shift):
        raise DomainError(
            {
                "_": _(
                    "Check-out closed at %(time)s. "
                    "Ask the shift leader to confirm your attendance.",
                    time=_when(checkout_closes(shift)),
                )
            }
        )
    won = db.session.execute(
        update(Signup)
        .where(
            Signup.id == signup.id,
            Signup.status == "confirmed",
            Signup.checked_in_at.is_not(None),
            Signup.checked_out_at.is_(None),
            or_(Signup.attendance.is_(None), Signup.attendance == "present"),
        )
        .values(checked_out_at=now, attendance="present")
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(signup)
    if won != 1:
        if signup.attendance == "no_show":
            raise DomainError(
                {"_": _("The shift leader marked you absent. Ask them to correct it.")}
            )
        return Outcome(signup=signup, won=False)
    hours = hours_between(shift, signup.checked_in_at, signup.checked_out_at)
    recorded = record_hours(signup, hours, now)
    return Outcome(signup=signup, won=True, hours_recorded=recorded)


def open_checkins(person_id: int | None, now: datetime) -> list[Signup]:
    """The person's shifts checked in to and not yet out of, while check-out is still open."""
    if person_id is None:
        return []
    return list(
        db.session.scalars(
            select(Signup)
            .join(Signup.shift)
            .options(contains_eager(Signup.shift))
            .where(
                Signup.person_id == person_id,
                Signup.status == "confirmed",
                Signup.checked_in_at.is_not(None),
                Signup.checked_out_at.is_(None),
                Shift.ends_at >= now - CHECKOUT_CLOSES_AFTER,
            )
            .order_by(Shift.starts_at)
        )
    )


# --- attendance and hours ---------------------------------------------------------------------


def hours_between(shift: Shift, start: datetime, end: datetime) -> Decimal:
    """Hours of [start, end] inside the shift's window, rounded down to a quarter hour."""
    seconds = (min(end, shift.ends_at) - max(start, shift.starts_at)).total_seconds()
    quarters = int(max(seconds, 0) // QUARTER_HOUR_SECONDS)
    return (Decimal(quarters) / 4).quantize(Decimal("0.01"))


def record_hours(signup: Signup, hours: Decimal, now: datetime) -> bool:
    """Write a signup's verified hours once; False when they had already been recorded."""
    won = db.session.execute(
        update(Signup)
        .where(Signup.id == signup.id, Signup.hours_recorded_at.is_(None))
        .values(hours=hours, hours_recorded_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(signup)
    if won == 1:
        # Points and hours enter the ledger in the same transaction that verifies them.
        from portal.points.ledger import award_signup

        award_signup(signup)
    return won == 1


def verified_hours_for(person_id: int) -> Decimal:
    """The person's total recorded (verified) hours over all shifts."""
    total = db.session.scalar(
        select(func.coalesce(func.sum(Signup.hours), 0)).where(
            Signup.person_id == person_id, Signup.hours_recorded_at.is_not(None)
        )
    )
    return Decimal(str(total)).quantize(Decimal("0.01"))


def presence_hours(shift: Shift, signup: Signup) -> Decimal:
    """Hours for a leader's "present": from the times known, else the shift's whole length."""
    if signup.checked_in_at is not None:
        return hours_between(shift, signup.checked_in_at, signup.checked_out_at or shift.ends_at)
    return hours_between(shift, shift.starts_at, shift.ends_at)


def mark_attendance(signup: Signup, value: str, actor: User, now: datetime) -> Outcome:
    """The leader's mark: "present" records hours (once); "no_show" is refused once hours
    were recorded. Raises DomainError({"_": ...}) for that, a cancelled shift, a place not
    held, or a mark made before check-in opens."""
    shift = signup.shift
    name = signup.person.name
    if value not in ATTENDANCE:
        raise DomainError({"_": _("Choose present or no-show.")})
    if shift.status == "cancelled":
        raise _cancelled_error(shift)
    if signup.status != "confirmed":
        raise DomainError({"_": _("%(name)s does not hold a place on this shift.", name=name)})
    if now < checkin_opens(shift):
        raise DomainError(
            {"_": _("Attendance can be marked from %(time)s.", time=_when(checkin_opens(shift)))}
        )
    if value == "no_show":
        won = db.session.execute(
            update(Signup)
            .where(Signup.id == signup.id, Signup.hours_recorded_at.is_(None))
            .values(attendance="no_show", attendance_marked_by_id=actor.id)
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.refresh(signup)
        if won != 1:
            raise DomainError(
                {
                    "_": _(
                        "Hours were already recorded for %(name)s: they cannot be marked as a "
                        "no-show any more.",
                        name=name,
                    )
                }
            )
        return Outcome(signup=signup, won=True)
    db.session.execute(
        update(Signup)
        .where(Signup.id == signup.id)
        .values(attendance="present", attendance_marked_by_id=actor.id)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(signup)
    recorded = record_hours(signup, presence_hours(shift, signup), now)
    return Outcome(signup=signup, won=True, hours_recorded=recorded)


def roster(shift: Shift) -> list[Signup]:
    """Confirmed places on the shift with their people, in sign-up order (one query)."""
    return list(
        db.session.scalars(
            select(Signup)
            .options(joinedload(Signup.person))
            .where(Signup.shift_id == shift.id, Signup.status == "confirmed")
            .order_by(Signup.created_at, Signup.id)
        )
    )


def roster_entry(signup_id: int) -> Signup:
    """One place with its person (for a row re-rendered after a mark)."""
    return db.session.scalar(
        select(Signup).options(joinedload(Signup.person)).where(Signup.id == signup_id)
    )


# --- door watch -------------------------------------------------------------------------------


def route_building_ids(shift: Shift) -> list[int]:
    """The buildings of the shift's route, in route order, each once."""
    ids: list[int] = []
    for stop in shift.route or []:
        building_id = stop.get("building_id") if isinstance(stop, dict) else None
        if isinstance(building_id, int) and building_id not in ids:
            ids.append(building_id)
    return ids


def has_door_watch(shift: Shift) -> bool:
    return shift.kind == "door_watch" or bool(route_building_ids(shift))


def on_route(shift: Shift, household: Household) -> bool:
    return (
        household.community_id == shift.community_id
        and household.building_id in route_building_ids(shift)
    )


@dataclass
class CareHousehold:
    """A household to call on: its residents flagged for care (with consent), and the visit."""

    household: Household
    residents: list[Person] = field(default_factory=list)
    visit: DoorVisit | None = None


def _room_key(room: str) -> tuple:
    digits = "".join(ch for ch in room if ch.isdigit())
    return (int(digits) if digits else 0, room)


def care_households(shift: Shift, household_id: int | None = None) -> list[CareHousehold]:
    """Households of the route's buildings with a resident flagged for care who consented,
    in route order, with their visits on this shift. Two queries, whatever the route's size."""
    building_ids = route_building_ids(shift)
    if not building_ids:
        return []
    query = (
        select(Person)
        .join(Person.household)
        .join(Household.building)
        .outerjoin(Household.entrance)
        .options(
            contains_eager(Person.household).contains_eager(Household.building),
            contains_eager(Person.household).contains_eager(Household.entrance),
        )
        .where(
            Household.building_id.in_(building_ids),
            Household.community_id == shift.community_id,
            Person.community_id == shift.community_id,
            Person.care_consent_at.is_not(None),
            or_(Person.lives_alone, Person.empty_nest, Person.disabled),
        )
        .order_by(Person.id)
    )
    if household_id is not None:
        query = query.where(Household.id == household_id)
    rows: dict[int, CareHousehold] = {}
    for person in db.session.scalars(query).unique():
        row = rows.setdefault(person.household_id, CareHousehold(household=person.household))
        row.residents.append(person)
    if not rows:
        return []
    for visit in db.session.scalars(
        select(DoorVisit).where(
            DoorVisit.shift_id == shift.id, DoorVisit.household_id.in_(list(rows))
        )
    ):
        rows[visit.household_id].visit = visit
    position = {building_id: i for i, building_id in enumerate(building_ids)}

    def order(row: CareHousehold) -> tuple:
        household = row.household
        entrance: Entrance | None = household.entrance
        return (
            position[household.building_id],
            entrance.name if entrance else "",
            _room_key(household.room),
            household.id,
        )

    return sorted(rows.values(), key=order)


def care_household(shift: Shift, household: Household) -> CareHousehold:
    """One row of the checklist (after a visit was recorded)."""
    found = care_households(shift, household.id)
    if found:
        return found[0]
    visit = db.session.scalar(
        select(DoorVisit).where(
            DoorVisit.shift_id == shift.id, DoorVisit.household_id == household.id
        )
    )
    return CareHousehold(household=household, visit=visit)


def record_visit(
    shift: Shift,
    household: Household,
    outcome: str,
    note: str | None,
    actor: User,
    now: datetime,
) -> DoorVisit:
    """Record (or correct) the visit to a household on this shift: one row per shift and
    household, whoever taps first. ``household`` must already be checked with on_route().
    Raises DomainError for an unknown outcome, a long note, a cancelled or not yet open shift."""
    note = (note or "").strip()
    errors = {}
    if outcome not in VISIT_OUTCOMES:
        errors["outcome"] = _("Choose how the visit went.")
    if len(note) > NOTE_MAX:
        errors["note"] = _("At most %(max)d characters.", max=NOTE_MAX)
    if errors:
        raise DomainError(errors)
    if shift.status == "cancelled":
        raise _cancelled_error(shift)
    if now < checkin_opens(shift):
        raise DomainError(
            {"_": _("Visits can be recorded from %(time)s.", time=_when(checkin_opens(shift)))}
        )
    values = {
        "community_id": shift.community_id,
        "shift_id": shift.id,
        "household_id": household.id,
        "outcome": outcome,
        "note": note,
        "visited_by_id": actor.id,
        "visited_at": now,
    }
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    statement = insert(DoorVisit).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["shift_id", "household_id"],
        set_={
            "outcome": statement.excluded.outcome,
            "note": statement.excluded.note,
            "visited_by_id": statement.excluded.visited_by_id,
            "visited_at": statement.excluded.visited_at,
        },
    )
    db.session.execute(statement)
    visit = db.session.scalar(
        select(DoorVisit)
        .where(DoorVisit.shift_id == shift.id, DoorVisit.household_id == household.id)
        .execution_options(populate_existing=True)
    )
    return visit


# --- the patrol report ------------------------------------------------------------------------


def report_open(shift: Shift, now: datetime) -> bool:
    """A report is filed once the shift has started, and never for a cancelled one."""
    return shift.status != "cancelled" and now >= shift.starts_at


def _require_report_open(shift: Shift, now: datetime, key: str = "_") -> None:
    if shift.status == "cancelled":
        raise _cancelled_error(shift, key)
    if now < shift.starts_at:
        raise DomainError(
            {
                key: _(
                    "The report can be filed once the shift has started at %(time)s.",
                    time=_when(shift.starts_at),
                )
            }
        )


def report_for(shift: Shift) -> PatrolReport | None:
    """The shift's report with its hazards (two queries), or None."""
    return db.session.scalar(
        select(PatrolReport)
        .options(selectinload(PatrolReport.hazards))
        .where(PatrolReport.shift_id == shift.id)
    )


def _report_of(shift: Shift, actor: User, now: datetime) -> PatrolReport:
    report = report_for(shift)
    if report is not None:
        return report
    report = PatrolReport(
        community_id=shift.community_id, shift_id=shift.id, filed_by_id=actor.id, filed_at=now
    )
    try:
        with db.session.begin_nested():
            db.session.add(report)
            db.session.flush()
    except IntegrityError:
        # Two leaders filing at once: UNIQUE(shift_id) kept one report; use it.
        report = report_for(shift)
    return report


def save_report(shift: Shift, summary: str | None, actor: User, now: datetime) -> PatrolReport:
    """File (or revise) the shift's one report. Raises DomainError({"summary"|"_": ...})."""
    summary = (summary or "").strip()
    if not summary:
        raise DomainError({"summary": _("Write what the patrol saw.")})
    if len(summary) > SUMMARY_MAX:
        raise DomainError({"summary": _("At most %(max)d characters.", max=SUMMARY_MAX)})
    _require_report_open(shift, now)
    report = _report_of(shift, actor, now)
    report.summary = summary
    report.filed_by_id = actor.id
    report.filed_at = now
    db.session.flush()
    return report


def add_hazard(
    shift: Shift,
    description: str | None,
    location: str | None,
    photo: PreparedPhoto | None,
    actor: User,
    now: datetime,
) -> Hazard:
    """Add one hazard (with an optional photo) to the shift's report, filing the report if
    needed. Raises DomainError({"description"|"location"|"photo"|"_": ...})."""
    description = (description or "").strip()
    location = (location or "").strip()
    errors = {}
    if not description:
        errors["description"] = _("Describe the hazard.")
    elif len(description) > DESCRIPTION_MAX:
        errors["description"] = _("At most %(max)d characters.", max=DESCRIPTION_MAX)
    if len(location) > LOCATION_MAX:
        errors["location"] = _("At most %(max)d characters.", max=LOCATION_MAX)
    if errors:
        raise DomainError(errors)
    _require_report_open(shift, now)
    photo_name = store_photo(photo) if photo is not None else None
    try:
        report = _report_of(shift, actor, now)
        hazard = Hazard(
            community_id=shift.community_id,
            report_id=report.id,
            description=description,
            location=location,
            photo=photo_name,
            created_at=now,
        )
        db.session.add(hazard)
        db.session.flush()
    except Exception:
        if photo_name:
            delete_photo(photo_name)
        raise
    return hazard
