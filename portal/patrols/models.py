"""Patrols and duties: shifts (one-off or from a weekly series), sign-ups with a waitlist,
attendance and hours, door-watch visits, and the patrol report with its hazards.

Times are stored in UTC (UTCDateTime) and shown in Asia/Shanghai.
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.database import UTCDateTime, utcnow
from portal.extensions import db

SHIFT_KINDS = ("patrol", "door_watch", "other")  # what the scheduling forms offer
# Every kind a shift may have: "help_visit" occurrences belong to a household help task
# (portal.care) and are made only through it.
ALL_SHIFT_KINDS = (*SHIFT_KINDS, "help_visit")
KIND_CHECK = "kind IN ('patrol', 'door_watch', 'other', 'help_visit')"
SHIFT_STATUSES = ("scheduled", "cancelled")
SIGNUP_STATUSES = ("confirmed", "waitlisted", "cancelled")
ATTENDANCE = ("present", "no_show")
VISIT_OUTCOMES = ("ok", "needs_help", "not_home")


class ShiftSeries(db.Model):
    """A weekly rule (RFC 5545 RRULE) that generates shifts up to a horizon."""

    __tablename__ = "shift_series"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(100))
    meeting_point: Mapped[str] = mapped_column(String(200), default="")
    # Ordered stops: [{"building_id": 3, "label": ""}, {"building_id": null, "label": "东门"}]
    route: Mapped[list] = mapped_column(JSON, default=list)
    rrule: Mapped[str] = mapped_column(String(200))
    starts_on: Mapped[date]
    ends_on: Mapped[date]
    start_time: Mapped[time]  # local (Asia/Shanghai) wall-clock time
    duration_minutes: Mapped[int]
    capacity: Mapped[int]
    minimum: Mapped[int] = mapped_column(default=1)
    allowed_types: Mapped[str] = mapped_column(String(120), default="")  # comma-separated
    leader_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    notes: Mapped[str] = mapped_column(Text, default="")
    points_per_hour: Mapped[int] = mapped_column(default=0)
    generated_until: Mapped[date | None]
    # Set for the series of a household help task (portal.care).
    help_task_id: Mapped[int | None] = mapped_column(ForeignKey("help_task.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint(KIND_CHECK, name="kind"),
        CheckConstraint("capacity >= 1 AND minimum >= 0 AND minimum <= capacity", name="capacity"),
        CheckConstraint("ends_on >= starts_on", name="dates"),
        CheckConstraint("duration_minutes > 0", name="duration"),
    )


class Shift(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id"), index=True)
    series_id: Mapped[int | None] = mapped_column(
        ForeignKey("shift_series.id", ondelete="SET NULL"), index=True
    )
    # The local date this occurrence stands for in its series (unique per series).
    occurrence_date: Mapped[date | None]
    # Edited on its own: later changes to the series leave it alone.
    detached: Mapped[bool] = mapped_column(default=False)
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(100))
    meeting_point: Mapped[str] = mapped_column(String(200), default="")
    route: Mapped[list] = mapped_column(JSON, default=list)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    capacity: Mapped[int]
    minimum: Mapped[int] = mapped_column(default=1)
    # Confirmed places held; moved only by conditional UPDATEs, never by read-then-write.
    taken: Mapped[int] = mapped_column(default=0)
    allowed_types: Mapped[str] = mapped_column(String(120), default="")  # empty: everyone
    leader_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    notes: Mapped[str] = mapped_column(Text, default="")
    points_per_hour: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(10), default="scheduled")
    cancel_reason: Mapped[str] = mapped_column(String(200), default="")
    checkin_code: Mapped[str] = mapped_column(String(12))
    # Set for an occurrence of a household help task (portal.care).
    help_task_id: Mapped[int | None] = mapped_column(ForeignKey("help_task.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    grid: Mapped[Grid] = relationship()  # noqa: F821
    series: Mapped[ShiftSeries | None] = relationship()
    leader: Mapped[Person | None] = relationship()  # noqa: F821

    __table_args__ = (
        UniqueConstraint("series_id", "occurrence_date"),
        CheckConstraint(KIND_CHECK, name="kind"),
        CheckConstraint("status IN ('scheduled', 'cancelled')", name="status"),
        CheckConstraint("capacity >= 1 AND minimum >= 0 AND minimum <= capacity", name="capacity"),
        CheckConstraint("taken >= 0 AND taken <= capacity", name="taken"),
        CheckConstraint("ends_at > starts_at", name="times"),
        Index("ix_shift_community_id_starts_at", "community_id", "starts_at"),
        Index("ix_shift_grid_id_starts_at", "grid_id", "starts_at"),
    )

    @property
    def types(self) -> list[str]:
        return [t for t in self.allowed_types.split(",") if t]


class Signup(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("shift.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    status: Mapped[str] = mapped_column(String(12))
    # When the person joined the waitlist (first come, first promoted).
    waitlisted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attendance: Mapped[str | None] = mapped_column(String(10))
    attendance_marked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    # Verified hours, written once (conditional UPDATE ... WHERE hours_recorded_at IS NULL).
    hours: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    hours_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    shift: Mapped[Shift] = relationship()
    person: Mapped[Person] = relationship()  # noqa: F821

    __table_args__ = (
        UniqueConstraint("shift_id", "person_id"),
        CheckConstraint("status IN ('confirmed', 'waitlisted', 'cancelled')", name="status"),
        CheckConstraint(
            "attendance IS NULL OR attendance IN ('present', 'no_show')", name="attendance"
        ),
        CheckConstraint("hours IS NULL OR hours >= 0", name="hours"),
        Index("ix_signup_person_id_status", "person_id", "status"),
    )


class DoorVisit(db.Model):
    """A door-watch call on a care household during a shift (挨户防)."""

    __tablename__ = "door_visit"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("shift.id", ondelete="CASCADE"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(12))
    note: Mapped[str] = mapped_column(String(500), default="")
    visited_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    visited_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when "needs help" opened a request (the help-request issue links it).
    request_id: Mapped[int | None]

    household: Mapped[Household] = relationship()  # noqa: F821

    __table_args__ = (
        UniqueConstraint("shift_id", "household_id"),
        CheckConstraint("outcome IN ('ok', 'needs_help', 'not_home')", name="outcome"),
    )


class PatrolReport(db.Model):
    __tablename__ = "patrol_report"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("shift.id", ondelete="CASCADE"), unique=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    filed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    hazards: Mapped[list[Hazard]] = relationship(
        back_populates="report", order_by="Hazard.id", cascade="all, delete-orphan"
    )


class Hazard(db.Model):
    """Something a patrol saw that needs fixing (隐患); may later become a request."""

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    report_id: Mapped[int] = mapped_column(
        ForeignKey("patrol_report.id", ondelete="CASCADE"), index=True
    )
    description: Mapped[str] = mapped_column(String(500))
    location: Mapped[str] = mapped_column(String(200), default="")
    photo: Mapped[str | None] = mapped_column(String(80))  # generated file name under uploads/
    request_id: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    report: Mapped[PatrolReport] = relationship(back_populates="hazards")
