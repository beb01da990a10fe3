"""Care households, regular help tasks and their visits.

A help task's occurrences are ordinary shifts (kind ``help_visit``, ``Shift.help_task_id`` set),
made one by one or by a weekly series, so sign-up, capacity, waitlist, overlap, check-in,
reminders, calendar feeds and hours are the shifts' own. What is added here: the household's
enrolment (its consent, its door code for check-in, its wish about who visits), the task's private
notes, a volunteer's standing place on every occurrence of a task, and one visit row per
occurrence (done, confirmed and rated by the household, or flagged as missed).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.database import UTCDateTime, utcnow
from portal.extensions import db

VOLUNTEER_SEXES = ("female", "male")
TASK_STATUSES = ("active", "ended")
VISIT_STATUSES = ("done", "problem", "missed")

help_task_household = Table(
    "help_task_household",
    db.metadata,
    Column("task_id", ForeignKey("help_task.id", ondelete="CASCADE"), primary_key=True),
    Column("household_id", ForeignKey("household.id"), primary_key=True, index=True),
)


class CareHousehold(db.Model):
    """A household enrolled for regular help: who consented, its door code, its wishes."""

    __tablename__ = "care_household"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), unique=True)
    # The resident whose regular_help consent (a Consent row) the enrolment rests on.
    consent_person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    # Printed on the QR card at the door: the volunteer checks in with it.
    door_code: Mapped[str] = mapped_column(String(12), unique=True)
    # "Only women volunteers", set by the secretary at the household's wish; NULL: anyone.
    volunteer_sex: Mapped[str | None] = mapped_column(String(6))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    household: Mapped[Household] = relationship()  # noqa: F821
    consent_person: Mapped[Person] = relationship()  # noqa: F821

    __table_args__ = (
        CheckConstraint(
            "volunteer_sex IS NULL OR volunteer_sex IN ('female', 'male')", name="volunteer_sex"
        ),
    )


class HelpTask(db.Model):
    """Regular help for one household or a few in one building: one date or a weekly series
    (its ShiftSeries names the task by ``help_task_id``)."""

    __tablename__ = "help_task"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id"), index=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id"))
    category_id: Mapped[int] = mapped_column(ForeignKey("category.id"))
    title: Mapped[str] = mapped_column(String(100))
    # Shown only to volunteers holding a place on an occurrence, and to staff.
    private_notes: Mapped[str] = mapped_column(Text, default="")
    volunteer_sex: Mapped[str | None] = mapped_column(String(6))
    # A skill the volunteer's registration must name (e.g. 驾驶, 护理); empty: none needed.
    required_skill: Mapped[str] = mapped_column(String(40), default="")
    status: Mapped[str] = mapped_column(String(10), default="active")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    category: Mapped[Category] = relationship()  # noqa: F821
    building: Mapped[Building] = relationship()  # noqa: F821
    grid: Mapped[Grid] = relationship()  # noqa: F821
    households: Mapped[list[Household]] = relationship(  # noqa: F821
        secondary=help_task_household, order_by="Household.room"
    )

    __table_args__ = (
        CheckConstraint("status IN ('active', 'ended')", name="status"),
        CheckConstraint(
            "volunteer_sex IS NULL OR volunteer_sex IN ('female', 'male')", name="volunteer_sex"
        ),
    )


class TaskCommitment(db.Model):
    """A volunteer's standing place on every occurrence of a task (the whole series)."""

    __tablename__ = "help_task_volunteer"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("help_task.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("task_id", "person_id"),)


class HelpVisit(db.Model):
    """What happened at one occurrence: done (or something wrong), confirmed, rated; or missed."""

    __tablename__ = "help_visit"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("help_task.id", ondelete="CASCADE"))
    shift_id: Mapped[int] = mapped_column(ForeignKey("shift.id", ondelete="CASCADE"), unique=True)
    status: Mapped[str] = mapped_column(String(10))
    note: Mapped[str] = mapped_column(String(500), default="")
    reported_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "Something is wrong": the request opened to the grid worker.
    request_id: Mapped[int | None] = mapped_column(ForeignKey("help_request.id"))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    rating: Mapped[int | None]
    rating_comment: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    shift: Mapped[Shift] = relationship()  # noqa: F821

    __table_args__ = (
        CheckConstraint("status IN ('done', 'problem', 'missed')", name="status"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating"),
        Index("ix_help_visit_task_id_created_at", "task_id", "created_at"),
    )
