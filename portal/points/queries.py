"""Read-side queries of the points pages: a person's history and monthly totals, the leaderboards
and the viewer's place on one. Every function runs a fixed number of statements, whatever the size
of the ledger: the totals come from ``points_account`` and ``points_tally``, which the ledger
service keeps in step with ``points_ledger``.

The one write here is the leaderboard consent (``set_listed``): it touches only the account row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cache
from math import ceil

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    exists,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.orm import aliased

from portal.database import utcnow
from portal.extensions import db
from portal.points import ledger
from portal.points.models import PointsAccount, PointsEntry, PointsTally
from portal.volunteers.models import VOLUNTEER_TYPES, Volunteer, VolunteerType

HISTORY_PAGE_SIZE = 20
BOARD_PAGE_SIZE = 50
CHART_MONTHS = 12
MAX_PAGE = 100_000  # beyond any real list; keeps OFFSET inside a database integer

KIND_GROUPS: dict[str, tuple[str, ...]] = {
    "duty": ("patrol", "door_watch", "duty"),
    "help": ("help", "mediation"),
    "party_report": ("party_report",),
    "correction": ("adjustment", "reversal"),
    "redemption": ("redemption",),
}
SCOPES = ("grid", "community", "subdistrict")
PERIODS = ("month", "year", "all")


# --- my points -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryFilters:
    group: str | None = None
    date_from: date | None = None
    date_to: date | None = None

    @classmethod
    def clean(cls, group: str | None, date_from: date | None, date_to: date | None):
        """Unknown groups mean "any"; dates given the wrong way round are swapped."""
        if date_from and date_to and date_from > date_to:
            date_from, date_to = date_to, date_from
        return cls(group if group in KIND_GROUPS else None, date_from, date_to)

    def args(self) -> dict[str, str]:
        """The filters as query-string arguments (for pager links)."""
        values = {
            "kind": self.group,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
        }
        return {key: value for key, value in values.items() if value}


def history_query(person_id: int, filters: HistoryFilters) -> Select:
    """The person's ledger rows, newest first (index person_id, occurred_on)."""
    query = select(PointsEntry).where(PointsEntry.person_id == person_id)
    if filters.group:
        query = query.where(PointsEntry.kind.in_(KIND_GROUPS[filters.group]))
    if filters.date_from:
        query = query.where(PointsEntry.occurred_on >= filters.date_from)
    if filters.date_to:
        query = query.where(PointsEntry.occurred_on <= filters.date_to)
    return query.order_by(PointsEntry.occurred_on.desc(), PointsEntry.id.desc())


@dataclass(frozen=True)
class MonthTotal:
    month: date  # its first day
    points: int
    hours: Decimal
    activities: int


@dataclass(frozen=True)
class Summary:
    balance: int
    hours: Decimal
    earned: int
    listed: bool
    months: list[MonthTotal]  # oldest first; the last is this month

    @property
    def this_month(self) -> MonthTotal:
        return self.months[-1]


