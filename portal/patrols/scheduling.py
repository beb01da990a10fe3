"""Scheduling: one-off shifts, weekly series and their occurrences, edits, cancellations with
their notifications, and the coverage overview.

A series keeps an RFC 5545 RRULE evaluated on *local dates* (DTSTART = ``starts_on`` at 00:00,
Asia/Shanghai wall clock). Its UNTIL is floating local time, the last second of the series' last
local day, with no ``Z``: ``FREQ=WEEKLY;BYDAY=MO,WE,FR;UNTIL=20270131T235959``. Each occurrence's
local start (``start_time``) is turned into UTC on its own date, so 19:00 stays 19:00 local.

Services validate, add/flush and never commit; the caller commits once (and rolls back on a
DomainError, so that nothing is saved half-way).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from itertools import islice
from typing import Any

from dateutil.rrule import rrulestr
from flask import current_app, has_request_context, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from portal.auth.models import User
from portal.core.errors import DomainError
from portal.core.timeutil import local_to_utc, now_utc, to_local
from portal.core.validators import too_far_ahead
from portal.database import utcnow
from portal.extensions import db
from portal.notifications.services import notify
from portal.patrols.codes import new_checkin_code
from portal.patrols.models import SHIFT_KINDS, Shift, ShiftSeries, Signup
from portal.patrols.signups import promote_waitlisted
from portal.people.models import Person
from portal.places.models import Building, Estate, Grid, grid_worker
from portal.volunteers.models import VOLUNTEER_TYPES, Volunteer

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
MAX_OCCURRENCES = 500
MAX_STOPS = 10
MAX_CAPACITY = 500
MAX_POINTS_PER_HOUR = 1000
MAX_LABEL = 60
MAX_NOTES = 2000
MAX_REASON = 200
COVERAGE_DAYS = 14
# Sign-ups whose holders hear about a change or a cancellation.
HOLDING = ("confirmed", "waitlisted")


@dataclass
class ShiftPlan:
    """What a shift, or the template of a series, looks like; times are local wall-clock.

    ``route`` is a list of ``{"building_id": int | None, "label": str}``; rows with neither are
    dropped. ``allowed_types`` empty means every approved volunteer.
    """

    kind: str
    title: str
    grid_id: int | None
    start_time: time | None
    end_time: time | None
    capacity: int | None
    minimum: int | None = 0
    meeting_point: str = ""
    route: list[dict[str, Any]] = field(default_factory=list)
    allowed_types: list[str] = field(default_factory=list)
    leader_id: int | None = None
    notes: str = ""
    points_per_hour: int | None = 0


# --- small helpers ----------------------------------------------------------------------------


def horizon_days() -> int:
    return int(current_app.config.get("SERIES_HORIZON_DAYS", 56))


def shift_link(shift_id: int) -> str:
    """The path of the shift page, also outside a request (the cron command)."""
    if has_request_context():
        return url_for("shifts.detail", shift_id=shift_id)
    return current_app.url_map.bind("localhost").build("shifts.detail", {"shift_id": shift_id})


def local_when(moment: datetime) -> str:
    """``YYYY-MM-DD HH:MM`` in local time: the ``when`` of a notification."""
    return to_local(moment).strftime("%Y-%m-%d %H:%M")


def moments(day: date, start: time, end: time) -> tuple[datetime, datetime]:
    """A local date with local start and end times, as aware UTC datetimes."""
    return local_to_utc(day, start), local_to_utc(day, end)


def duration_minutes(start: time, end: time) -> int:
    return int(
        (datetime.combine(date.min, end) - datetime.combine(date.min, start)).total_seconds() // 60
    )


def end_time_of(series: ShiftSeries) -> time:
    """A series' local end time, from its start time and duration."""
    return (
        datetime.combine(date.min, series.start_time) + timedelta(minutes=series.duration_minutes)
    ).time()


def allowed_grid_ids(actor: User | None) -> list[int] | None:
    """The grids a grid worker schedules in; None for anyone not limited to grids."""
    if actor is None or actor.role != "grid_worker":
        return None
    return list(
        db.session.scalars(select(grid_worker.c.grid_id).where(grid_worker.c.user_id == actor.id))
    )


def _insert():
    return pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert


