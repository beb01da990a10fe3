"""Attempt counters that hold across gunicorn workers and parallel requests.

An attempt is counted *before* the password is checked, by one atomic upsert whose answer decides
(``INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE <allowed> RETURNING attempts``). On
PostgreSQL the statement takes the key's row lock and keeps it to the end of the transaction: a
parallel attempt on the same key waits, then counts on the committed row (under READ COMMITTED
the conflicting row is re-read after the wait, unlike a ``SELECT count(*)`` followed by an
``INSERT``, which lets every parallel transaction see the same count). On SQLite a POST holds the
write lock from its first statement (database.py), which serialises them anyway.

Times are Unix seconds from ``now_seconds()``; tests pin and advance it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import case, delete, select, update

from portal.auth.models import Throttle
from portal.database import dialect_insert
from portal.extensions import db


def now_seconds() -> int:
    return int(time.time())


def count_attempt(
    key: str,
    *,
    window: int,
    limit: int | None = None,
    delay: Callable[[int], int] | None = None,
) -> int | None:
    """Count one attempt under ``key``: the new number of attempts, or None (nothing counted)
    when refused: ``limit`` attempts already counted, or the wait set by ``delay`` not over.

    Counting starts again after ``window`` seconds without a counted attempt. ``delay(n)`` is
    the number of seconds the attempt after the ``n``-th must wait."""
    now = now_seconds()
    table = Throttle.__table__
    expired = table.c.last_at <= now - window
    allowed = table.c.not_before <= now
    if limit is not None:
        allowed = allowed & (table.c.attempts < limit)
    statement = (
        dialect_insert()(table)
        .values(key=key, attempts=1, last_at=now, not_before=0)
        .on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "attempts": case((expired, 1), else_=table.c.attempts + 1),
                "not_before": case((expired, 0), else_=table.c.not_before),
                "last_at": now,
            },
            where=expired | allowed,
        )
        .returning(table.c.attempts)
    )
    attempts = db.session.execute(statement).scalar()
    if attempts is None:
        return None
    wait = delay(attempts) if delay is not None else 0
    if wait > 0:
        # The row is ours (locked) until the transaction ends: no one reads the value between.
        db.session.execute(
            update(Throttle).where(Throttle.key == key).values(not_before=now + wait)
        )
    return attempts


def lock_ends_in(key: str, window: int) -> int:
    """Seconds until a key refused for reaching its limit counts again (at least 1)."""
    last_at = db.session.scalar(select(Throttle.last_at).where(Throttle.key == key))
    if last_at is None:
        return 1
    return max(1, last_at + window - now_seconds())


def wait_ends_in(key: str) -> int:
    """Seconds until a key refused for its growing delay counts again (at least 1)."""
    not_before = db.session.scalar(select(Throttle.not_before).where(Throttle.key == key))
    return max(1, (not_before or 0) - now_seconds())


def forget(*keys: str) -> None:
    """Drop the counters of ``keys`` (a successful sign-in)."""
    db.session.execute(delete(Throttle).where(Throttle.key.in_(keys)))


def uncount(key: str) -> None:
    """Take one attempt back from ``key`` (never below zero)."""
    db.session.execute(
        update(Throttle)
        .where(Throttle.key == key, Throttle.attempts > 0)
        .values(attempts=Throttle.attempts - 1)
    )


def purge(older_than: int) -> None:
    """Drop counters with no attempt for ``older_than`` seconds: they would start again anyway."""
    # Rows another attempt holds are skipped (PostgreSQL; on SQLite no one else holds any):
    # waiting for them here, while holding this attempt's own rows, could deadlock.
    stale = (
        select(Throttle.key)
        .where(Throttle.last_at < now_seconds() - older_than)
        .with_for_update(skip_locked=True)
    )
    db.session.execute(delete(Throttle).where(Throttle.key.in_(stale)))
