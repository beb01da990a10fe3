"""Sign-ups: taking a place on a shift, the waitlist, giving a place back, and promotion.

A place is taken only by the conditional ``UPDATE shift SET taken = taken + 1 WHERE taken <
capacity`` (and the shift, as it is at that moment, scheduled and not started);
UNIQUE(shift_id, person_id) stops a second row for one person. On PostgreSQL a person's sign-ups
are serialised by locking their Person row, so two overlapping shifts cannot both be taken in
parallel (on SQLite every write already begins with BEGIN IMMEDIATE).
Services flush, never commit; ``now`` is a parameter so that tests can fix the time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from types import SimpleNamespace

from flask import current_app, has_request_context, url_for
from flask_babel import gettext as _
from sqlalchemy import Select, and_, bindparam, exists, func, literal, or_, select, update
from sqlalchemy.orm import aliased, contains_eager, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from portal.auth.models import User
from portal.core.errors import DomainError
from portal.core.labels import label
from portal.core.timeutil import LOCAL_TZ, local_to_utc, now_utc, to_local
from portal.database import insert_unless_conflict
from portal.extensions import db
from portal.notifications.services import notify
from portal.patrols.models import SHIFT_KINDS, Shift, Signup
from portal.people.models import Person
from portal.places.models import Building, Grid
from portal.volunteers.models import Volunteer, VolunteerType

HELD = ("confirmed", "waitlisted")
WEEK_LIMIT = 300  # shifts shown in one week view; more asks the user to filter by grid


# --- small helpers ------------------------------------------------------------------------


def local_when(moment: datetime) -> str:
    """Local "YYYY-MM-DD HH:MM", the form notifications carry."""
    return to_local(moment).strftime("%Y-%m-%d %H:%M")


def cutoff_hours() -> float:
    return float(current_app.config.get("SHIFT_CANCEL_CUTOFF_HOURS", 2))


def shift_path(shift_id: int) -> str:
    """The shift's page as a path (also outside a request, e.g. from a CLI command)."""
    if has_request_context():
        return url_for("shifts.detail", shift_id=shift_id)
    adapter = current_app.url_map.bind("localhost")
    return adapter.build("shifts.detail", {"shift_id": shift_id})


@dataclass
class Eligibility:
    """A person's approved volunteer registration: its community and types."""

    community_id: int
    types: list[str]


def eligibility(person_id: int | None) -> Eligibility | None:
    """The person's approved registration, read fresh from the database; None if not approved."""
    if person_id is None:
        return None
    rows = db.session.execute(_eligibility_query(), {"person_id": person_id}).all()
    if not rows:
        return None
    return Eligibility(community_id=rows[0][0], types=[t for _c, t in rows if t is not None])


@cache
def _eligibility_query() -> Select:
    # The statements of sign-up and cancel are built once (bound parameters): SQLAlchemy takes
    # longer to build a statement than SQLite to run it (bench/README.md).
    return (
        select(Volunteer.community_id, VolunteerType.type)
        .outerjoin(VolunteerType, VolunteerType.volunteer_id == Volunteer.id)
        .where(Volunteer.person_id == bindparam("person_id"), Volunteer.status == "approved")
    )


def held_status(shift_id: int, person_id: int) -> str | None:
    """The person's sign-up status on the shift (confirmed / waitlisted / cancelled), or None."""
    return db.session.scalar(
        select(Signup.status).where(Signup.shift_id == shift_id, Signup.person_id == person_id)
    )


def clashing_shift(shift: Shift, person_id: int) -> Shift | None:
    """Another scheduled shift of the person's, confirmed and overlapping ``shift`` in time."""
    return db.session.scalar(
        _clash_query(),
        {
            "person_id": person_id,
            "shift_id": shift.id,
            "starts_at": shift.starts_at,
            "ends_at": shift.ends_at,
        },
    )


@cache
def _clash_query() -> Select:
    return (
        select(Shift)
        .join(Signup, Signup.shift_id == Shift.id)
        .where(
            Signup.person_id == bindparam("person_id"),
            Signup.status == "confirmed",
            Shift.status == "scheduled",
            Shift.id != bindparam("shift_id"),
            Shift.starts_at < bindparam("ends_at", type_=Shift.starts_at.type),
            Shift.ends_at > bindparam("starts_at", type_=Shift.ends_at.type),
        )
        .order_by(Shift.starts_at)
        .limit(1)
    )


