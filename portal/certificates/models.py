"""Hours certificates (志愿服务时长证明): what was certified is kept, so the public verification
page at /certificates/<number> can state it and the PDF can be produced again identically."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.database import UTCDateTime, utcnow
from portal.extensions import db


class Certificate(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    # Random, not sequential: a number cannot be guessed from another.
    number: Mapped[str] = mapped_column(String(24), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"))
    holder_name: Mapped[str] = mapped_column(String(40))
    # Only the masked form is kept (e.g. 110105********123X); empty when none was given.
    id_number_masked: Mapped[str] = mapped_column(String(18), default="")
    community_name: Mapped[str] = mapped_column(String(100))
    period_start: Mapped[date]
    period_end: Mapped[date]
    total_hours: Mapped[Decimal] = mapped_column(Numeric(9, 2))
    activity_count: Mapped[int]
    # [{"date": "2026-11-02", "kind": "patrol", "title": "...", "hours": "2.50"}, ...]
    activities: Mapped[list] = mapped_column(JSON, default=list)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    person: Mapped[Person] = relationship()  # noqa: F821

    __table_args__ = (
        CheckConstraint("total_hours > 0", name="hours_positive"),
        CheckConstraint("period_start <= period_end", name="period_order"),
        Index("ix_certificate_person_id_id", "person_id", "id"),
    )