def last_months(today: date, count: int = CHART_MONTHS) -> list[date]:
    """The first days of the ``count`` months up to ``today``'s, oldest first."""
    index = today.year * 12 + today.month - 1
    return [date(i // 12, i % 12 + 1, 1) for i in range(index - count + 1, index + 1)]


def summary(person_id: int, today: date) -> Summary:
    """Balance, hours and earned points (the account), and the last twelve months (the tallies):
    two queries."""
    account = db.session.get(PointsAccount, person_id)
    months = last_months(today)
    keys = {ledger.periods_for(month)[2]: month for month in months}
    found = {
        period: (points, hours, activities)
        for period, points, hours, activities in db.session.execute(
            select(
                PointsTally.period,
                PointsTally.points,
                PointsTally.hours,
                PointsTally.activities,
            ).where(PointsTally.person_id == person_id, PointsTally.period.in_(list(keys)))
        )
    }
    totals = []
    for key, month in keys.items():
        points, hours, activities = found.get(key, (0, Decimal(0), 0))
        totals.append(MonthTotal(month, int(points), Decimal(hours), int(activities)))
    if account is None:
        return Summary(0, Decimal(0), 0, False, totals)
    return Summary(account.balance, account.hours, account.earned, account.listed, totals)


def set_listed(person_id: int, listed: bool) -> PointsAccount:
    """Give or withdraw consent to appear on leaderboards (the account is created if needed).
    Only ``listed``/``listed_at`` change, so a parallel award's balance update is untouched."""
    ledger.lock_account(person_id)
    account = db.session.get(PointsAccount, person_id, populate_existing=True)
    if listed and not account.listed:
        account.listed, account.listed_at = True, utcnow()
    elif not listed:
        account.listed, account.listed_at = False, None
    db.session.flush()
    return account


# --- leaderboards ----------------------------------------------------------------------------


def period_key(period: str, today: date) -> str:
    """The tally period of ``period`` (month, year, all) on ``today``."""
    every, year, month = ledger.periods_for(today)
    return {"month": month, "year": year}.get(period, every)


@dataclass(frozen=True)
class Board:
    """One leaderboard: the tally period and the people it ranks. A scope whose place is unknown
    (no grid, no community) ranks nobody."""

    scope: str
    period: str
    key: str
    type: str | None = None
    grid_id: int | None = None
    community_id: int | None = None
    subdistrict_id: int | None = None

    @property
    def place_id(self) -> int | None:
        return {
            "grid": self.grid_id,
            "community": self.community_id,
            "subdistrict": self.subdistrict_id,
        }[self.scope]


def _ranked(board: Board, *columns, tally=PointsTally, account=PointsAccount) -> Select:
    """``columns`` over the listed people with points on ``board`` (before any ordering).

    Only the board's shape (scope, typed or not, place known or not) shapes the statement; its
    values are bound parameters (``_board_params``), so the statements below are built once per
    shape: building one costs SQLAlchemy more than running it."""
    query = (
        select(*columns)
        .select_from(tally)
        .join(account, account.person_id == tally.person_id)
        .where(tally.period == bindparam("period"), tally.points > 0, account.listed.is_(True))
    )
    if board.place_id is None:
        return query.where(false())
    if board.scope == "community":
        query = query.where(tally.community_id == bindparam("place_id"))
    elif board.scope == "subdistrict":
        query = query.where(tally.subdistrict_id == bindparam("place_id"))
    else:
        query = query.where(
            tally.person_id.in_(
                select(Volunteer.person_id).where(
                    Volunteer.grid_id == bindparam("place_id"), Volunteer.status == "approved"
                )
            )
        )
    if board.type in VOLUNTEER_TYPES:
        query = query.where(
            exists().where(
                Volunteer.person_id == tally.person_id,
                Volunteer.status == "approved",
                VolunteerType.volunteer_id == Volunteer.id,
                VolunteerType.type == bindparam("type"),
            )
        )
    return query


def _board_params(board: Board, **extra: object) -> dict[str, object]:
    return {"period": board.key, "place_id": board.place_id, "type": board.type, **extra}


def _shape(board: Board) -> tuple[str, bool, bool]:
    return (board.scope, board.type in VOLUNTEER_TYPES, board.place_id is None)


def rank_order(tally=PointsTally) -> tuple:
    """The leaderboard order and its documented tie rule (also for exports): points, then more
    hours, then whoever reached the total first, then the person id so that the order is total."""
    return (
        tally.points.desc(),
        tally.hours.desc(),
        tally.last_earned_at.asc(),
        tally.person_id.asc(),
    )


@dataclass(frozen=True)
class BoardRow:
    rank: int
    person_id: int
    name: str
    points: int
    hours: Decimal
    community: str


@dataclass
class BoardPage:
    """A page of a leaderboard; quacks like Flask-SQLAlchemy's pagination for the pager."""

    items: list[BoardRow]
    page: int
    per_page: int
    total: int
    extra: dict = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(ceil(self.total / self.per_page), 1) if self.total else 0

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def prev_num(self) -> int | None:
        return self.page - 1 if self.has_prev else None

    @property
    def next_num(self) -> int | None:
        return self.page + 1 if self.has_next else None


@cache
def _board_statements(shape: tuple[str, bool, bool]) -> tuple[Select, Select]:
    """(count, page of rows) for boards of one shape."""
    from portal.people.models import Person
    from portal.places.models import Community

    board = _shape_board(shape)
    count = select(func.count()).select_from(_ranked(board, PointsTally.person_id).subquery())
    rows = (
        _ranked(
            board,
            PointsTally.person_id,
            PointsTally.points,
            PointsTally.hours,
            Person.name,
            Community.name,
        )
        .join(Person, Person.id == PointsTally.person_id)
        .join(Community, Community.id == PointsTally.community_id)
        .order_by(*rank_order())
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )
    return count, rows


def _shape_board(shape: tuple[str, bool, bool]) -> Board:
    """A stand-in board of ``shape`` for building statements (values come as parameters)."""
    scope, typed, no_place = shape
    place = None if no_place else 0
    return Board(
        scope=scope,
        period="",
        key="",
        type=VOLUNTEER_TYPES[0] if typed else None,
        grid_id=place,
        community_id=place,
        subdistrict_id=place,
    )


def board_page(board: Board, page: int, per_page: int = BOARD_PAGE_SIZE) -> BoardPage:
    """One page of the board with rank numbers that run on across pages (two queries)."""

    page = min(max(page, 1), MAX_PAGE)
    count_statement, rows_statement = _board_statements(_shape(board))
    params = _board_params(board)
    total = db.session.scalar(count_statement, params)
    rows = db.session.execute(
        rows_statement, {**params, "limit": per_page, "offset": (page - 1) * per_page}
    ).all()
    first = (page - 1) * per_page + 1
    items = [
        BoardRow(first + i, person_id, name, points, Decimal(hours), community)
        for i, (person_id, points, hours, name, community) in enumerate(rows)
    ]
    return BoardPage(items, page, per_page, total or 0)


@dataclass(frozen=True)
class Place:
    listed: bool
    rank: int | None  # None: not on this board (no points in the period, or another place)
    points: int | None = None


@cache
def _place_statement(shape: tuple[str, bool, bool]) -> Select:
    """The person's listing, points and how many rank before them, for boards of ``shape``."""
    board = _shape_board(shape)
    mine = _ranked(
        board,
        PointsTally.person_id,
        PointsTally.points,
        PointsTally.hours,
        PointsTally.last_earned_at,
    ).where(PointsTally.person_id == bindparam("person_id"))
    mine = mine.subquery("mine")
    other = aliased(PointsTally, name="other")
    other_account = aliased(PointsAccount, name="other_account")
    same_points = other.points == mine.c.points
    same_hours = and_(same_points, other.hours == mine.c.hours)
    before: ColumnElement = or_(
        other.points > mine.c.points,
        and_(same_points, other.hours > mine.c.hours),
        and_(same_hours, other.last_earned_at < mine.c.last_earned_at),
        and_(
            same_hours,
            other.last_earned_at == mine.c.last_earned_at,
            other.person_id < mine.c.person_id,
        ),
    )
    ahead = (
        _ranked(board, func.count(), tally=other, account=other_account)
        .where(before)
        .correlate(mine)
        .scalar_subquery()
    )
    return (
        select(PointsAccount.listed, mine.c.points, ahead)
        .select_from(PointsAccount)
        .outerjoin(mine, mine.c.person_id == PointsAccount.person_id)
        .where(PointsAccount.person_id == bindparam("person_id"))
    )


def my_place(board: Board, person_id: int) -> Place:
    """Whether the person agreed to be listed and, if they are on ``board``, their rank:
    one query (the count of people ranked before them, under the same tie rule)."""
    row = db.session.execute(
        _place_statement(_shape(board)), _board_params(board, person_id=person_id)
    ).first()
    if row is None:
        return Place(listed=False, rank=None)
    listed, points, count = row
    if points is None:
        return Place(listed=bool(listed), rank=None)
    return Place(listed=bool(listed), rank=int(count) + 1, points=int(points))
