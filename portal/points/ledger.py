"""The points ledger: every change of a person's points or hours is one appended row.

``post_entry`` is the only writer. In one transaction it inserts the row (once per
(person, kind, source): a replayed or parallel trigger inserts nothing), moves the cached
balance with a conditional UPDATE that cannot take it below zero, and adds ranked rows to the
month, year and all-time tallies. Services here never commit; the caller's transaction holds
the award together with what caused it (a verified attendance, a verified request, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select, update

from portal.core.errors import DomainError
from portal.core.timeutil import now_utc, to_local
from portal.database import dialect_insert, insert_unless_conflict, utcnow
from portal.extensions import db
from portal.points.models import (
    EARNING_KINDS,
    PERIOD_ALL,
    RULE_DEFAULTS,
    PointsAccount,
    PointsEntry,
    PointsRule,
    PointsTally,
)

SHIFT_KIND_TO_ENTRY = {
    "patrol": "patrol",
    "door_watch": "door_watch",
    "other": "duty",
    "help_visit": "help",
}
MAX_ADJUST_POINTS = 100_000
MAX_ADJUST_HOURS = Decimal(100)
# Requests whose category sits under this major are mediation (调解), not neighbour help.
MEDIATION_MAJOR = "dispute"


def periods_for(day: date) -> tuple[str, str, str]:
    """The tally periods a day belongs to: all time, its year, its month."""
    return (PERIOD_ALL, f"{day.year:04d}", f"{day.year:04d}-{day.month:02d}")


def _community_and_subdistrict(person_id: int) -> tuple[int, int]:
    """Where the person's points count, read once per session (a request) and person: locking
    the account and posting to it both need it, and a person never moves in between."""
    from portal.people.models import Person
    from portal.places.models import Community

    known = db.session.info.setdefault("ledger_places", {})
    if person_id not in known:
        row = db.session.execute(
            select(Person.community_id, Community.subdistrict_id)
            .join(Community, Community.id == Person.community_id)
            .where(Person.id == person_id)
        ).one()
        known[person_id] = (row[0], row[1])
    return known[person_id]


def _ensure_account(person_id: int, community_id: int) -> None:
    db.session.execute(
        dialect_insert()(PointsAccount)
        .values(
            person_id=person_id,
            community_id=community_id,
            balance=0,
            earned=0,
            hours=Decimal(0),
            listed=False,
        )
        .on_conflict_do_nothing(index_elements=["person_id"])
    )


def lock_account(person_id: int, *, create: bool = True) -> None:
    """Create the person's account if needed and hold its row until the transaction ends
    (PostgreSQL row lock; SQLite's BEGIN IMMEDIATE already serialises writers), so that
    decisions read after this (the daily cap, a per-person limit) cannot race.
    ``create=False``: only hold an existing account (spending needs a balance anyway)."""
    if not create and (
        db.engine.dialect.name == "sqlite"
        and db.session.connection().get_execution_options().get("sqlite_immediate")
    ):
        return  # this transaction began holding the database's one write lock
    if create:
        community_id, _sub = _community_and_subdistrict(person_id)
        _ensure_account(person_id, community_id)
    db.session.execute(
        update(PointsAccount)
        .where(PointsAccount.person_id == person_id)
        .values(balance=PointsAccount.balance)
        .execution_options(synchronize_session=False)
    )


def _add_to_tallies(
    person_id: int,
    community_id: int,
    subdistrict_id: int,
    day: date,
    points: int,
    hours: Decimal,
    activities: int,
) -> None:
    now = utcnow()
    for period in periods_for(day):
        statement = dialect_insert()(PointsTally).values(
            person_id=person_id,
            period=period,
            community_id=community_id,
            subdistrict_id=subdistrict_id,
            points=points,
            hours=hours,
            activities=activities,
            last_earned_at=now,
        )
        excluded = statement.excluded
        grew = points > 0
        statement = statement.on_conflict_do_update(
            index_elements=["person_id", "period"],
            set_={
                "points": PointsTally.points + excluded.points,
                "hours": PointsTally.hours + excluded.hours,
                "activities": PointsTally.activities + excluded.activities,
                # Ties rank by who reached the total first: only growth moves the time.
                "last_earned_at": excluded.last_earned_at if grew else PointsTally.last_earned_at,
            },
        )
        db.session.execute(statement)


def post_entry(
    person_id: int,
    *,
    kind: str,
    source_type: str,
    source_id: int | None,
    points: int,
    hours: Decimal = Decimal(0),
    occurred_on: date | None = None,
    note: str = "",
    actor_id: int | None = None,
    ranked: bool | None = None,
    activities: int | None = None,
    account_exists: bool = False,
) -> PointsEntry | None:
    """Append one ledger row and move the cached totals with it; None when this source was
    already entered (nothing changes). Raises DomainError when the balance would go below zero
    (the caller rolls back). ``account_exists``: the caller has just read the person's account
    (a balance to spend), so it is not created first."""
    community_id, subdistrict_id = _community_and_subdistrict(person_id)
    if ranked is None:
        ranked = kind != "redemption"
    if activities is None:
        activities = 1 if kind in EARNING_KINDS else 0
    day = occurred_on or to_local(now_utc()).date()
    hours = Decimal(hours).quantize(Decimal("0.01"))
    if not account_exists:
        _ensure_account(person_id, community_id)
    entry = insert_unless_conflict(
        PointsEntry,
        {
            "person_id": person_id,
            "community_id": community_id,
            "kind": kind,
            "source_type": source_type,
            "source_id": source_id,
            "points": points,
            "hours": hours,
            "ranked": ranked,
            "occurred_on": day,
            "note": note[:200],
            "created_by_id": actor_id,
            "created_at": utcnow(),
        },
        ["person_id", "kind", "source_type", "source_id"],
    )
    if entry is None:
        return None
    moved = db.session.execute(
        update(PointsAccount)
        .where(
            PointsAccount.person_id == person_id,
            PointsAccount.balance + points >= 0,
        )
        .values(
            balance=PointsAccount.balance + points,
            earned=PointsAccount.earned + (points if ranked else 0),
            hours=PointsAccount.hours + hours,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:
        raise DomainError({"_": _("Not enough points: the balance cannot go below zero.")})
    if ranked:
        _add_to_tallies(
            person_id,
            community_id,
            subdistrict_id,
            day,
            points,
            hours,
            activities,
        )
    # A loaded account holds the totals from before the UPDATE: read again when next used.
    account = db.session.identity_map.get(db.session.identity_key(PointsAccount, person_id))
    if account is not None:
        db.session.expire(account)
    return entry


# --- rules ---------------------------------------------------------------------------------


def rules_for(community_id: int) -> dict[str, Decimal]:
    """The community's rule values, defaults filled in (one query)."""
    values = dict(RULE_DEFAULTS)
    for key, value in db.session.execute(
        select(PointsRule.key, PointsRule.value).where(PointsRule.community_id == community_id)
    ):
        values[key] = Decimal(value)
    return values


def multiplier_for(person_id: int, rules: dict[str, Decimal]) -> Decimal:
    """The highest multiplier among the person's volunteer types (1 when none is set)."""
    from portal.volunteers.models import Volunteer, VolunteerType

    types = db.session.scalars(
        select(VolunteerType.type)
        .join(Volunteer, Volunteer.id == VolunteerType.volunteer_id)
        .where(Volunteer.person_id == person_id, Volunteer.status == "approved")
    ).all()
    # A type without a multiplier of its own counts as 1, so it still competes for the highest.
    found = [rules.get(f"multiplier:{t}", Decimal(1)) for t in types]
    return max(found) if found else Decimal(1)


@dataclass
class Award:
    points: int
    capped: bool


def _earned_on(person_id: int, day: date) -> int:
    """Activity points of the person's day, less those reversed (a reversed award frees room)."""
    earning = select(PointsEntry.id).where(
        PointsEntry.person_id == person_id,
        PointsEntry.occurred_on == day,
        PointsEntry.kind.in_(EARNING_KINDS),
    )
    total = db.session.scalar(
        select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
            PointsEntry.person_id == person_id,
            PointsEntry.occurred_on == day,
            or_(
                PointsEntry.kind.in_(EARNING_KINDS),
                and_(
                    PointsEntry.kind == "reversal",
                    PointsEntry.source_type == "entry",
                    PointsEntry.source_id.in_(earning.scalar_subquery()),
                ),
            ),
        )
    )
    return int(total or 0)


