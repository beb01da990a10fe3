"""Neighbour help and residents' requests (家家帮 / 民意快递).

The category catalogue, requests and their closed loop (submitted → accepted → dispatched → done →
verified → rated), the timeline, photos, and the API keys of Open311 clients.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.database import UTCDateTime, utcnow
from portal.extensions import db

CATEGORY_KINDS = ("neighbour_help", "report")
HANDLERS = ("grid_worker", "volunteer_pool", "property_company", "community_office")
URGENCIES = ("normal", "urgent")
# The loop, in order; "cancelled" and "rejected" end it early.
STATUSES = (
    "submitted",
    "accepted",
    "dispatched",
    "done",
    "verified",
    "rated",
    "rejected",
    "cancelled",
)
OPEN_STATUSES = ("submitted", "accepted", "dispatched", "done")


class Category(db.Model):
    """A major (parent_id NULL) or minor category of a community's catalogue."""

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("category.id"), index=True)
    # Stable code shared by every community's copy, e.g. "help.shopping" (Open311 service_code).
    code: Mapped[str] = mapped_column(String(40))
    name_zh: Mapped[str] = mapped_column(String(60))
    name_en: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(String(300), default="")
    kind: Mapped[str] = mapped_column(String(20), default="report")
    handler: Mapped[str | None] = mapped_column(String(20))  # minor categories only
    time_limit_hours: Mapped[int | None]
    points: Mapped[int] = mapped_column(default=0)
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    # Its requests may appear in Open311's public answers (public-space problems only; never
    # neighbour help, care, health, family or disputes: see catalogue.may_be_public).
    public: Mapped[bool] = mapped_column(default=False, server_default=false())

    parent: Mapped[Category | None] = relationship(remote_side=[id])

    __table_args__ = (
        UniqueConstraint("community_id", "code"),
        CheckConstraint("kind IN ('neighbour_help', 'report')", name="kind"),
        CheckConstraint(
            "handler IS NULL OR handler IN"
            " ('grid_worker', 'volunteer_pool', 'property_company', 'community_office')",
            name="handler",
        ),
        CheckConstraint(
            "time_limit_hours IS NULL OR time_limit_hours BETWEEN 1 AND 8760", name="time_limit"
        ),
    )


class HelpRequest(db.Model):
    __tablename__ = "help_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grid.id"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("category.id"), index=True)
    requester_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    description: Mapped[str] = mapped_column(Text)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("building.id"))
    address: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[Decimal | None] = mapped_column(Numeric(9, 6))
    long: Mapped[Decimal | None] = mapped_column(Numeric(9, 6))
    preferred_time: Mapped[str] = mapped_column(String(100), default="")
    urgency: Mapped[str] = mapped_column(String(10), default="normal")
    # The requester ticked "may be shown publicly": Open311's public answers may show the
    # description (of a public category's request only).
    show_publicly: Mapped[bool] = mapped_column(default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(12), default="submitted")
    # Who holds it now: the grid worker who accepted it, then the volunteer or the unit.
    handler_user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    handling_unit: Mapped[str | None] = mapped_column(String(20))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    escalation_level: Mapped[int] = mapped_column(default=0)
    source: Mapped[str] = mapped_column(String(20), default="web")
    # Open311 clients follow a request they posted with this token (tokens/<token>).
    token: Mapped[str | None] = mapped_column(String(40), unique=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_key.id"))
    reject_reason: Mapped[str] = mapped_column(String(500), default="")
    done_note: Mapped[str] = mapped_column(String(1000), default="")
    rating: Mapped[int | None]
    rating_comment: Mapped[str] = mapped_column(String(500), default="")
    hours: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    hours_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    category: Mapped[Category] = relationship()
    requester: Mapped[Person | None] = relationship(foreign_keys=[requester_id])  # noqa: F821
    volunteer: Mapped[Person | None] = relationship(foreign_keys=[volunteer_id])  # noqa: F821
    handler_user: Mapped[User | None] = relationship(foreign_keys=[handler_user_id])  # noqa: F821
    household: Mapped[Household | None] = relationship()  # noqa: F821
    building: Mapped[Building | None] = relationship()  # noqa: F821
    grid: Mapped[Grid | None] = relationship()  # noqa: F821

    __table_args__ = (
        CheckConstraint(
            "status IN ('submitted', 'accepted', 'dispatched', 'done', 'verified', 'rated',"
            " 'rejected', 'cancelled')",
            name="status",
        ),
        CheckConstraint("urgency IN ('normal', 'urgent')", name="urgency"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating"),
        CheckConstraint("escalation_level BETWEEN 0 AND 2", name="escalation"),
        Index("ix_help_request_community_id_status", "community_id", "status"),
        Index("ix_help_request_grid_id_status", "grid_id", "status"),
    )


class RequestEvent(db.Model):
    """One line of a request's timeline: who did what, when."""

    __tablename__ = "request_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("help_request.id", ondelete="CASCADE"), index=True
    )
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str | None] = mapped_column(String(12))
    note: Mapped[str] = mapped_column(String(1000), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor: Mapped[User | None] = relationship()  # noqa: F821


class RequestPhoto(db.Model):
    __tablename__ = "request_photo"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("help_request.id", ondelete="CASCADE"), index=True
    )
    file: Mapped[str] = mapped_column(String(80))
    stage: Mapped[str] = mapped_column(String(10), default="submit")  # submit | done
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(db.Model):
    """An Open311 client application's key, scoped to one community; only a hash is kept."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    prefix: Mapped[str] = mapped_column(String(8))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