# --- choices for forms --------------------------------------------------------------------------


def schedulable_grids(community_id: int, grid_ids: list[int] | None) -> list[Grid]:
    """Grids of the community the user may schedule in (a grid worker: theirs), by name."""
    query = select(Grid).where(Grid.community_id == community_id).order_by(Grid.name, Grid.id)
    if grid_ids is not None:
        query = query.where(Grid.id.in_(grid_ids))
    return list(db.session.scalars(query))


def grid_buildings(grid_id: int | None) -> list[Building]:
    """The buildings of one grid, by estate and name (the route's choices)."""
    if grid_id is None:
        return []
    return list(
        db.session.scalars(
            select(Building)
            .join(Estate, Building.estate_id == Estate.id)
            .options(joinedload(Building.estate))
            .where(Building.grid_id == grid_id)
            .order_by(Estate.name, Building.name, Building.id)
        )
    )


def leader_candidates(community_id: int) -> list[Person]:
    """Approved volunteers of the community, by name."""
    return list(
        db.session.scalars(
            select(Person)
            .join(Volunteer, Volunteer.person_id == Person.id)
            .where(Person.community_id == community_id, Volunteer.status == "approved")
            .order_by(Person.name, Person.id)
        )
    )


# --- validation ---------------------------------------------------------------------------------


def _check_grid(
    community_id: int, actor: User | None, grid_id: int | None, errors: dict
) -> int | None:
    if grid_id is None:
        errors["grid_id"] = _("Choose a grid.")
        return None
    grid = db.session.get(Grid, grid_id)
    allowed = allowed_grid_ids(actor)
    if (
        grid is None
        or grid.community_id != community_id
        or (allowed is not None and grid.id not in allowed)
    ):
        errors["grid_id"] = _("Choose one of your grids.")
        return None
    return grid.id


def _check_route(
    community_id: int, grid_id: int | None, route: list[dict[str, Any]], errors: dict
) -> list[dict[str, Any]]:
    rows = []
    for row in route:
        building_id = row.get("building_id")
        label = (row.get("label") or "").strip()
        if building_id is not None or label:
            rows.append({"building_id": building_id, "label": label})
    if len(rows) > MAX_STOPS:
        errors["route"] = _("A route has at most %(n)d stops.", n=MAX_STOPS)
        return rows
    ids = {row["building_id"] for row in rows if row["building_id"] is not None}
    buildings = (
        {b.id: b for b in db.session.scalars(select(Building).where(Building.id.in_(ids)))}
        if ids
        else {}
    )
    for n, row in enumerate(rows, start=1):
        if len(row["label"]) > MAX_LABEL:
            errors.setdefault(
                "route", _("Stop %(n)d: at most %(max)d characters.", n=n, max=MAX_LABEL)
            )
        if row["building_id"] is None:
            continue
        building = buildings.get(row["building_id"])
        if building is None or building.community_id != community_id:
            errors.setdefault("route", _("Stop %(n)d: choose a building of this grid.", n=n))
        elif grid_id is not None and building.grid_id != grid_id:
            errors.setdefault(
                "route",
                _(
                    "Stop %(n)d: %(building)s is not in the grid of this shift.",
                    n=n,
                    building=building.name,
                ),
            )
    return rows


