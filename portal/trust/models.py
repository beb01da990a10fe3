"""Audit log, consent records and idempotency keys.

The audit log is append-only: rows are inserted and never updated or deleted (the service has
no update path and a test proves it). Times are UTC; details never hold a secret or a full
personal number (phones and ID numbers go through portal.core.validators' masking first).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.database import UTCDateTime, utcnow
from portal.extensions import db

# What an audit row records (labels in portal/core/labels.py "audit_action").
AUDIT_ACTIONS = (
    "sign_in",
    "sign_in_failed",
    "sign_out",
    "password_changed",
    "permission_refused",
    "reveal",
    "export",
    "role_changed",
    "account_disabled",
    "account_enabled",
    "account_verified",
    "approval",
    "rejection",
    "consent_given",
    "consent_withdrawn",
    "data_download",
    "erasure",
)
AUDIT_OUTCOMES = ("ok", "refused", "failed")


class AuditEntry(db.Model):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_community_created", "community_id", "created_at"),
        Index("ix_audit_log_actor_created", "actor_user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # No foreign keys: the log outlives the rows it names (an erased person, a removed account).
    actor_user_id: Mapped[int | None]
    # The username, or the account name tried in a failed sign-in.
    actor_name: Mapped[str] = mapped_column(String(40), default="")
    community_id: Mapped[int | None]
    address: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(30))
    outcome: Mapped[str] = mapped_column(String(10), default="ok")
    target_type: Mapped[str | None] = mapped_column(String(30))
    target_id: Mapped[int | None]
    detail: Mapped[str] = mapped_column(String(200), default="")


# Purposes a person consents to (labels in portal/core/labels.py "consent_purpose").
CONSENT_PURPOSES = ("care_flags", "health_notes", "checkin_location", "leaderboard", "regular_help")


class Consent(db.Model):
    """One consent given for one purpose under one notice version; withdrawing sets
    ``withdrawn_at`` (a later consent is a new row, so the history stays)."""

    __tablename__ = "consent"
    __table_args__ = (Index("ix_consent_person_purpose", "person_id", "purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(30))
    notice_version: Mapped[str] = mapped_column(String(20))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Who recorded it: the person themselves, a guardian, or staff on their behalf (paper form).
    recorded_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotencyKey(db.Model):
    """A client's ``Idempotency-Key`` for one write: inserted in the same transaction as the
    write, so a retry after a lost answer finds it and gets the first answer, not a second write."""

    __tablename__ = "idempotency_key"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_user_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(200))
    status_code: Mapped[int | None]
    location: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
