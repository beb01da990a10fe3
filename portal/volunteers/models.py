"""Volunteers: a person's registration, its types, and the secretary's decision on it."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.database import UTCDateTime, utcnow
from portal.extensions import db

VOLUNTEER_TYPES = ("red_armband", "party_member", "five_elders", "building_captain", "mediator")
FIVE_ELDER_KINDS = ("retired_cadre", "veteran", "expert", "teacher", "model_worker")
STATUSES = ("pending", "approved", "rejected")


class Volunteer(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), unique=True)
    # The grid the volunteer serves in; for a party member this is the grid they report to.
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grid.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    skills: Mapped[str] = mapped_column(String(200), default="")
    availability: Mapped[str] = mapped_column(String(200), default="")
    armband_no: Mapped[str | None] = mapped_column(String(20), unique=True)
    employer: Mapped[str] = mapped_column(String(100), default="")
    party_branch: Mapped[str] = mapped_column(String(100), default="")
    party_reported_on: Mapped[date | None]
    five_elder_kind: Mapped[str | None] = mapped_column(String(20))
    rejection_reason: Mapped[str] = mapped_column(Text, default="")
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    person: Mapped[Person] = relationship(back_populates="volunteer")  # noqa: F821
    grid: Mapped[Grid | None] = relationship()  # noqa: F821
    decided_by: Mapped[User | None] = relationship()  # noqa: F821
    type_links: Mapped[list[VolunteerType]] = relationship(
        back_populates="volunteer", cascade="all, delete-orphan", order_by="VolunteerType.type"
    )

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status"),
        CheckConstraint(
            "five_elder_kind IS NULL OR five_elder_kind IN"
            " ('retired_cadre', 'veteran', 'expert', 'teacher', 'model_worker')",
            name="five_elder_kind",
        ),
    )

    @property
    def types(self) -> list[str]:
        return [link.type for link in self.type_links]


class VolunteerType(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(
        ForeignKey("volunteer.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(20), index=True)

    volunteer: Mapped[Volunteer] = relationship(back_populates="type_links")
    __table_args__ = (
        UniqueConstraint("volunteer_id", "type"),
        CheckConstraint(
            "type IN ('red_armband', 'party_member', 'five_elders',"
            " 'building_captain', 'mediator')",
            name="type",
        ),
    )