def _check_plan(
    community_id: int,
    actor: User | None,
    plan: ShiftPlan,
    errors: dict[str, str],
    *,
    fixed_grid_id: int | None = None,
) -> dict[str, Any]:
    """Check every field of ``plan``; put messages in ``errors``; return the values to store."""
    kind = plan.kind if plan.kind in SHIFT_KINDS else None
    if kind is None:
        errors["kind"] = _("Choose a kind of duty.")
    title = (plan.title or "").strip()
    if not title:
        errors["title"] = _("Give the shift a title.")
    elif len(title) > 100:
        errors["title"] = _("At most %(n)d characters.", n=100)
    meeting_point = (plan.meeting_point or "").strip()
    if len(meeting_point) > 200:
        errors["meeting_point"] = _("At most %(n)d characters.", n=200)
    notes = (plan.notes or "").strip()
    if len(notes) > MAX_NOTES:
        errors["notes"] = _("At most %(n)d characters.", n=MAX_NOTES)

    if fixed_grid_id is not None:
        grid_id: int | None = fixed_grid_id
    else:
        grid_id = _check_grid(community_id, actor, plan.grid_id, errors)
    route = _check_route(community_id, grid_id, plan.route or [], errors)

    if plan.start_time is None:
        errors["start_time"] = _("Enter the start time.")
    if plan.end_time is None:
        errors["end_time"] = _("Enter the end time.")
    elif plan.start_time is not None and plan.end_time <= plan.start_time:
        errors["end_time"] = _("The end must be after the start.")

    capacity = plan.capacity
    if capacity is None or capacity < 1:
        errors["capacity"] = _("Offer at least 1 place.")
    elif capacity > MAX_CAPACITY:
        errors["capacity"] = _("At most %(n)d places.", n=MAX_CAPACITY)
    minimum = plan.minimum or 0
    if minimum < 0:
        errors["minimum"] = _("The minimum cannot be below 0.")
    elif capacity is not None and capacity >= 1 and minimum > capacity:
        errors["minimum"] = _("The minimum cannot be above the capacity.")

    types = set(plan.allowed_types or [])
    if types - set(VOLUNTEER_TYPES):
        errors["allowed_types"] = _("Choose volunteer types from the list.")

    if plan.leader_id is not None and (
        db.session.scalar(
            select(Person.id)
            .join(Volunteer, Volunteer.person_id == Person.id)
            .where(
                Person.id == plan.leader_id,
                Person.community_id == community_id,
                Volunteer.status == "approved",
            )
        )
        is None
    ):
        errors["leader_id"] = _("Choose an approved volunteer of this community as the leader.")

    if plan.points_per_hour is None:
        # Left empty: the community's points rule for this kind (a later rule change does not
        # alter shifts already made: their figure is what volunteers were promised).
        from portal.points.ledger import rules_for

        per_hour = f"per_hour:{kind}" if kind in SHIFT_KINDS else "per_hour:other"
        points = int(rules_for(community_id).get(per_hour, 0))
    else:
        points = plan.points_per_hour
    if not 0 <= points <= MAX_POINTS_PER_HOUR:
        errors["points_per_hour"] = _("Enter a number from 0 to %(max)d.", max=MAX_POINTS_PER_HOUR)

    return {
        "kind": kind,
        "title": title,
        "grid_id": grid_id,
        "meeting_point": meeting_point,
        "route": route,
        "capacity": capacity,
        "minimum": minimum,
        "allowed_types": ",".join(t for t in VOLUNTEER_TYPES if t in types),
        "leader_id": plan.leader_id,
        "notes": notes,
        "points_per_hour": points,
    }


def _taken_message(taken: int, day: date | None = None) -> str:
    if day is None:
        return ngettext(
            "%(num)d place is already taken: the capacity cannot be lower.",
            "%(num)d places are already taken: the capacity cannot be lower.",
            taken,
        )
    return ngettext(
        "On %(date)s %(num)d place is already taken: the capacity cannot be lower.",
        "On %(date)s %(num)d places are already taken: the capacity cannot be lower.",
        taken,
        date=day.isoformat(),
    )


def _cancelled_message() -> str:
    return _("This shift was cancelled; it can no longer be changed.")


# --- notifications ------------------------------------------------------------------------------


def _notify_holders(kind: str, shifts: dict[int, tuple[str, datetime, int]], suffix: str = ""):
    """Tell everyone holding a place or a waitlist place on ``shifts`` (id -> title, start,
    community) who has an account; notify() stores each (user, key) once."""
    if not shifts:
        return
    rows = db.session.execute(
        select(Signup.shift_id, User.id)
        .join(User, User.person_id == Signup.person_id)
        .where(Signup.shift_id.in_(list(shifts)), Signup.status.in_(HOLDING))
        .order_by(Signup.shift_id, Signup.id)
    ).all()
    for shift_id, user_id in rows:
        title, starts_at, community_id = shifts[shift_id]
        notify(
            user_id,
            kind,
            dedupe_key=f"{kind}:shift:{shift_id}{suffix}",
            params={"title": title, "when": local_when(starts_at)},
            link=shift_link(shift_id),
            community_id=community_id,
        )


