"""The rewards shop (积分超市): rewards a community offers for points, and redemptions."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.database import UTCDateTime, utcnow
from portal.extensions import db

REDEMPTION_STATUSES = ("issued", "handed_over", "cancelled")


class Reward(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(String(500), default="")
    # A stored photo name (portal.core.photos), never the uploaded file's own name.
    photo: Mapped[str | None] = mapped_column(String(60))
    cost: Mapped[int]
    # Units left; decreased by a conditional UPDATE (stock > 0) in the redeeming transaction.
    stock: Mapped[int]
    per_person_limit: Mapped[int | None]
    available_from: Mapped[date | None]
    available_until: Mapped[date | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    __table_args__ = (
        CheckConstraint("cost > 0", name="cost_positive"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("per_person_limit IS NULL OR per_person_limit > 0", name="limit_positive"),
    )


class Redemption(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"))
    reward_id: Mapped[int] = mapped_column(ForeignKey("reward.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    cost: Mapped[int]
    voucher_code: Mapped[str] = mapped_column(String(12), unique=True)
    status: Mapped[str] = mapped_column(String(12), default="issued")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    handed_over_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handed_over_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    cancel_reason: Mapped[str] = mapped_column(String(200), default="")

    reward: Mapped[Reward] = relationship()
    person: Mapped[Person] = relationship()  # noqa: F821

    __table_args__ = (
        CheckConstraint("status IN ('issued', 'handed_over', 'cancelled')", name="status"),
        CheckConstraint("cost > 0", name="cost_positive"),
        Index("ix_redemption_reward_id_person_id", "reward_id", "person_id"),
        Index("ix_redemption_person_id_id", "person_id", "id"),
        Index("ix_redemption_community_id_id", "community_id", "id"),
    )
