"""Helpers for the notifications tests: shifts with sign-ups, notifications, counting queries."""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from portal.extensions import db
from portal.notifications.models import Notification
from portal.patrols.models import Shift, Signup

HX = {"HX-Request": "true"}
# A fixed "now" for the reminder tests: 2026-12-01 10:00 in Shanghai.
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
_seq = itertools.count(1)


@pytest.fixture
def english(client):
    """Show English messages (the default is Chinese)."""
    response = client.post("/language", data={"lang": "en"})
    assert response.status_code == 303


def make_shift(side, starts_at: datetime, **kw) -> Shift:
    """A scheduled patrol in ``side``'s first grid (world.a / world.b), two hours long."""
    shift = Shift(
        community_id=side.community.id,
        grid_id=side.grid.id,
        kind=kw.pop("kind", "patrol"),
        title=kw.pop("title", f"夜间巡逻{next(_seq)}"),
        starts_at=starts_at,
        ends_at=kw.pop("ends_at", starts_at + timedelta(hours=2)),
        capacity=kw.pop("capacity", 5),
        minimum=kw.pop("minimum", 1),
        checkin_code=kw.pop("checkin_code", f"C{next(_seq):05d}"),
        **kw,
    )
    db.session.add(shift)
    db.session.commit()
    return shift


def sign_up(shift: Shift, person, status: str = "confirmed", **kw) -> Signup:
    """A sign-up row; a confirmed one also takes a place (as the sign-up service does)."""
    signup = Signup(
        community_id=shift.community_id,
        shift_id=shift.id,
        person_id=person.id,
        status=status,
        **kw,
    )
    if status == "confirmed":
        shift.taken += 1
    db.session.add(signup)
    db.session.commit()
    return signup


def make_notification(user, kind: str = "shift_cancelled", **kw) -> Notification:
    notification = Notification(
        user_id=user.id,
        community_id=user.community_id,
        kind=kind,
        params=kw.pop("params", {"title": "夜间巡逻", "when": "2026-12-01 19:00"}),
        link=kw.pop("link", "/shifts/1"),
        dedupe_key=kw.pop("dedupe_key", f"test:{next(_seq)}"),
        **kw,
    )
    db.session.add(notification)
    db.session.commit()
    return notification


def notifications_of(user) -> list[Notification]:
    db.session.commit()  # ends the read snapshot: see what the request or service wrote
    return list(
        db.session.scalars(
            select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)
        )
    )


def notification_count() -> int:
    db.session.commit()
    return db.session.scalar(select(func.count(Notification.id)))


@contextmanager
def count_queries():
    """Collect the SQL statements sent while the block runs."""
    statements: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
