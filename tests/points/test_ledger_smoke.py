"""The ledger's core rules, end to end through the service: once per source, balance never
below zero, cached totals equal the ledger's sums."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.core.errors import DomainError
from portal.extensions import db
from portal.points import ledger
from portal.points.models import PointsAccount, PointsEntry, PointsTally


def _sums(person_id: int) -> tuple[int, Decimal]:
    row = db.session.execute(
        select(
            func.coalesce(func.sum(PointsEntry.points), 0),
            func.coalesce(func.sum(PointsEntry.hours), 0),
        ).where(PointsEntry.person_id == person_id)
    ).one()
    return int(row[0]), Decimal(str(row[1]))


def test_award_once_and_totals_follow(app, world):
    person = world.a.volunteer.person
    first = ledger.award(
        person.id,
        kind="patrol",
        source_type="signup",
        source_id=1,
        base_points=Decimal(25),
        hours=Decimal("2.5"),
        occurred_on=date(2026, 11, 3),
    )
    again = ledger.award(
        person.id,
        kind="patrol",
        source_type="signup",
        source_id=1,
        base_points=Decimal(25),
        hours=Decimal("2.5"),
        occurred_on=date(2026, 11, 3),
    )
    db.session.commit()
    assert first is not None and first.points == 25 and again is None
    account = db.session.get(PointsAccount, person.id)
    assert (account.balance, account.earned, account.hours) == (25, 25, Decimal("2.50"))
    assert _sums(person.id) == (25, Decimal("2.50"))
    periods = {
        t.period: (t.points, t.activities)
        for t in db.session.scalars(select(PointsTally).where(PointsTally.person_id == person.id))
    }
    assert periods == {"all": (25, 1), "2026": (25, 1), "2026-11": (25, 1)}


def test_balance_never_below_zero(app, world):
    person = world.a.volunteer.person
    ledger.adjust(
        person.id, points=10, hours=Decimal(0), reason="opening", actor_id=world.a.secretary.id
    )
    db.session.commit()
    with pytest.raises(DomainError):
        ledger.adjust(
            person.id,
            points=-11,
            hours=Decimal(0),
            reason="too much",
            actor_id=world.a.secretary.id,
        )
    db.session.rollback()
    assert db.session.get(PointsAccount, person.id).balance == 10


def test_reversal_once(app, world):
    person = world.a.volunteer.person
    entry = ledger.adjust(
        person.id, points=30, hours=Decimal(1), reason="x", actor_id=world.a.secretary.id
    )
    ledger.reverse(entry, reason="mistake", actor_id=world.a.secretary.id)
    db.session.commit()
    with pytest.raises(DomainError):
        ledger.reverse(entry, reason="again", actor_id=world.a.secretary.id)
    db.session.rollback()
    account = db.session.get(PointsAccount, person.id)
    assert (account.balance, account.hours) == (0, Decimal("0.00"))
    assert _sums(person.id) == (0, Decimal("0.00"))