def _type_names(types: list[str]) -> str:
    return "、".join(label("volunteer_type", t) for t in types)


# --- the rules -----------------------------------------------------------------------------


_UNREAD = object()


def check_signup_rules(
    shift: Shift,
    person: Person | None,
    now: datetime | None = None,
    *,
    held: object = _UNREAD,
    volunteer: object = _UNREAD,
) -> None:
    """Raise DomainError({"_": why}) unless ``person`` may take a place (or a waitlist place).

    The shift is scheduled and not started; the person is an approved volunteer of its
    community, of a type the shift allows; they hold no place or waitlist entry on it yet and no
    confirmed place on a shift overlapping it.
    """
    now = now or now_utc()
    if shift.status != "scheduled":
        raise DomainError({"_": _("This shift was cancelled.")})
    if shift.starts_at <= now:
        raise DomainError({"_": _("This shift has already started; sign-up is closed.")})
    if volunteer is _UNREAD:  # the caller may already know the person's registration
        volunteer = eligibility(person.id if person is not None else None)
    if volunteer is None or volunteer.community_id != shift.community_id:
        raise DomainError({"_": _("Only approved volunteers of this community can sign up.")})
    if held is _UNREAD:  # the caller may already know the person's status on the shift
        held = held_status(shift.id, person.id)
    if held == "confirmed":
        raise DomainError({"_": _("You already have a place on this shift.")})
    if held == "waitlisted":
        raise DomainError({"_": _("You are already on the waitlist for this shift.")})
    allowed = shift.types
    if allowed and not set(allowed) & set(volunteer.types):
        raise DomainError(
            {"_": _("This shift is only for: %(types)s.", types=_type_names(allowed))}
        )
    if shift.help_task_id is not None:  # a household's wish about who visits (portal.care)
        from portal.care.services import check_visitor

        check_visitor(shift.help_task_id, person)
    clash = clashing_shift(shift, person.id)
    if clash is not None:
        raise DomainError(
            {
                "_": _(
                    "You already have a place on “%(title)s” at that time (%(when)s).",
                    title=clash.title,
                    when=local_when(clash.starts_at),
                )
            }
        )


# --- taking and giving back places ---------------------------------------------------------


@dataclass
class SignupOutcome:
    signup_id: int
    status: str  # confirmed | waitlisted
    position: int | None = None  # place in the waitlist, from 1
    waiting: int | None = None  # people on the shift's waitlist with this one, when known


def _lock_person(person_id: int, *, skip_locked: bool = False) -> bool:
    """Lock the person's row until commit (PostgreSQL; a no-op on SQLite). False if skipped."""
    query = select(Person.id).where(Person.id == person_id)
    query = query.with_for_update(skip_locked=skip_locked)
    return db.session.scalar(query) is not None


