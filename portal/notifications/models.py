"""In-app notifications (the bell); each is stored once per user and dedupe key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.database import UTCDateTime, utcnow
from portal.extensions import db


class Notification(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("community.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    # What happened, e.g. "shift_reminder_24h"; the text is rendered in the reader's language.
    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    # Where the notification leads (a path on this site), e.g. "/shifts/12".
    link: Mapped[str] = mapped_column(String(200), default="")
    # Makes "exactly once" a database rule: e.g. "reminder_24h:shift:12".
    dedupe_key: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("user_id", "dedupe_key"),
        Index("ix_notification_user_id_read_at", "user_id", "read_at"),
    )
