"""Notifications: store one in-app message per user and event, and hand it to the outbound
channel (SMS/WeChat adapter). Services flush, never commit."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from portal.database import utcnow
from portal.extensions import db
from portal.notifications.models import Notification

log = logging.getLogger("tongxin.notifications")


class MessageBackend(Protocol):
    """Where outbound messages go (an SMS gateway, WeChat template messages...)."""

    def send(self, *, user_id: int, kind: str, params: dict[str, Any], link: str) -> None: ...


class LogBackend:
    """The default backend: writes each outbound message to the log."""

    def send(self, *, user_id: int, kind: str, params: dict[str, Any], link: str) -> None:
        log.info("message to user %s: %s %s %s", user_id, kind, params, link)


def backend() -> MessageBackend:
    """The configured backend (app.config["MESSAGE_BACKEND"], an object with send())."""
    return current_app.config.get("MESSAGE_BACKEND") or LogBackend()


def notify(
    user_id: int,
    kind: str,
    *,
    dedupe_key: str,
    params: dict[str, Any] | None = None,
    link: str = "",
    community_id: int | None = None,
) -> bool:
    """Store a notification once per (user, dedupe_key); True when it is new.

    A repeated call (a cron job run twice, a retried request) stores and sends nothing.
    """
    values = {
        "user_id": user_id,
        "kind": kind,
        "params": params or {},
        "link": link,
        "dedupe_key": dedupe_key,
        "community_id": community_id,
        "created_at": utcnow(),
    }
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(Notification)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["user_id", "dedupe_key"])
    )
    created = db.session.execute(statement).rowcount == 1
    if created:
        backend().send(user_id=user_id, kind=kind, params=values["params"], link=link)
    return created


def unread_count(user_id: int) -> int:
    return db.session.scalar(
        select(func.count(Notification.id)).where(
            Notification.user_id == user_id, Notification.read_at.is_(None)
        )
    )
