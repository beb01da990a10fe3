"""Helpers for the points tests: English messages, htmx headers, points awarded through the
ledger, and the leaderboard consent."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

import pytest

from portal.core.timeutil import local_today
from portal.extensions import db
from portal.points import ledger, queries
from portal.points.models import PointsEntry

HX = {"HX-Request": "true"}
SOURCE_TYPES = {"help": "request", "mediation": "request", "party_report": "volunteer"}


@pytest.fixture
def english(client):
    """Show English messages (the default is Chinese)."""
    response = client.post("/language", data={"lang": "en"})
    assert response.status_code == 303


@pytest.fixture
def award_rows(app):
    """``award_rows(person, points, hours=0, day=None, kind="patrol", count=1)``: award through
    ``ledger.award`` (each time from a new source), commit, and return the ledger rows."""
    sources = itertools.count(1)

    def award(
        person,
        points: int,
        hours: Decimal | str | int = 0,
        *,
        day: date | None = None,
        kind: str = "patrol",
        count: int = 1,
        note: str = "",
    ) -> list[PointsEntry]:
        entries = []
        for _ in range(count):
            entry = ledger.award(
                person.id,
                kind=kind,
                source_type=SOURCE_TYPES.get(kind, "signup"),
                source_id=next(sources),
                base_points=Decimal(points),
                hours=Decimal(str(hours)),
                occurred_on=day or local_today(),
                note=note,
            )
            assert entry is not None
            entries.append(entry)
        db.session.commit()
        return entries

    return award


@pytest.fixture
def listed(app):
    """``listed(person, on=True)``: give (or withdraw) the person's leaderboard consent."""

    def set_listed(person, on: bool = True) -> None:
        queries.set_listed(person.id, on)
        db.session.commit()

    return set_listed
