"""Figures of the loop per grid and per community over a period: requests in and closed, the
median minutes to accept and to close, the share closed within the time limit, the average rating.

One query reads the timestamps; medians are computed here (fine at community scale).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.help.models import HelpRequest
from portal.places.models import Community, Grid

CLOSED = ("verified", "rated")  # the loop closed with a result
DEFAULT_DAYS = 30
MAX_DAYS = 366


@dataclass
class Figures:
    """The figures of one grid (or of a whole community)."""

    name: str
    grid_id: int | None = None
    requests_in: int = 0
    closed: int = 0
    median_accept_minutes: int | None = None
    median_close_minutes: int | None = None
    within_limit_percent: int | None = None
    average_rating: float | None = None
    _accept: list[float] = field(default_factory=list, repr=False)
    _close: list[float] = field(default_factory=list, repr=False)
    _within: int = field(default=0, repr=False)
    _ratings: list[int] = field(default_factory=list, repr=False)

    def add(self, row) -> None:
        created_at, accepted_at, verified_at, status, due_at, rating = row
        self.requests_in += 1
        if accepted_at is not None:
            self._accept.append((accepted_at - created_at) / timedelta(minutes=1))
        if status in CLOSED and verified_at is not None:
            self.closed += 1
            self._close.append((verified_at - created_at) / timedelta(minutes=1))
            if due_at is None or verified_at <= due_at:
                self._within += 1
        if rating is not None:
            self._ratings.append(rating)

    def finish(self) -> Figures:
        if self._accept:
            self.median_accept_minutes = round(statistics.median(self._accept))
        if self._close:
            self.median_close_minutes = round(statistics.median(self._close))
            self.within_limit_percent = round(100 * self._within / self.closed)
        if self._ratings:
            self.average_rating = round(sum(self._ratings) / len(self._ratings), 1)
        return self


@dataclass
class CommunityFigures:
    name: str
    total: Figures
    grids: list[Figures]


def clamp_days(raw: str | int | None) -> int:
    """The period in days from ``?days=``: 1..366, 30 when missing or malformed."""
    try:
        days = int(raw) if raw is not None else DEFAULT_DAYS
    except (TypeError, ValueError):
        return DEFAULT_DAYS
    return min(max(days, 1), MAX_DAYS)


def compute_figures(
    community_ids: Iterable[int],
    grid_ids: Iterable[int] | None = None,
    *,
    days: int = DEFAULT_DAYS,
    now: datetime | None = None,
    no_grid_label: str = "—",
) -> list[CommunityFigures]:
    """Figures of requests created in the last ``days`` days, per community and grid.

    ``grid_ids`` limits everything to those grids (a grid worker's view); None means all.
    """
    now = now or now_utc()
    since = now - timedelta(days=days)
    community_ids = list(community_ids)
    grids_limit = list(grid_ids) if grid_ids is not None else None
    query = select(
        HelpRequest.community_id,
        HelpRequest.grid_id,
        HelpRequest.created_at,
        HelpRequest.accepted_at,
        HelpRequest.verified_at,
        HelpRequest.status,
        HelpRequest.due_at,
        HelpRequest.rating,
    ).where(HelpRequest.community_id.in_(community_ids), HelpRequest.created_at >= since)
    grid_query = select(Grid.id, Grid.name, Grid.community_id).where(
        Grid.community_id.in_(community_ids)
    )
    if grids_limit is not None:
        query = query.where(HelpRequest.grid_id.in_(grids_limit))
        grid_query = grid_query.where(Grid.id.in_(grids_limit))
    communities = db.session.execute(
        select(Community.id, Community.name)
        .where(Community.id.in_(community_ids))
        .order_by(Community.name, Community.id)
    ).all()
    result: dict[int, CommunityFigures] = {}
    per_grid: dict[tuple[int, int | None], Figures] = {}
    for community_id, name in communities:
        result[community_id] = CommunityFigures(name, Figures(name), [])
    for grid_id, name, community_id in db.session.execute(grid_query.order_by(Grid.name, Grid.id)):
        figures = Figures(name, grid_id)
        per_grid[(community_id, grid_id)] = figures
        result[community_id].grids.append(figures)
    for community_id, grid_id, *row in db.session.execute(query):
        key = (community_id, grid_id)
        if key not in per_grid:  # requests without a grid (or of a grid since removed)
            per_grid[key] = Figures(no_grid_label, grid_id)
            result[community_id].grids.append(per_grid[key])
        per_grid[key].add(row)
        result[community_id].total.add(row)
    for item in result.values():
        item.total.finish()
        for figures in item.grids:
            figures.finish()
    return list(result.values())