def compute_award(person_id: int, base: Decimal, day: date) -> Award:
    """Points for an activity worth ``base`` before the person's multiplier and the daily cap.
    Call after ``lock_account`` so two awards on one day cannot both pass the cap."""
    community_id, _sub = _community_and_subdistrict(person_id)
    rules = rules_for(community_id)
    points = int((Decimal(base) * multiplier_for(person_id, rules)).quantize(0, ROUND_HALF_UP))
    cap = int(rules["daily_cap"])
    if cap > 0 and points > 0:
        room = max(cap - _earned_on(person_id, day), 0)
        if points > room:
            return Award(points=room, capped=True)
    return Award(points=max(points, 0), capped=False)


def _already(person_id: int, kind: str, source_type: str, source_id: int) -> bool:
    return (
        db.session.scalar(
            select(PointsEntry.id).where(
                PointsEntry.person_id == person_id,
                PointsEntry.kind == kind,
                PointsEntry.source_type == source_type,
                PointsEntry.source_id == source_id,
            )
        )
        is not None
    )


def award(
    person_id: int,
    *,
    kind: str,
    source_type: str,
    source_id: int,
    base_points: Decimal,
    hours: Decimal,
    occurred_on: date,
    note: str = "",
) -> PointsEntry | None:
    """Award an activity once: multiplier and daily cap applied, hours always kept.
    None when this source was already awarded."""
    lock_account(person_id)
    if _already(person_id, kind, source_type, source_id):
        return None
    result = compute_award(person_id, base_points, occurred_on)
    if result.capped:
        note = (note + " " if note else "") + _("(daily cap reached)")
    return post_entry(
        person_id,
        kind=kind,
        source_type=source_type,
        source_id=source_id,
        points=result.points,
        hours=hours,
        occurred_on=occurred_on,
        note=note,
    )


