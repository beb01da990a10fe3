"""Notifications: store one in-app message per user and event, and hand it to the outbound
channel (SMS/WeChat adapter). Services flush, never commit."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import cache
from importlib import import_module
from typing import Any, Protocol

from flask import current_app, has_request_context, url_for
from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from portal.core.timeutil import now_utc, to_local
from portal.database import utcnow
from portal.extensions import db
from portal.notifications.models import Notification

log = logging.getLogger("tongxin.notifications")

DEFAULT_BACKEND = "portal.notifications.services:LogBackend"
# Reminder kinds, nearest window first: a shift inside 2 hours gets only the 2-hour one.
REMINDERS = (
    ("shift_reminder_2h", timedelta(hours=2)),
    ("shift_reminder_24h", timedelta(hours=24)),
)


class MessageBackend(Protocol):
    """Where outbound messages go (an SMS gateway, WeChat template messages...)."""

    def send(self, *, user_id: int, kind: str, params: dict[str, Any], link: str) -> None: ...


class LogBackend:
    """The default backend: writes each outbound message to the log."""

    def send(self, *, user_id: int, kind: str, params: dict[str, Any], link: str) -> None:
        log.info("message to user %s: %s %s %s", user_id, kind, params, link)


def load_backend(spec: str | object) -> MessageBackend:
    """A backend from ``"package.module:Name"`` (or ``package.module.Name``), or ``spec`` itself.

    A class is instantiated without arguments; raises ImportError/AttributeError on a bad path.
    """
    if not isinstance(spec, str):
        return spec() if isinstance(spec, type) else spec
    module_name, _sep, attribute = spec.partition(":") if ":" in spec else spec.rpartition(".")
    target = getattr(import_module(module_name), attribute)
    return target() if isinstance(target, type) else target


def backend() -> MessageBackend:
    """The backend named by ``MESSAGE_BACKEND`` in the config, resolved once per app."""
    spec = current_app.config.get("MESSAGE_BACKEND") or DEFAULT_BACKEND
    cached = current_app.extensions.get("tongxin_message_backend")
    if cached is None or cached[0] != spec:  # a changed setting (tests) is resolved anew
        cached = (spec, load_backend(spec))
        current_app.extensions["tongxin_message_backend"] = cached
    return cached[1]


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
        .returning(Notification.id)
    )
    # A row comes back only when it was inserted (rowcount is -1 here under psycopg).
    created = db.session.execute(statement).first() is not None
    if created:
        backend().send(user_id=user_id, kind=kind, params=values["params"], link=link)
    return created


@cache
def _unread_count_statement() -> Select:
    # Built once (every page asks it for the bell): building costs more than running it.
    return select(func.count(Notification.id)).where(
        Notification.user_id == bindparam("user_id"), Notification.read_at.is_(None)
    )


def unread_count(user_id: int) -> int:
    """How many of the user's notifications are unread (one COUNT query)."""
    return db.session.scalar(_unread_count_statement(), {"user_id": user_id})


def notifications_query(user_id: int) -> Select:
    """The user's notifications, newest first."""
    return (
        select(Notification)
        .where(Notification.user_id == user_id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
    )


def get_own_notification(user_id: int, notification_id: int) -> Notification | None:
    """The notification if it belongs to ``user_id``, else None (the view answers 404)."""
    return db.session.scalar(
        select(Notification).where(
            Notification.id == notification_id, Notification.user_id == user_id
        )
    )


def mark_read(notification: Notification, now: datetime | None = None) -> bool:
    """Mark one notification read; True when this call changed it (read_at is kept once set)."""
    changed = db.session.execute(
        update(Notification)
        .where(Notification.id == notification.id, Notification.read_at.is_(None))
        .values(read_at=now or now_utc())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.expire(notification, ["read_at"])
    return changed == 1


def mark_all_read(user_id: int, now: datetime | None = None) -> int:
    """Mark every unread notification of the user read; returns how many changed."""
    result = db.session.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=now or now_utc())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def local_when(moment: datetime) -> str:
    """The ``when`` parameter of shift notifications: local "YYYY-MM-DD HH:MM"."""
    return to_local(moment).strftime("%Y-%m-%d %H:%M")


def shift_link(shift_id: int) -> str:
    """The shift's path on this site, also outside a request (the cron command)."""
    if has_request_context():
        return url_for("shifts.detail", shift_id=shift_id)
    adapter = current_app.url_map.bind(
        "localhost", script_name=current_app.config.get("APPLICATION_ROOT") or "/"
    )
    return adapter.build("shifts.detail", {"shift_id": shift_id})


def send_reminders(now: datetime | None = None) -> int:
    """Remind confirmed volunteers of shifts starting within 24 hours, and again within 2.

    Each reminder is stored exactly once per person and shift, however often this runs; a
    shift already inside the 2-hour window gets only the 2-hour reminder. Returns how many
    notifications were created.
    """
    from portal.auth.models import User
    from portal.patrols.models import Shift, Signup

    now = now or now_utc()
    rows = db.session.execute(
        select(Shift.id, Shift.title, Shift.starts_at, Shift.community_id, User.id)
        .join(Signup, Signup.shift_id == Shift.id)
        .join(User, User.person_id == Signup.person_id)
        .where(
            Shift.status == "scheduled",
            Shift.starts_at > now,
            Shift.starts_at <= now + REMINDERS[-1][1],
            Signup.status == "confirmed",
            User.active.is_(True),
        )
        .order_by(Shift.starts_at, Shift.id, User.id)
    ).all()
    wanted = []
    for shift_id, title, starts_at, community_id, user_id in rows:
        kind = next(k for k, window in REMINDERS if starts_at - now <= window)
        wanted.append(
            (user_id, f"{kind}:shift:{shift_id}", kind, shift_id, title, starts_at, community_id)
        )
    if not wanted:
        return 0
    # Skip what earlier runs stored, so a run every few minutes writes only what is new.
    done = set(
        db.session.execute(
            select(Notification.user_id, Notification.dedupe_key).where(
                Notification.user_id.in_({w[0] for w in wanted}),
                Notification.dedupe_key.in_({w[1] for w in wanted}),
            )
        ).tuples()
    )
    created = 0
    for user_id, key, kind, shift_id, title, starts_at, community_id in wanted:
        if (user_id, key) in done:
            continue
        created += notify(
            user_id,
            kind,
            dedupe_key=key,
            params={"title": title, "when": local_when(starts_at)},
            link=shift_link(shift_id),
            community_id=community_id,
        )
    return created
