"""The points ledger (积分台账) and what is derived from it.

``points_ledger`` is append-only: a row is never updated or deleted, a mistake is corrected by a
reversal row. ``points_account`` (balance, earned points, hours per person) and ``points_tally``
(the same per month, per year and all time, for leaderboards and the monthly chart) are caches
that the ledger service updates in the same transaction as the ledger row it adds; tests prove
they always equal the ledger's sums.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.database import UTCDateTime, utcnow
from portal.extensions import db

# Activities that earn points; they count towards leaderboards ("ranked").
EARNING_KINDS = ("patrol", "door_watch", "duty", "help", "mediation", "party_report")
ENTRY_KINDS = (*EARNING_KINDS, "adjustment", "redemption", "reversal")
# Where a ledger row came from (its source_type).
SOURCE_TYPES = ("signup", "request", "volunteer", "adjustment", "redemption", "entry", "import")
# The rule keys a community can set (points_rule.key); multipliers are "multiplier:<type>".
PER_HOUR_KEYS = ("per_hour:patrol", "per_hour:door_watch", "per_hour:other")
RULE_DEFAULTS: dict[str, Decimal] = {
    "per_hour:patrol": Decimal(10),
    "per_hour:door_watch": Decimal(10),
    "per_hour:other": Decimal(10),
    "party_report": Decimal(20),
    "daily_cap": Decimal(0),  # 0: no cap
}
PERIOD_ALL = "all"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class PointsEntry(db.Model):
    """One ledger row. (person, kind, source) is unique: every award happens once."""

    __tablename__ = "points_ledger"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"))
    kind: Mapped[str] = mapped_column(String(20))
    source_type: Mapped[str] = mapped_column(String(20))
    # NULL for a manual adjustment (many per person); NULLs never collide in the unique key.
    source_id: Mapped[int | None]
    points: Mapped[int]
    hours: Mapped[Decimal] = mapped_column(Numeric(7, 2), default=Decimal(0))
    # Counts towards earned points and leaderboards (earnings, adjustments and their reversals;
    # not redemptions and their refunds).
    ranked: Mapped[bool] = mapped_column(default=True)
    # The local (Asia/Shanghai) day of the activity: months, years and the daily cap use it.
    occurred_on: Mapped[date]
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    person: Mapped[Person] = relationship()  # noqa: F821
    created_by: Mapped[User | None] = relationship()  # noqa: F821

    __table_args__ = (
        UniqueConstraint(
            "person_id", "kind", "source_type", "source_id", name="uq_points_ledger_source"
        ),
        CheckConstraint(_in("kind", ENTRY_KINDS), name="kind"),
        CheckConstraint(_in("source_type", SOURCE_TYPES), name="source_type"),
        Index("ix_points_ledger_person_id_id", "person_id", "id"),
        Index("ix_points_ledger_person_id_occurred_on", "person_id", "occurred_on"),
        Index("ix_points_ledger_community_id_id", "community_id", "id"),
    )


class PointsAccount(db.Model):
    """A person's cached totals; ``balance`` never goes below zero (CHECK, conditional UPDATE)."""

    __tablename__ = "points_account"

    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    balance: Mapped[int] = mapped_column(default=0)
    earned: Mapped[int] = mapped_column(default=0)
    hours: Mapped[Decimal] = mapped_column(Numeric(9, 2), default=Decimal(0))
    # The person agreed to appear (masked) on leaderboards; withdrawing takes effect at once.
    listed: Mapped[bool] = mapped_column(default=False)
    listed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    person: Mapped[Person] = relationship()  # noqa: F821

    __table_args__ = (CheckConstraint("balance >= 0", name="balance_not_negative"),)


class PointsTally(db.Model):
    """Earned (ranked) points, hours and activities of a person for one period:
    ``all``, a year (``2026``) or a month (``2026-11``)."""

    __tablename__ = "points_tally"

    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"))
    subdistrict_id: Mapped[int] = mapped_column(ForeignKey("subdistrict.id"))
    points: Mapped[int] = mapped_column(default=0)
    hours: Mapped[Decimal] = mapped_column(Numeric(9, 2), default=Decimal(0))
    activities: Mapped[int] = mapped_column(default=0)
    # When the total last grew: of two equal totals, who got there first ranks higher.
    last_earned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_points_tally_community_period_points", "community_id", "period", "points"),
        Index("ix_points_tally_subdistrict_period_points", "subdistrict_id", "period", "points"),
    )


class PointsRule(db.Model):
    """A community's rule value: points per hour for a shift kind (the default for new shifts),
    points for a party member's report, the daily cap, or a volunteer type's multiplier.
    A change applies to awards made from then on; ledger rows keep what they were given."""

    __tablename__ = "points_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"))
    key: Mapped[str] = mapped_column(String(40))
    value: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    __table_args__ = (
        UniqueConstraint("community_id", "key"),
        CheckConstraint("value >= 0", name="value_not_negative"),
    )