# --- award sources ---------------------------------------------------------------------------


def award_signup(signup) -> PointsEntry | None:  # noqa: ANN001 (patrols.models.Signup)
    """Points and hours for a signup whose hours were just verified (points per hour of the
    shift, at the shift's local date)."""
    shift = signup.shift
    hours = Decimal(signup.hours or 0)
    if signup.hours_recorded_at is None or hours <= 0:
        return None
    return award(
        signup.person_id,
        kind=SHIFT_KIND_TO_ENTRY.get(shift.kind, "duty"),
        source_type="signup",
        source_id=signup.id,
        base_points=hours * Decimal(shift.points_per_hour or 0),
        hours=hours,
        occurred_on=to_local(shift.starts_at).date(),
        note=shift.title[:120],
    )


def request_kind(req) -> str:  # noqa: ANN001 (help.models.HelpRequest)
    category = req.category
    major = category.parent if category.parent is not None else category
    return "mediation" if major.code == MEDIATION_MAJOR else "help"


def award_request(req) -> PointsEntry | None:  # noqa: ANN001 (help.models.HelpRequest)
    """Points (by category) and hours for the volunteer of a request just verified."""
    if req.volunteer_id is None or req.hours_recorded_at is None:
        return None
    moment = req.done_at or req.hours_recorded_at
    return award(
        req.volunteer_id,
        kind=request_kind(req),
        source_type="request",
        source_id=req.id,
        base_points=Decimal(req.category.points or 0),
        hours=Decimal(req.hours or 0),
        occurred_on=to_local(moment).date(),
        note="",
    )


def award_party_report(volunteer) -> PointsEntry | None:  # noqa: ANN001 (Volunteer)
    """Points once for a party member's reporting to the grid (党员报到)."""
    if volunteer.party_reported_on is None:
        return None
    rules = rules_for(volunteer.community_id)
    return award(
        volunteer.person_id,
        kind="party_report",
        source_type="volunteer",
        source_id=volunteer.id,
        base_points=rules["party_report"],
        hours=Decimal(0),
        occurred_on=volunteer.party_reported_on,
    )


# --- corrections -----------------------------------------------------------------------------


def adjust(
    person_id: int, *, points: int, hours: Decimal, reason: str, actor_id: int
) -> PointsEntry:
    """A secretary's manual adjustment; DomainError for no reason, nothing to change, numbers
    out of range or a balance that would go below zero."""
    errors: dict[str, str] = {}
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = _("Give the reason for the adjustment; it is shown in the history.")
    elif len(reason) > 200:
        errors["reason"] = _("At most %(max)d characters.", max=200)
    if not -MAX_ADJUST_POINTS <= points <= MAX_ADJUST_POINTS:
        errors["points"] = _(
            "Enter a number from %(min)d to %(max)d.", min=-MAX_ADJUST_POINTS, max=MAX_ADJUST_POINTS
        )
    if not -MAX_ADJUST_HOURS <= hours <= MAX_ADJUST_HOURS:
        errors["hours"] = _("Enter hours from -100 to 100.")
    if not errors and points == 0 and hours == 0:
        errors["points"] = _("Enter the points or hours to add or take away.")
    if errors:
        raise DomainError(errors)
    lock_account(person_id)
    entry = post_entry(
        person_id,
        kind="adjustment",
        source_type="adjustment",
        source_id=None,
        points=points,
        hours=hours,
        note=reason,
        actor_id=actor_id,
    )
    assert entry is not None  # NULL sources never collide
    return entry


def reverse(entry: PointsEntry, *, reason: str, actor_id: int | None) -> PointsEntry:
    """Cancel an entry with an opposite row (kept in the history); DomainError when it is a
    reversal itself, was already reversed, or the balance would go below zero."""
    reason = (reason or "").strip()
    if not reason:
        raise DomainError({"reason": _("Give the reason for the reversal.")})
    if entry.kind == "reversal":
        raise DomainError({"_": _("A reversal cannot be reversed; make an adjustment instead.")})
    lock_account(entry.person_id)
    row = post_entry(
        entry.person_id,
        kind="reversal",
        source_type="entry",
        source_id=entry.id,
        points=-entry.points,
        hours=-Decimal(entry.hours),
        occurred_on=entry.occurred_on,
        note=reason,
        actor_id=actor_id,
        ranked=entry.ranked,
        # The reversed activity no longer counts as one.
        activities=-1 if entry.kind in EARNING_KINDS else 0,
    )
    if row is None:
        raise DomainError({"_": _("This entry was already reversed.")})
    return row


def reversed_ids(entries: list[PointsEntry]) -> set[int]:
    """Which of these entries have been reversed (one query, on the unique key's index: a
    reversal belongs to the same person as the entry it cancels)."""
    if not entries:
        return set()
    return set(
        db.session.scalars(
            select(PointsEntry.source_id).where(
                PointsEntry.person_id.in_({e.person_id for e in entries}),
                PointsEntry.kind == "reversal",
                PointsEntry.source_type == "entry",
                PointsEntry.source_id.in_([e.id for e in entries]),
            )
        )
    )