def _cancel_shifts(shift_ids: list[int], reason: str, now: datetime) -> list[int]:
    """Cancel the still-scheduled shifts among ``shift_ids``, notify their holders once, and
    release their places. Returns the ids this call cancelled (a second call cancels none)."""
    won = []
    for shift_id in shift_ids:
        count = db.session.execute(
            update(Shift)
            .where(Shift.id == shift_id, Shift.status == "scheduled")
            .values(status="cancelled", cancel_reason=reason)
            .execution_options(synchronize_session=False)
        ).rowcount
        if count == 1:
            won.append(shift_id)
    if not won:
        return won
    info = {
        row.id: (row.title, row.starts_at, row.community_id)
        for row in db.session.execute(
            select(Shift.id, Shift.title, Shift.starts_at, Shift.community_id).where(
                Shift.id.in_(won)
            )
        )
    }
    _notify_holders("shift_cancelled", info)
    # The shift will not happen: its places and waitlist are given back.
    db.session.execute(
        update(Signup)
        .where(Signup.shift_id.in_(won), Signup.status.in_(HOLDING))
        .values(status="cancelled", cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(Shift)
        .where(Shift.id.in_(won))
        .values(taken=0)
        .execution_options(synchronize_session=False)
    )
    return won


# --- one shift ----------------------------------------------------------------------------------


def create_shift(
    community_id: int,
    actor: User | None,
    plan: ShiftPlan,
    day: date | None,
    *,
    now: datetime | None = None,
    overrides: dict[str, Any] | None = None,
) -> Shift:
    """Schedule one shift on local ``day``. DomainError with field messages for bad input (a grid
    outside the actor's, a route building outside the grid, end not after start, capacity and
    minimum, a start in the past, a leader who is not an approved volunteer here)."""
    now = now or now_utc()
    errors: dict[str, str] = {}
    values = _check_plan(community_id, actor, plan, errors)
    today = to_local(now).date()
    if day is None:
        errors["day"] = _("Enter the date.")
    elif day < today:  # before computing its moments: 0001-01-01 00:30 local is before year 1 UTC
        errors["day"] = _("A shift cannot start in the past.")
    elif too_far_ahead(day, today):
        errors["day"] = too_far_ahead(day, today)
    elif plan.start_time is not None and plan.end_time is not None and "end_time" not in errors:
        starts_at, ends_at = moments(day, plan.start_time, plan.end_time)
        if starts_at <= now:
            errors["day"] = _("A shift cannot start in the past.")
    if errors:
        raise DomainError(errors)
    values.update(overrides or {})
    shift = Shift(
        community_id=community_id,
        starts_at=starts_at,
        ends_at=ends_at,
        taken=0,
        status="scheduled",
        detached=False,
        created_by_id=actor.id if actor else None,
        **{"checkin_code": new_checkin_code(), **values},
    )
    db.session.add(shift)
    db.session.flush()
    return shift


def update_shift(
    shift: Shift,
    actor: User | None,
    plan: ShiftPlan,
    day: date | None,
    *,
    now: datetime | None = None,
) -> bool:
    """Change one shift (an occurrence of a series becomes detached: edited on its own).

    The capacity cannot go below the places taken (checked in the UPDATE itself). A change of
    times tells the holders ("shift_changed"). Returns whether the times changed.
    """
    now = now or now_utc()
    if shift.status != "scheduled":
        raise DomainError({"_": _cancelled_message()})
    errors: dict[str, str] = {}
    values = _check_plan(shift.community_id, actor, plan, errors)
    times_changed = False
    today = to_local(now).date()
    if day is None:
        errors["day"] = _("Enter the date.")
    elif day < today and day != to_local(shift.starts_at).date():
        errors["day"] = _("A shift cannot start in the past.")
    elif too_far_ahead(day, today):
        errors["day"] = too_far_ahead(day, today)
    elif plan.start_time is not None and plan.end_time is not None and "end_time" not in errors:
        starts_at, ends_at = moments(day, plan.start_time, plan.end_time)
        times_changed = (starts_at, ends_at) != (shift.starts_at, shift.ends_at)
        if times_changed and starts_at <= now:
            errors["day"] = _("A shift cannot start in the past.")
    if "capacity" not in errors and values["capacity"] < shift.taken:
        errors["capacity"] = _taken_message(shift.taken)
    if errors:
        raise DomainError(errors)
    values.update(
        starts_at=starts_at,
        ends_at=ends_at,
        detached=shift.detached or shift.series_id is not None,
        updated_at=utcnow(),
    )
    changed = db.session.execute(
        update(Shift)
        .where(
            Shift.id == shift.id,
            Shift.status == "scheduled",
            Shift.taken <= values["capacity"],
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    capacity_before = shift.capacity
    db.session.refresh(shift)
    if changed != 1:
        # A sign-up or a cancellation got in between the check and the update.
        if shift.status != "scheduled":
            raise DomainError({"_": _cancelled_message()})
        raise DomainError({"capacity": _taken_message(shift.taken)})
    if shift.capacity > capacity_before:
        promote_waitlisted(shift, now)
    if times_changed:
        _notify_holders(
            "shift_changed",
            {shift.id: (shift.title, shift.starts_at, shift.community_id)},
            suffix=f":{now:%Y%m%d%H%M%S}",
        )
    return times_changed


def cancel_shift(
    shift: Shift, actor: User | None, reason: str = "", now: datetime | None = None
) -> bool:
    """Cancel a shift and tell everyone signed up or waitlisted, once each.

    False when it was already cancelled (nobody is told twice). DomainError for a shift that is
    over, or a reason that is too long.
    """
    now = now or now_utc()
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON:
        raise DomainError({"reason": _("At most %(n)d characters.", n=MAX_REASON)})
    if shift.status == "scheduled" and shift.ends_at <= now:
        raise DomainError({"_": _("This shift is over; it can no longer be cancelled.")})
    won = _cancel_shifts([shift.id], reason, now)
    db.session.refresh(shift)
    return bool(won)


# --- series -------------------------------------------------------------------------------------


def build_rrule(weekdays: list[str], ends_on: date) -> str:
    """The stored rule: weekly on ``weekdays`` until the end of local ``ends_on`` (floating)."""
    days = ",".join(d for d in WEEKDAYS if d in set(weekdays))
    return f"FREQ=WEEKLY;BYDAY={days};UNTIL={ends_on:%Y%m%d}T235959"


def rule_weekdays(rule: str) -> list[str]:
    """The BYDAY codes of a stored rule, Monday first."""
    for part in rule.split(";"):
        key, _sep, value = part.partition("=")
        if key.upper() == "BYDAY":
            wanted = {v.strip().upper()[-2:] for v in value.split(",")}
            return [d for d in WEEKDAYS if d in wanted]
    return []


def occurrence_dates(
    rule: str, starts_on: date, first: date, last: date, limit: int | None = None
) -> list[date]:
    """Local dates of ``rule`` (DTSTART ``starts_on``) from ``first`` to ``last`` inclusive."""
    recurrence = rrulestr(rule, dtstart=datetime.combine(starts_on, time()))
    found = (
        moment.date()
        for moment in recurrence.xafter(datetime.combine(first, time()), inc=True)
        if moment.date() >= first
    )
    dates = []
    for day in found:
        if day > last:
            break
        dates.append(day)
        if limit is not None and len(dates) >= limit:
            break
    return dates


def count_occurrences(rule: str, starts_on: date, limit: int = MAX_OCCURRENCES + 1) -> int:
    """How many dates the rule yields in all (counting stops at ``limit``)."""
    recurrence = rrulestr(rule, dtstart=datetime.combine(starts_on, time()))
    return sum(1 for _moment in islice(recurrence, limit))


def _series_dates_errors(
    weekdays: list[str], starts_on: date | None, ends_on: date | None, today: date, errors: dict
) -> str | None:
    days = [d for d in WEEKDAYS if d in set(weekdays or [])]
    if not days or set(weekdays or []) - set(WEEKDAYS):
        errors["weekdays"] = _("Choose at least one weekday.")
    if starts_on is None:
        errors["starts_on"] = _("Enter the first date.")
    elif starts_on < today:
        errors["starts_on"] = _("A series cannot start in the past.")
    elif too_far_ahead(starts_on, today):
        errors["starts_on"] = too_far_ahead(starts_on, today)
    if ends_on is None:
        errors["ends_on"] = _("A series needs an end date: a series with no end is not allowed.")
    elif starts_on is not None and ends_on < starts_on:
        errors["ends_on"] = _("The end date cannot be before the first date.")
    elif too_far_ahead(ends_on, today):
        errors["ends_on"] = too_far_ahead(ends_on, today)
    if errors.keys() & {"weekdays", "starts_on", "ends_on"}:
        return None
    rule = build_rrule(days, ends_on)
    total = count_occurrences(rule, starts_on)
    if total > MAX_OCCURRENCES:
        errors["ends_on"] = _(
            "This rule would create more than %(max)d shifts. Choose an earlier end date.",
            max=MAX_OCCURRENCES,
        )
    elif total == 0:
        errors["weekdays"] = _("None of these weekdays falls between the two dates.")
    return rule


def create_series(
    community_id: int,
    actor: User | None,
    plan: ShiftPlan,
    *,
    weekdays: list[str],
    starts_on: date | None,
    ends_on: date | None,
    now: datetime | None = None,
    overrides: dict[str, Any] | None = None,
) -> ShiftSeries:
    """Create a weekly series and its occurrences up to the horizon.

    DomainError with field messages: the shift rules, no weekday, no end date, a start in the
    past, or a rule of more than 500 occurrences (then nothing is saved).
    """
    now = now or now_utc()
    today = to_local(now).date()
    errors: dict[str, str] = {}
    values = _check_plan(community_id, actor, plan, errors)
    rule = _series_dates_errors(weekdays, starts_on, ends_on, today, errors)
    if errors:
        raise DomainError(errors)
    values.update(overrides or {})
    series = ShiftSeries(
        community_id=community_id,
        rrule=rule,
        starts_on=starts_on,
        ends_on=ends_on,
        start_time=plan.start_time,
        duration_minutes=duration_minutes(plan.start_time, plan.end_time),
        generated_until=None,
        created_by_id=actor.id if actor else None,
        **values,
    )
    db.session.add(series)
    db.session.flush()
    generate_occurrences(series, today + timedelta(days=horizon_days()), now=now)
    return series


def generate_occurrences(series: ShiftSeries, until: date, *, now: datetime | None = None) -> int:
    """Insert the series' missing occurrences up to ``until`` (never past its end date) and move
    ``generated_until`` on. Idempotent: existing (series_id, occurrence_date) rows are skipped and
    the unique constraint turns a concurrent duplicate into a no-op. Occurrences that would
    already have started are not created. Returns how many rows were inserted."""
    now = now or now_utc()
    last = min(until, series.ends_on)
    first = series.starts_on
    if series.generated_until is not None:
        first = max(first, series.generated_until + timedelta(days=1))
    if first > last:
        return 0
    existing = set(
        db.session.scalars(
            select(Shift.occurrence_date).where(
                Shift.series_id == series.id, Shift.occurrence_date.between(first, last)
            )
        )
    )
    insert = _insert()
    created = 0
    new_ids: list[int] = []
    door_code = None
    if series.help_task_id is not None:  # a household's help: checked in with its door code
        from portal.care.services import task_checkin_code

        door_code = task_checkin_code(series.help_task_id)
    for day in occurrence_dates(series.rrule, series.starts_on, first, last):
        if day in existing:
            continue
        starts_at = local_to_utc(day, series.start_time)
        if starts_at <= now:
            continue
        statement = (
            insert(Shift)
            .values(
                community_id=series.community_id,
                grid_id=series.grid_id,
                series_id=series.id,
                occurrence_date=day,
                detached=False,
                kind=series.kind,
                title=series.title,
                meeting_point=series.meeting_point,
                route=list(series.route or []),
                starts_at=starts_at,
                ends_at=starts_at + timedelta(minutes=series.duration_minutes),
                capacity=series.capacity,
                minimum=series.minimum,
                taken=0,
                allowed_types=series.allowed_types,
                leader_id=series.leader_id,
                notes=series.notes,
                points_per_hour=series.points_per_hour,
                status="scheduled",
                cancel_reason="",
                checkin_code=door_code or new_checkin_code(),
                help_task_id=series.help_task_id,
                created_by_id=series.created_by_id,
                created_at=utcnow(),
                updated_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["series_id", "occurrence_date"])
            .returning(Shift.id)
        )
        # RETURNING, not rowcount: PostgreSQL reports -1 for an INSERT whose id comes back.
        row = db.session.execute(statement).first()
        if row is not None:
            created += 1
            new_ids.append(row[0])
    db.session.execute(
        update(ShiftSeries)
        .where(
            ShiftSeries.id == series.id,
            or_(ShiftSeries.generated_until.is_(None), ShiftSeries.generated_until < last),
        )
        .values(generated_until=last)
        .execution_options(synchronize_session=False)
    )
    if series.generated_until is None or series.generated_until < last:
        set_committed_value(series, "generated_until", last)
    if new_ids and series.help_task_id is not None:
        # Volunteers who took the whole series get their places on the new occurrences.
        from portal.care.services import sign_up_standing

        sign_up_standing(series.help_task_id, new_ids, now)
    return created


def extend_all_series(today: date | None = None, *, now: datetime | None = None) -> int:
    """Generate every series' occurrences up to ``today`` + SERIES_HORIZON_DAYS (the cron job).
    Safe to run any number of times. Returns how many shifts were created."""
    now = now or now_utc()
    today = today or to_local(now).date()
    until = today + timedelta(days=horizon_days())
    candidates = db.session.scalars(
        select(ShiftSeries)
        .where(
            ShiftSeries.ends_on >= today,
            or_(ShiftSeries.generated_until.is_(None), ShiftSeries.generated_until < until),
        )
        .order_by(ShiftSeries.id)
    ).all()
    created = 0
    for series in candidates:
        if series.generated_until is None or series.generated_until < min(until, series.ends_on):
            created += generate_occurrences(series, until, now=now)
    return created


def _check_from(series: ShiftSeries, from_date: date | None, today: date, errors: dict) -> None:
    if from_date is None:
        errors["from_date"] = _("Enter the date from which this applies.")
    elif from_date < today:
        errors["from_date"] = _("Choose today or a later date.")
    elif from_date > series.ends_on:
        errors["from_date"] = _(
            "The series ends on %(date)s; choose a date up to then.",
            date=series.ends_on.isoformat(),
        )


def update_series(
    series: ShiftSeries,
    actor: User | None,
    plan: ShiftPlan,
    from_date: date | None,
    *,
    now: datetime | None = None,
) -> int:
    """Change the series from ``from_date`` on: its template for later generation and every
    occurrence on or after that date that is neither detached, cancelled nor started.

    The grid, kind and weekdays stay. DomainError naming the date when the new capacity is below
    an occurrence's places taken (the caller rolls back: nothing is saved). Holders of moved
    occurrences are told. Returns how many occurrences changed.
    """
    now = now or now_utc()
    today = to_local(now).date()
    errors: dict[str, str] = {}
    plan = replace(plan, kind=series.kind, grid_id=series.grid_id)
    values = _check_plan(series.community_id, actor, plan, errors, fixed_grid_id=series.grid_id)
    _check_from(series, from_date, today, errors)
    if errors:
        raise DomainError(errors)

    # Days before ``from_date`` keep the old template: make sure those occurrences exist first.
    if from_date > series.starts_on:
        generate_occurrences(series, from_date - timedelta(days=1), now=now)
    targets = db.session.scalars(
        select(Shift)
        .where(
            Shift.series_id == series.id,
            Shift.occurrence_date >= from_date,
            Shift.detached.is_(False),
            Shift.status == "scheduled",
            Shift.starts_at > now,
        )
        .order_by(Shift.occurrence_date)
    ).all()
    for shift in targets:
        if shift.taken > values["capacity"]:
            raise DomainError({"capacity": _taken_message(shift.taken, shift.occurrence_date)})

    moved: dict[int, tuple[str, datetime, int]] = {}
    for shift in targets:
        starts_at, ends_at = moments(shift.occurrence_date, plan.start_time, plan.end_time)
        changed = db.session.execute(
            update(Shift)
            .where(
                Shift.id == shift.id,
                Shift.status == "scheduled",
                Shift.detached.is_(False),
                Shift.taken <= values["capacity"],
            )
            .values(starts_at=starts_at, ends_at=ends_at, updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed != 1:
            db.session.refresh(shift)
            raise DomainError({"capacity": _taken_message(shift.taken, shift.occurrence_date)})
        if (starts_at, ends_at) != (shift.starts_at, shift.ends_at):
            moved[shift.id] = (values["title"], starts_at, shift.community_id)

    for name in (
        "title",
        "meeting_point",
        "route",
        "capacity",
        "minimum",
        "allowed_types",
        "leader_id",
        "notes",
        "points_per_hour",
    ):
        setattr(series, name, values[name])
    series.start_time = plan.start_time
    series.duration_minutes = duration_minutes(plan.start_time, plan.end_time)
    db.session.flush()
    _notify_holders("shift_changed", moved, suffix=f":{now:%Y%m%d%H%M%S}")
    for shift in targets:
        capacity_before = shift.capacity
        db.session.refresh(shift)
        if shift.capacity > capacity_before:
            promote_waitlisted(shift, now)
    return len(targets)


def cancel_series(
    series: ShiftSeries,
    actor: User | None,
    from_date: date | None,
    reason: str = "",
    *,
    now: datetime | None = None,
) -> int:
    """Cancel the series from ``from_date`` on: its scheduled occurrences from that date (told
    to their holders once each), and the series ends the day before. Returns how many shifts
    were cancelled. DomainError for a missing or past date, or one after the series' end."""
    now = now or now_utc()
    today = to_local(now).date()
    errors: dict[str, str] = {}
    _check_from(series, from_date, today, errors)
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON:
        errors["reason"] = _("At most %(n)d characters.", n=MAX_REASON)
    if errors:
        raise DomainError(errors)
    targets = list(
        db.session.scalars(
            select(Shift.id)
            .where(
                Shift.series_id == series.id,
                Shift.occurrence_date >= from_date,
                Shift.status == "scheduled",
                Shift.ends_at > now,
            )
            .order_by(Shift.occurrence_date)
        )
    )
    won = _cancel_shifts(targets, reason, now)
    if from_date > series.starts_on:
        series.ends_on = min(series.ends_on, from_date - timedelta(days=1))
    else:
        # Nothing is left of the series; the first day stays as its (cancelled) end.
        series.ends_on = series.starts_on
        if series.generated_until is None or series.generated_until < series.starts_on:
            series.generated_until = series.starts_on
    series.rrule = build_rrule(rule_weekdays(series.rrule), series.ends_on)
    db.session.flush()
    return len(won)


# --- reading ------------------------------------------------------------------------------------


def series_occurrences_query(series: ShiftSeries, today: date):
    """The series' occurrences from ``today`` on, in date order (for db.paginate)."""
    return (
        select(Shift)
        .where(Shift.series_id == series.id, Shift.occurrence_date >= today)
        .order_by(Shift.occurrence_date, Shift.id)
    )


@dataclass
class Coverage:
    """The next days per grid: ``cells[(grid_id, day)]`` lists that day's scheduled shifts."""

    days: list[date]
    grids: list[Grid]
    cells: dict[tuple[int, date], list[Shift]]
    below: int

    def shifts(self, grid_id: int, day: date) -> list[Shift]:
        return self.cells.get((grid_id, day), [])


def coverage(
    community_id: int, grid_ids: list[int] | None, today: date, days: int = COVERAGE_DAYS
) -> Coverage:
    """Scheduled shifts of the next ``days`` days per grid; two queries whatever the size."""
    grids = schedulable_grids(community_id, grid_ids)
    day_list = [today + timedelta(days=n) for n in range(days)]
    cells: dict[tuple[int, date], list[Shift]] = {}
    below = 0
    if grids:
        shifts = db.session.scalars(
            select(Shift)
            .where(
                Shift.community_id == community_id,
                Shift.grid_id.in_([g.id for g in grids]),
                Shift.status == "scheduled",
                Shift.starts_at >= local_to_utc(today, time()),
                Shift.starts_at < local_to_utc(today + timedelta(days=days), time()),
            )
            .order_by(Shift.starts_at, Shift.id)
        ).all()
        for shift in shifts:
            cells.setdefault((shift.grid_id, to_local(shift.starts_at).date()), []).append(shift)
            if shift.taken < shift.minimum:
                below += 1
    return Coverage(days=day_list, grids=grids, cells=cells, below=below)
