"""Points administration: the community's rules, corrections by the secretary, the community
ledger and its exports, the staff leaderboard export and the party members' annual summary.

Services validate, write and flush; the view commits. Ledger rows are only ever written through
``portal.points.ledger``; this module reads them and wraps its corrections.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from sqlalchemy import Select, and_, exists, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased, joinedload

from portal.auth.models import User
from portal.core.errors import DomainError
from portal.core.labels import LABELS
from portal.core.timeutil import local_today
from portal.database import utcnow
from portal.extensions import db
from portal.help.catalogue import MAX_POINTS as MAX_CATEGORY_POINTS
from portal.help.catalogue import active_minors
from portal.help.models import Category
from portal.patrols.scheduling import MAX_POINTS_PER_HOUR
from portal.people.models import Person
from portal.places.models import Community, Grid
from portal.points import ledger
from portal.points.models import (
    ENTRY_KINDS,
    PER_HOUR_KEYS,
    RULE_DEFAULTS,
    PointsAccount,
    PointsEntry,
    PointsRule,
    PointsTally,
)
from portal.volunteers.models import VOLUNTEER_TYPES, Volunteer, VolunteerType

ENTRY_KIND_LABELS = LABELS["entry_kind"]
PERIODS = ("month", "year", "all")
PERIOD_LABELS = LABELS["points_period"]

MAX_PARTY_REPORT = 1000
MAX_DAILY_CAP = 100_000
MAX_MULTIPLIER = Decimal("5.00")
MULTIPLIER_KEYS = tuple(f"multiplier:{t}" for t in VOLUNTEER_TYPES)
RULE_KEYS = (*RULE_DEFAULTS, *MULTIPLIER_KEYS)
# Kinds whose rows a secretary may not reverse here: a redemption is cancelled in the shop,
# which refunds it and puts the stock back in the same step.
NOT_REVERSIBLE = ("reversal", "redemption")
YEARS_BACK = 4


def field_name(key: str) -> str:
    """The form field of a rule key: ``per_hour:patrol`` → ``per_hour_patrol``."""
    return key.replace(":", "_")


def _insert():
    return pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert


# --- rules -------------------------------------------------------------------------------------


def effective_rules(community_id: int) -> dict[str, Decimal]:
    """Every rule key with the value that applies now (multipliers default to 1; one query)."""
    values = {key: Decimal(1) for key in MULTIPLIER_KEYS}
    values.update(ledger.rules_for(community_id))
    return values


def default_points_per_hour(community_id: int, shift_kind: str) -> int:
    """The points per hour a new shift of this kind starts with (the community's rule)."""
    key = f"per_hour:{shift_kind}"
    if key not in PER_HOUR_KEYS:
        key = "per_hour:other"
    return int(ledger.rules_for(community_id)[key])


def rule_categories(community_id: int) -> list[Category]:
    """The active minor categories whose points the rules page edits, grouped by major."""
    return active_minors(community_id)


def _whole(value: object, low: int, high: int) -> int | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite() or not low <= number <= high:
        return None
    if number != number.to_integral_value():
        return None
    return int(number)


def _check_rules(values: dict[str, object]) -> tuple[dict[str, Decimal], dict[str, str]]:
    cleaned: dict[str, Decimal] = {}
    errors: dict[str, str] = {}
    for key, value in values.items():
        name = field_name(key)
        if key in PER_HOUR_KEYS:
            number = _whole(value, 0, MAX_POINTS_PER_HOUR)
            if number is None:
                errors[name] = _("Enter a whole number from 0 to %(max)d.", max=MAX_POINTS_PER_HOUR)
            else:
                cleaned[key] = Decimal(number)
        elif key == "party_report":
            number = _whole(value, 0, MAX_PARTY_REPORT)
            if number is None:
                errors[name] = _("Enter a whole number from 0 to %(max)d.", max=MAX_PARTY_REPORT)
            else:
                cleaned[key] = Decimal(number)
        elif key == "daily_cap":
            number = _whole(value, 0, MAX_DAILY_CAP)
            if number is None:
                errors[name] = _(
                    "Enter a whole number from 0 (no cap) to %(max)d.", max=MAX_DAILY_CAP
                )
            else:
                cleaned[key] = Decimal(number)
        elif key in MULTIPLIER_KEYS:
            try:
                number = Decimal(str(value))
            except (InvalidOperation, ValueError):
                number = None
            if (
                number is None
                or not number.is_finite()
                or not Decimal(0) <= number <= MAX_MULTIPLIER
                or number != number.quantize(Decimal("0.01"))
            ):
                errors[name] = _("Enter a multiplier from 0.00 to 5.00 (two decimals at most).")
            else:
                cleaned[key] = number.quantize(Decimal("0.01"))
        else:
            raise ValueError(f"unknown rule key {key!r}")
    return cleaned, errors


def save_rules(
    community_id: int,
    values: dict[str, object],
    category_points: dict[int, object],
    actor_id: int,
) -> int:
    """Store the rules that changed (upsert per key) and the categories' points; returns how
    many values changed. DomainError with a message per field: nothing is saved then."""
    cleaned, errors = _check_rules(values)
    categories: dict[int, Category] = {}
    if category_points:
        categories = {
            c.id: c
            for c in db.session.scalars(
                select(Category).where(
                    Category.community_id == community_id,
                    Category.parent_id.is_not(None),
                    Category.id.in_(list(category_points)),
                )
            )
        }
    new_points: dict[int, int] = {}
    for category_id, value in category_points.items():
        if category_id not in categories:
            errors["_"] = _("A category was removed meanwhile; reload the page.")
            continue
        number = _whole(value, 0, MAX_CATEGORY_POINTS)
        if number is None:
            errors[f"category_{category_id}"] = _(
                "Enter a whole number from 0 to %(max)d.", max=MAX_CATEGORY_POINTS
            )
        else:
            new_points[category_id] = number
    if errors:
        raise DomainError(errors)

    stored = dict(
        db.session.execute(
            select(PointsRule.key, PointsRule.value).where(PointsRule.community_id == community_id)
        ).all()
    )
    now = utcnow()
    changed = 0
    for key, value in cleaned.items():
        # A key never stored is written even at its default, so that the page can say who set it.
        if key in stored and Decimal(stored[key]) == value:
            continue
        statement = _insert()(PointsRule).values(
            community_id=community_id, key=key, value=value, updated_at=now, updated_by_id=actor_id
        )
        statement = statement.on_conflict_do_update(
            index_elements=["community_id", "key"],
            set_={
                "value": statement.excluded.value,
                "updated_at": statement.excluded.updated_at,
                "updated_by_id": statement.excluded.updated_by_id,
            },
        )
        db.session.execute(statement)
        changed += 1
    for category_id, points in new_points.items():
        category = categories[category_id]
        if category.points != points:
            category.points = points
            changed += 1
    db.session.flush()
    return changed


@dataclass
class RuleChange:
    at: datetime
    by: str


def last_change(community_id: int) -> RuleChange | None:
    """When and by whom the community's rules were last changed (None: never; one query)."""
    row = db.session.execute(
        select(PointsRule.updated_at, User)
        .outerjoin(User, User.id == PointsRule.updated_by_id)
        .options(joinedload(User.person))
        .where(PointsRule.community_id == community_id)
        .order_by(PointsRule.updated_at.desc(), PointsRule.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    at, user = row
    return RuleChange(at=at, by=user.display_name if user is not None else "")


# --- corrections ----------------------------------------------------------------------------


def _not_own(person_id: int, actor: User) -> None:
    if actor.person_id is not None and actor.person_id == person_id:
        raise DomainError({"_": _("You cannot correct your own points; ask another secretary.")})


def adjust_points(
    person: Person, *, points: int | None, hours: Decimal | None, reason: str, actor: User
) -> PointsEntry:
    """A secretary's adjustment of someone else's points or hours, with its reason; DomainError
    as ledger.adjust raises it, or for one's own points."""
    _not_own(person.id, actor)
    return ledger.adjust(
        person.id,
        points=points or 0,
        hours=Decimal(hours or 0),
        reason=reason,
        actor_id=actor.id,
    )


def reverse_entry(entry: PointsEntry, *, reason: str, actor: User) -> PointsEntry:
    """Cancel a ledger row with an opposite one; DomainError for a redemption (cancelled in the
    shop), one's own row, or what ledger.reverse refuses."""
    _not_own(entry.person_id, actor)
    if entry.kind == "redemption":
        raise DomainError(
            {"_": _("Cancel a redemption in the rewards shop: that also puts the stock back.")}
        )
    return ledger.reverse(entry, reason=reason, actor_id=actor.id)


# --- reading the ledger, one page at a time ---------------------------------------------------


@dataclass
class KeysetPage:
    """One page of ledger rows, newest first; ``newer``/``older`` are the cursors of the
    neighbouring pages (None when there is none)."""

    items: list[PointsEntry]
    newer: int | None = None
    older: int | None = None
    reversed: set[int] = field(default_factory=set)


def keyset_page(
    query: Select, *, before: int | None, after: int | None, per_page: int
) -> KeysetPage:
    """Rows of ``query`` (a select of PointsEntry) by id, newest first, after or before a
    cursor: the cost is the same on the first page and the thousandth."""
    if after is not None:
        rows = list(
            db.session.scalars(
                query.where(PointsEntry.id > after).order_by(PointsEntry.id).limit(per_page + 1)
            )
        )
        more_newer = len(rows) > per_page
        rows = list(reversed(rows[:per_page]))
        newer = rows[0].id if more_newer and rows else None
        older = rows[-1].id if rows else None
    else:
        if before is not None:
            query = query.where(PointsEntry.id < before)
        rows = list(db.session.scalars(query.order_by(PointsEntry.id.desc()).limit(per_page + 1)))
        more_older = len(rows) > per_page
        rows = rows[:per_page]
        older = rows[-1].id if more_older else None
        newer = rows[0].id if before is not None and rows else None
    return KeysetPage(
        items=rows,
        newer=newer,
        older=older,
        reversed=ledger.reversed_ids(rows),
    )


def _with_people(query: Select) -> Select:
    return query.options(
        joinedload(PointsEntry.person),
        joinedload(PointsEntry.created_by).joinedload(User.person),
    )


def person_history_query(person_id: int) -> Select:
    """Every ledger row of a person, with who made it."""
    return _with_people(select(PointsEntry).where(PointsEntry.person_id == person_id))


def account_of(person_id: int) -> PointsAccount | None:
    return db.session.get(PointsAccount, person_id)


@dataclass
class LedgerFilters:
    """Ledger filters, already cleaned: an unknown value is None (meaning "any")."""

    kind: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    q: str = ""
    community: int | None = None

    @classmethod
    def clean(cls, kind, date_from, date_to, q, community) -> LedgerFilters:
        return cls(
            kind=kind if kind in ENTRY_KINDS else None,
            date_from=date_from if isinstance(date_from, date) else None,
            date_to=date_to if isinstance(date_to, date) else None,
            q=(q or "").strip()[:40],
            community=community if isinstance(community, int) else None,
        )

    def args(self) -> dict[str, object]:
        """Non-empty filters, for links (pager, export) that keep them."""
        values = {
            "kind": self.kind,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "q": self.q,
            "community": self.community,
        }
        return {k: v for k, v in values.items() if v not in (None, "")}


def _ledger_where(query: Select, filters: LedgerFilters, community_ids: list[int]) -> Select:
    query = query.where(PointsEntry.community_id.in_(community_ids))
    if filters.community is not None:
        query = query.where(PointsEntry.community_id == filters.community)
    if filters.kind:
        query = query.where(PointsEntry.kind == filters.kind)
    if filters.date_from:
        query = query.where(PointsEntry.occurred_on >= filters.date_from)
    if filters.date_to:
        query = query.where(PointsEntry.occurred_on <= filters.date_to)
    if filters.q:
        query = query.where(
            PointsEntry.person_id.in_(
                select(Person.id).where(
                    Person.community_id.in_(community_ids),
                    Person.name.contains(filters.q, autoescape=True),
                )
            )
        )
    return query


def ledger_query(filters: LedgerFilters, community_ids: list[int]) -> Select:
    """The community ledger's rows matching the filters, with person and author."""
    return _with_people(_ledger_where(select(PointsEntry), filters, community_ids))


def _labels(mapping: dict) -> dict[str, str]:
    return {code: str(text) for code, text in mapping.items()}


def ledger_export_header() -> list[str]:
    return [
        _("Entry No."),
        _("Date"),
        _("Name"),
        _("Community"),
        _("Kind"),
        _("Points"),
        _("Hours"),
        _("Note"),
        _("Source"),
        _("Source No."),
        _("Made by"),
        _("Recorded at"),
    ]


def ledger_export_rows(
    filters: LedgerFilters, community_ids: list[int], tz, batch: int = 1000
) -> Iterator[tuple]:
    """The filtered ledger as plain rows, newest first, fetched in batches (no phones)."""
    author = aliased(Person)
    query = (
        select(
            PointsEntry.id,
            PointsEntry.occurred_on,
            Person.name,
            Community.name,
            PointsEntry.kind,
            PointsEntry.points,
            PointsEntry.hours,
            PointsEntry.note,
            PointsEntry.source_type,
            PointsEntry.source_id,
            func.coalesce(author.name, User.username),
            PointsEntry.created_at,
        )
        .join(Person, Person.id == PointsEntry.person_id)
        .join(Community, Community.id == PointsEntry.community_id)
        .outerjoin(User, User.id == PointsEntry.created_by_id)
        .outerjoin(author, author.id == User.person_id)
        .order_by(PointsEntry.id.desc())
        .execution_options(yield_per=batch)
    )
    query = _ledger_where(query, filters, community_ids)
    kinds = _labels(ENTRY_KIND_LABELS)
    for row in db.session.execute(query):
        (entry_id, day, name, community, kind, points, hours, note, source, source_id, by, at) = row
        yield (
            entry_id,
            day,
            name,
            community,
            kinds.get(kind, kind),
            points,
            hours,
            note,
            source,
            source_id,
            by or "",
            at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        )


# --- the leaderboard export (staff: full names, everyone with points) ---------------------------


def period_key(period: str, today: date | None = None) -> str:
    """The tally period of ``month``/``year``/``all`` for today (local)."""
    all_time, year, month = ledger.periods_for(today or local_today())
    return {"month": month, "year": year}.get(period, all_time)


def leaderboard_export_header() -> list[str]:
    return [
        _("Rank"),
        _("Name"),
        _("Community"),
        _("Grid"),
        _("Points"),
        _("Hours"),
        _("Activities"),
        _("Shown on leaderboard"),
    ]


def leaderboard_rows(community_ids: list[int], period: str, batch: int = 1000) -> Iterator[tuple]:
    """Everyone of these communities with points in the period, ranked by the leaderboard's
    rule: points, then hours, then who reached the total first, then person id."""
    yes, no = _("yes"), _("no")
    query = (
        select(
            Person.name,
            Community.name,
            Grid.name,
            PointsTally.points,
            PointsTally.hours,
            PointsTally.activities,
            PointsAccount.listed,
        )
        .join(Person, Person.id == PointsTally.person_id)
        .join(Community, Community.id == PointsTally.community_id)
        .outerjoin(PointsAccount, PointsAccount.person_id == PointsTally.person_id)
        .outerjoin(Volunteer, Volunteer.person_id == PointsTally.person_id)
        .outerjoin(Grid, Grid.id == Volunteer.grid_id)
        .where(
            PointsTally.community_id.in_(community_ids),
            PointsTally.period == period_key(period),
            PointsTally.points > 0,
        )
        .order_by(
            PointsTally.points.desc(),
            PointsTally.hours.desc(),
            PointsTally.last_earned_at,
            PointsTally.person_id,
        )
        .execution_options(yield_per=batch)
    )
    for rank, (name, community, grid, points, hours, activities, listed) in enumerate(
        db.session.execute(query), start=1
    ):
        yield (rank, name, community, grid or "", points, hours, activities, yes if listed else no)


# --- party members' annual summary --------------------------------------------------------------


def party_years(today: date | None = None) -> list[int]:
    """The years offered: this one and the four before, newest first."""
    year = (today or local_today()).year
    return [year - n for n in range(YEARS_BACK + 1)]


def _party_members(community_ids: list[int]) -> Select:
    return select(Volunteer).where(
        Volunteer.community_id.in_(community_ids),
        Volunteer.status == "approved",
        exists().where(
            VolunteerType.volunteer_id == Volunteer.id, VolunteerType.type == "party_member"
        ),
    )


def party_query(community_ids: list[int]) -> Select:
    """Approved party-member volunteers of these communities, by name."""
    return (
        _party_members(community_ids)
        .join(Person, Person.id == Volunteer.person_id)
        .options(joinedload(Volunteer.person), joinedload(Volunteer.grid))
        .order_by(Person.name, Volunteer.id)
    )


@dataclass
class YearFigures:
    points: int = 0
    hours: Decimal = Decimal("0.00")
    activities: int = 0


def party_figures(person_ids: list[int], year: int) -> dict[int, YearFigures]:
    """Each person's points, hours and activities of the year (zeros when none; one query)."""
    figures = {person_id: YearFigures() for person_id in person_ids}
    if not person_ids:
        return figures
    for person_id, points, hours, activities in db.session.execute(
        select(
            PointsTally.person_id, PointsTally.points, PointsTally.hours, PointsTally.activities
        ).where(PointsTally.person_id.in_(person_ids), PointsTally.period == f"{year:04d}")
    ):
        figures[person_id] = YearFigures(points, Decimal(hours), activities)
    return figures


def party_export_header() -> list[str]:
    return [
        _("Name"),
        _("Community"),
        _("Party branch"),
        _("Employer"),
        _("Reported on"),
        _("Grid"),
        _("Activities"),
        _("Hours"),
        _("Points"),
    ]


def party_export_rows(community_ids: list[int], year: int, batch: int = 1000) -> Iterator[tuple]:
    """The summary of every party member for the year, as plain rows (no phones)."""
    members = _party_members(community_ids).subquery()
    query = (
        select(
            Person.name,
            Community.name,
            members.c.party_branch,
            members.c.employer,
            members.c.party_reported_on,
            Grid.name,
            func.coalesce(PointsTally.activities, 0),
            func.coalesce(PointsTally.hours, 0),
            func.coalesce(PointsTally.points, 0),
        )
        .select_from(members)
        .join(Person, Person.id == members.c.person_id)
        .join(Community, Community.id == members.c.community_id)
        .outerjoin(Grid, Grid.id == members.c.grid_id)
        .outerjoin(
            PointsTally,
            and_(
                PointsTally.person_id == members.c.person_id,
                PointsTally.period == f"{year:04d}",
            ),
        )
        .order_by(Person.name, members.c.id)
        .execution_options(yield_per=batch)
    )
    for (
        name,
        community,
        branch,
        employer,
        reported,
        grid,
        activities,
        hours,
        points,
    ) in db.session.execute(query):
        yield (
            name,
            community,
            branch,
            employer,
            reported,
            grid or "",
            activities,
            Decimal(hours).quantize(Decimal("0.01")),
            points,
        )