def _move_taken(shift: Shift, step: int, now: datetime | None = None) -> bool:
    """The one statement that takes (+1) or gives back (-1) a place: True when it moved.

    A place is taken only while the shift is scheduled and (given ``now``) not started, as the
    row is at the moment of the UPDATE. The new count comes back with the UPDATE and is set on
    ``shift`` as the database's value, so that an answer rendered from it shows the places as
    they are, without reading again."""
    query = update(Shift).where(Shift.id == shift.id)
    if step > 0:
        query = query.where(Shift.taken < Shift.capacity, Shift.status == "scheduled")
        if now is not None:
            query = query.where(Shift.starts_at > now)
    else:
        query = query.where(Shift.taken > 0)
    row = db.session.execute(
        query.values(taken=Shift.taken + step)
        .returning(Shift.taken)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        return False
    set_committed_value(shift, "taken", row[0])
    return True


def _take_place(shift: Shift, now: datetime) -> bool:
    """Take a place on the shift if it is scheduled and not started at ``now``: True when it
    won one."""
    return _move_taken(shift, +1, now)


def waitlist_position(signup_id: int) -> int | None:
    """1 for the first in line; None when the sign-up is not waitlisted."""
    return waitlist_positions([signup_id]).get(signup_id)


def waitlist_positions(signup_ids: list[int]) -> dict[int, int]:
    """Waitlist positions of these sign-ups (only those waitlisted), in one query."""
    if not signup_ids:
        return {}
    ahead = aliased(Signup)
    rows = db.session.execute(
        select(Signup.id, func.count(ahead.id))
        .join(
            ahead,
            and_(
                ahead.shift_id == Signup.shift_id,
                ahead.status == "waitlisted",
                or_(
                    ahead.waitlisted_at < Signup.waitlisted_at,
                    and_(ahead.waitlisted_at == Signup.waitlisted_at, ahead.id <= Signup.id),
                ),
            ),
        )
        .where(Signup.id.in_(signup_ids), Signup.status == "waitlisted")
        .group_by(Signup.id)
    ).all()
    return {signup_id: count for signup_id, count in rows}


def _signup_row(shift_id: int, person_id: int):
    """The person's sign-up row on the shift (id, status), whatever its status, or None."""
    return db.session.execute(
        _signup_row_query(), {"shift_id": shift_id, "person_id": person_id}
    ).first()


@cache
def _signup_row_query() -> Select:
    return select(Signup.id, Signup.status).where(
        Signup.shift_id == bindparam("shift_id"), Signup.person_id == bindparam("person_id")
    )


def sign_up(
    shift: Shift, person: Person, now: datetime | None = None, *, read_under_lock: bool = False
) -> SignupOutcome:
    """Take a place on the shift, or a waitlist place when it is full.

    Raises DomainError when a rule refuses it (see check_signup_rules) or when the same person's
    parallel request already holds the place. Anyone already waiting is promoted first, so that
    a newcomer never jumps the waitlist. ``read_under_lock``: the caller read ``shift`` in the
    transaction this runs in (on SQLite inside its BEGIN IMMEDIATE), so it is not read again.
    """
    now = now or now_utc()
    if db.engine.dialect.name != "sqlite":  # SQLite's BEGIN IMMEDIATE already serialises writers
        # The person's own sign-ups and places, read from here on, are as they are now. The
        # shift is not read again: whether it is still scheduled and not started is decided by
        # the UPDATE that takes the place, on the row as it is then.
        _lock_person(person.id)
    if not read_under_lock:
        db.session.refresh(shift)
    held = _signup_row(shift.id, person.id)
    check_signup_rules(shift, person, now, held=held.status if held else None)
    promote_waitlisted(shift, now)
    won = _take_place(shift, now)
    line = None
    if not won:
        # Full, or (since it was read) cancelled or started: only a full shift has a waitlist.
        # The line read with it gives the new entry's place (last: waitlisted_at = now).
        status, starts_at, ahead, waiting = db.session.execute(
            _failed_take(shift.id, now, held.id if held is not None else None)
        ).one()
        if status != "scheduled":
            raise DomainError({"_": _("This shift was cancelled.")})
        if starts_at <= now:
            raise DomainError({"_": _("This shift has already started; sign-up is closed.")})
        line = (ahead + 1, waiting + 1)
    status = "confirmed" if won else "waitlisted"
    waitlisted_at = None if won else now
    if held is not None:
        # A place given back earlier: the row is reused, claimed only if still cancelled.
        claimed = db.session.execute(
            update(Signup)
            .where(Signup.id == held.id, Signup.status == "cancelled")
            .values(status=status, waitlisted_at=waitlisted_at, cancelled_at=None, created_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        signup_id = held.id if claimed == 1 else None
    else:
        # UNIQUE(shift_id, person_id): a parallel request of the same person (a double click)
        # that got in first leaves nothing inserted here.
        signup = insert_unless_conflict(
            Signup,
            {
                "community_id": shift.community_id,
                "shift_id": shift.id,
                "person_id": person.id,
                "status": status,
                "waitlisted_at": waitlisted_at,
                "created_at": now,
            },
            ["shift_id", "person_id"],
        )
        signup_id = signup.id if signup is not None else None
    if signup_id is None:
        if won:
            _move_taken(shift, -1)  # the place goes back
        raise DomainError({"_": _("You are already signed up for this shift.")})
    outcome = SignupOutcome(signup_id=signup_id, status=status)
    if line is not None:
        outcome.position, outcome.waiting = line
    return outcome


def _failed_take(shift_id: int, now: datetime, reused_id: int | None) -> Select:
    """The shift's status and start as they are now, with how many wait on it: in all, and
    ahead of an entry made at ``now`` (the order of waitlist_positions: time, then id; a new
    row's id comes after every other, a reused row keeps ``reused_id``)."""
    waitlisted = and_(Signup.shift_id == shift_id, Signup.status == "waitlisted")
    tie = Signup.waitlisted_at == now
    if reused_id is not None:
        tie = and_(tie, Signup.id < reused_id)
    return select(
        Shift.status,
        Shift.starts_at,
        select(func.count(Signup.id))
        .where(waitlisted, or_(Signup.waitlisted_at < now, tie))
        .scalar_subquery(),
        select(func.count(Signup.id)).where(waitlisted).scalar_subquery(),
    ).where(Shift.id == shift_id)


@dataclass
class CancelOutcome:
    previous: str  # confirmed | waitlisted
    signup_id: int
    promoted: list[int] = field(default_factory=list)  # sign-up ids moved up from the waitlist


def _held_row(shift: Shift, person: Person, now: datetime, cutoff: float):
    """The person's place or waitlist entry on the shift, if they may still give it up;
    DomainError otherwise (nothing held, shift started, cutoff passed for a place)."""
    row = _signup_row(shift.id, person.id)
    if row is None or row.status not in HELD:
        raise DomainError({"_": _("You have no place or waitlist entry on this shift.")})
    if shift.starts_at <= now:
        raise DomainError(
            {"_": _("The shift has already started. If you cannot stay, tell the shift leader.")}
        )
    if row.status == "confirmed" and now > shift.starts_at - timedelta(hours=cutoff):
        raise DomainError(
            {
                "_": _(
                    "It is too late to cancel here (less than %(hours)s hours before the start). "
                    "Please tell the shift leader.",
                    hours=f"{cutoff:g}",
                )
            }
        )
    return row


def cancel_signup(
    shift: Shift,
    person: Person,
    now: datetime | None = None,
    cutoff: float | None = None,
) -> CancelOutcome:
    """Give a place back (before the cutoff) or leave the waitlist (before the start).

    A freed place goes to the first on the waitlist, who is notified. Raises DomainError when
    there is nothing to cancel, the shift has started, or the cutoff has passed.
    """
    now = now or now_utc()
    cutoff = cutoff_hours() if cutoff is None else cutoff
    # A parallel request may move the row between our read and our UPDATE (a cancel elsewhere
    # promotes this person off the waitlist): read again and act on what it is now.
    for _attempt in range(3):
        row = _held_row(shift, person, now, cutoff)
        changed = db.session.execute(
            update(Signup)
            .where(Signup.id == row.id, Signup.status == row.status)
            .values(status="cancelled", cancelled_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed == 1:
            break
    else:
        raise DomainError({"_": _("Your sign-up was changed meanwhile. Please reload the page.")})
    outcome = CancelOutcome(previous=row.status, signup_id=row.id)
    if row.status == "confirmed":
        _move_taken(shift, -1)
        outcome.promoted = promote_waitlisted(shift, now)
    return outcome


def promote_waitlisted(shift: Shift, now: datetime | None = None) -> list[int]:
    """Move the oldest waitlisted people into free places and notify them; their sign-up ids.

    Someone who meanwhile holds an overlapping place stays waiting. A person whose row is locked
    (their own sign-up is running) is passed over this time rather than waited for: waiting
    could deadlock with that sign-up, which waits for this shift's row.
    """
    now = now or now_utc()
    # Those waiting, when the shift (as it is now) has a free place and has not started.
    candidates = db.session.execute(
        select(Signup.id, Signup.person_id)
        .join(Shift, Shift.id == Signup.shift_id)
        .where(
            Signup.shift_id == shift.id,
            Signup.status == "waitlisted",
            Shift.status == "scheduled",
            Shift.starts_at > now,
            Shift.taken < Shift.capacity,
        )
        .order_by(Signup.waitlisted_at, Signup.id)
        .limit(100)
    ).all()
    promoted: list[int] = []
    for candidate in candidates:
        if not _lock_person(candidate.person_id, skip_locked=True):
            continue
        if clashing_shift(shift, candidate.person_id) is not None:
            continue
        savepoint = db.session.begin_nested()
        moved = db.session.execute(
            update(Signup)
            .where(Signup.id == candidate.id, Signup.status == "waitlisted")
            .values(status="confirmed")
            .execution_options(synchronize_session=False)
        ).rowcount
        if moved != 1:
            savepoint.rollback()
            continue
        if not _take_place(shift, now):
            savepoint.rollback()
            break
        savepoint.commit()
        promoted.append(candidate.id)
        _notify_promoted(shift, candidate.id, candidate.person_id, now)
    return promoted


def _notify_promoted(shift: Shift, signup_id: int, person_id: int, now: datetime) -> None:
    user_id = db.session.scalar(select(User.id).where(User.person_id == person_id))
    if user_id is None:
        return
    notify(
        user_id,
        "waitlist_promoted",
        dedupe_key=f"waitlist_promoted:shift:{shift.id}:{signup_id}:{int(now.timestamp())}",
        params={"title": shift.title, "when": local_when(shift.starts_at)},
        link=shift_path(shift.id),
        community_id=shift.community_id,
    )


# --- what the button area shows ------------------------------------------------------------


@dataclass
class SignupState:
    """Everything the sign-up area of one shift shows to one viewer."""

    shift: Shift
    taken: int
    waiting: int
    status: str | None = None  # the viewer's: confirmed | waitlisted | None
    position: int | None = None
    action: str | None = None  # signup | waitlist | cancel | leave | None
    reason: str | None = None  # why there is no button
    register: bool = False  # not an approved volunteer: offer the registration
    read_only: bool = False

    @property
    def below_minimum(self) -> bool:
        return self.taken < self.shift.minimum


def waiting_counts(shift_ids: list[int]) -> dict[int, int]:
    if not shift_ids:
        return {}
    rows = db.session.execute(
        select(Signup.shift_id, func.count(Signup.id))
        .where(Signup.shift_id.in_(shift_ids), Signup.status == "waitlisted")
        .group_by(Signup.shift_id)
    ).all()
    return dict(rows)


def held_state(
    shift: Shift,
    status: str,
    *,
    position: int | None,
    waiting: int,
    now: datetime,
    cutoff: float,
) -> SignupState:
    """The area for someone who holds a place or a waitlist entry."""
    state = SignupState(
        shift=shift, taken=shift.taken, waiting=waiting, status=status, position=position
    )
    if shift.status != "scheduled":
        state.reason = _("This shift was cancelled.")
    elif shift.starts_at <= now:
        state.reason = None
    elif status == "waitlisted":
        state.action = "leave"
    elif now <= shift.starts_at - timedelta(hours=cutoff):
        state.action = "cancel"
    else:
        state.reason = _(
            "It is too late to cancel here (less than %(hours)s hours before the start). "
            "Please tell the shift leader.",
            hours=f"{cutoff:g}",
        )
    return state


def signup_state(
    shift: Shift,
    person: Person | None,
    now: datetime | None = None,
    *,
    read_only: bool = False,
    known: tuple[int, str, int | None] | None = None,
    waiting: int | None = None,
) -> SignupState:
    """The sign-up area of one shift for one viewer (a few queries: for a single shift).

    ``known``: the viewer's sign-up as the caller has just written it (id, status, waitlist
    position), so that it is not read again; ``waiting``: the waitlist's length, if known."""
    now = now or now_utc()
    if waiting is None:
        waiting = waiting_counts([shift.id]).get(shift.id, 0)
    if read_only or person is None:
        return SignupState(shift=shift, taken=shift.taken, waiting=waiting, read_only=True)
    if known is not None:
        row = SimpleNamespace(id=known[0], status=known[1])
        position = known[2]
    else:
        row = _signup_row(shift.id, person.id)
        position = None
    if row is not None and row.status in HELD:
        if row.status == "waitlisted" and position is None:
            position = waitlist_position(row.id)
        return held_state(
            shift,
            row.status,
            position=position,
            waiting=waiting,
            now=now,
            cutoff=cutoff_hours(),
        )
    state = SignupState(shift=shift, taken=shift.taken, waiting=waiting)
    volunteer = eligibility(person.id)
    try:
        check_signup_rules(
            shift,
            person,
            now,
            held=row.status if row is not None else None,
            volunteer=volunteer,
        )
    except DomainError as error:
        state.reason = error.errors["_"]
        state.register = volunteer is None
    else:
        state.action = "signup" if shift.taken < shift.capacity else "waitlist"
    return state


# --- lists -----------------------------------------------------------------------------------


@dataclass
class ShiftFilters:
    """List filters, already cleaned: an unknown value is None (meaning "any")."""

    grid: int | None = None
    kind: str | None = None
    day: date | None = None
    open: bool = False

    @classmethod
    def clean(cls, grid, kind, day, open_) -> ShiftFilters:
        return cls(
            grid=grid if isinstance(grid, int) and 0 < grid < 2**31 else None,
            kind=kind if kind in SHIFT_KINDS else None,
            day=day if isinstance(day, date) and 2000 <= day.year <= 2100 else None,
            open=bool(open_),
        )

    def args(self) -> dict[str, object]:
        """Non-empty filters, for links (pager, week navigation) that keep them."""
        values: dict[str, object] = {"grid": self.grid, "kind": self.kind}
        if self.day:
            values["date"] = self.day.isoformat()
        if self.open:
            values["open"] = "y"
        return {k: v for k, v in values.items() if v not in (None, "")}


def _scoped(query: Select, community_ids: list[int], grid_ids: list[int] | None) -> Select:
    query = query.where(Shift.community_id.in_(community_ids), Shift.status == "scheduled")
    if grid_ids is not None:
        query = query.where(Shift.grid_id.in_(grid_ids))
    return query


def _open_to(query: Select, person_id: int | None, now: datetime) -> Select:
    """Shifts the person could sign up for now (a place or a waitlist place)."""
    volunteer = eligibility(person_id)
    if volunteer is None:
        return query.where(literal(False))
    padded = literal(",") + Shift.allowed_types + literal(",")
    other = aliased(Shift)
    return query.where(
        Shift.community_id == volunteer.community_id,
        Shift.starts_at > now,
        or_(
            Shift.allowed_types == "",
            *[padded.contains(f",{t},", autoescape=True) for t in volunteer.types],
        ),
        ~exists().where(
            Signup.shift_id == Shift.id,
            Signup.person_id == person_id,
            Signup.status.in_(HELD),
        ),
        ~exists(
            select(Signup.id)
            .join(other, other.id == Signup.shift_id)
            .where(
                Signup.person_id == person_id,
                Signup.status == "confirmed",
                other.status == "scheduled",
                other.id != Shift.id,
                other.starts_at < Shift.ends_at,
                other.ends_at > Shift.starts_at,
            )
        ),
    )


def _filtered(
    query: Select,
    filters: ShiftFilters,
    community_ids: list[int],
    grid_ids: list[int] | None,
    person_id: int | None,
    now: datetime,
) -> Select:
    query = _scoped(query, community_ids, grid_ids)
    if filters.grid is not None:
        query = query.where(Shift.grid_id == filters.grid)
    if filters.kind:
        query = query.where(Shift.kind == filters.kind)
    if filters.open:
        query = _open_to(query, person_id, now)
    return query.options(joinedload(Shift.grid).joinedload(Grid.community))


def upcoming_query(
    filters: ShiftFilters,
    community_ids: list[int],
    grid_ids: list[int] | None,
    person_id: int | None,
    now: datetime | None = None,
) -> Select:
    """Scheduled shifts in scope not yet over (from ``filters.day`` on), soonest first."""
    now = now or now_utc()
    query = select(Shift).where(Shift.ends_at > now)
    if filters.day:
        query = query.where(Shift.starts_at >= local_to_utc(filters.day, datetime.min.time()))
    query = _filtered(query, filters, community_ids, grid_ids, person_id, now)
    return query.order_by(Shift.starts_at, Shift.id)


def week_shifts(
    monday: date,
    filters: ShiftFilters,
    community_ids: list[int],
    grid_ids: list[int] | None,
    person_id: int | None,
    now: datetime | None = None,
) -> tuple[dict[date, list[Shift]], bool]:
    """The week's scheduled shifts in scope by local day, and whether the list was cut short."""
    now = now or now_utc()
    start = local_to_utc(monday, datetime.min.time())
    end = local_to_utc(monday + timedelta(days=7), datetime.min.time())
    query = select(Shift).where(Shift.starts_at >= start, Shift.starts_at < end)
    query = _filtered(query, filters, community_ids, grid_ids, person_id, now)
    shifts = list(
        db.session.scalars(query.order_by(Shift.starts_at, Shift.id).limit(WEEK_LIMIT + 1))
    )
    days: dict[date, list[Shift]] = {monday + timedelta(days=i): [] for i in range(7)}
    for shift in shifts[:WEEK_LIMIT]:
        days[shift.starts_at.astimezone(LOCAL_TZ).date()].append(shift)
    return days, len(shifts) > WEEK_LIMIT


def own_statuses(person_id: int | None, shift_ids: list[int]) -> dict[int, str]:
    """The person's confirmed / waitlisted status on each of these shifts, in one query."""
    if person_id is None or not shift_ids:
        return {}
    rows = db.session.execute(
        select(Signup.shift_id, Signup.status).where(
            Signup.person_id == person_id,
            Signup.shift_id.in_(shift_ids),
            Signup.status.in_(HELD),
        )
    ).all()
    return dict(rows)


def _mine(person_id: int) -> Select:
    return (
        select(Signup)
        .join(Shift, Signup.shift_id == Shift.id)
        .options(contains_eager(Signup.shift).joinedload(Shift.grid))
        .where(Signup.person_id == person_id)
    )


def my_upcoming_query(person_id: int, now: datetime | None = None) -> Select:
    """The person's places and waitlist entries on shifts not yet over, soonest first."""
    now = now or now_utc()
    return (
        _mine(person_id)
        .where(Signup.status.in_(HELD), Shift.ends_at > now)
        .order_by(Shift.starts_at, Signup.id)
    )


def my_past_query(person_id: int, now: datetime | None = None) -> Select:
    """Shifts the person held a place on that are over, latest first."""
    now = now or now_utc()
    return (
        _mine(person_id)
        .where(Signup.status == "confirmed", Shift.ends_at <= now)
        .order_by(Shift.starts_at.desc(), Signup.id.desc())
    )


def held_states(signups: list[Signup], now: datetime | None = None) -> dict[int, SignupState]:
    """The sign-up areas of the person's own held shifts, by shift id, in two queries."""
    now = now or now_utc()
    cutoff = cutoff_hours()
    positions = waitlist_positions([s.id for s in signups if s.status == "waitlisted"])
    waiting = waiting_counts([s.shift_id for s in signups])
    return {
        s.shift_id: held_state(
            s.shift,
            s.status,
            position=positions.get(s.id),
            waiting=waiting.get(s.shift_id, 0),
            now=now,
            cutoff=cutoff,
        )
        for s in signups
    }


# --- one shift's details ----------------------------------------------------------------------


@dataclass
class Stop:
    name: str
    note: str = ""


def route_stops(shift: Shift) -> list[Stop]:
    """The route in order, building ids turned into names (one query)."""
    return routes_of([shift])[shift.id]


def routes_of(shifts: list[Shift]) -> dict[int, list[Stop]]:
    """The routes of several shifts by shift id, with one query for all building names."""
    ids = {
        stop.get("building_id")
        for shift in shifts
        for stop in shift.route or []
        if stop.get("building_id")
    }
    names: dict[tuple[int, int], str] = {}
    if ids:
        rows = db.session.execute(
            select(Building.id, Building.community_id, Building.name).where(Building.id.in_(ids))
        ).all()
        names = {(row.id, row.community_id): row.name for row in rows}
    routes: dict[int, list[Stop]] = {}
    for shift in shifts:
        stops = []
        for stop in shift.route or []:
            text = (stop.get("label") or "").strip()
            # A building of another community is never named, whatever the route says.
            building = names.get((stop.get("building_id"), shift.community_id))
            if building:
                stops.append(Stop(name=building, note=text))
            elif text:
                stops.append(Stop(name=text))
        routes[shift.id] = stops
    return routes


def going(shift_id: int) -> tuple[list[Signup], list[Signup]]:
    """Confirmed sign-ups (in the order they came) and the waitlist (in line), with people."""
    rows = db.session.scalars(
        select(Signup)
        .options(joinedload(Signup.person))
        .where(Signup.shift_id == shift_id, Signup.status.in_(HELD))
    ).all()
    confirmed = sorted(
        (s for s in rows if s.status == "confirmed"), key=lambda s: (s.created_at, s.id)
    )
    waitlisted = sorted(
        (s for s in rows if s.status == "waitlisted"), key=lambda s: (s.waitlisted_at, s.id)
    )
    return confirmed, waitlisted
