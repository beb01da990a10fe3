"""Engine tuning and column types shared by every domain."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import DateTime, event, exc, text
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator

from portal.extensions import db


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Store aware datetimes as UTC; always hand back aware UTC (SQLite returns naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to UTCDateTime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, and explicit BEGIN so that write units can take the lock up front.

    pysqlite's own deferred BEGIN makes a read-then-write transaction fail with "database is
    locked" under load; a connection asked for with execution option ``sqlite_immediate=True``
    begins with BEGIN IMMEDIATE instead.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    queue = _WriterQueue(engine.url.database)

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        if conn.get_execution_options().get("sqlite_immediate"):
            queue.enter(conn.connection.dbapi_connection)
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                queue.leave(conn.connection.dbapi_connection)
                raise
        else:
            conn.exec_driver_sql("BEGIN")

    # End the transaction here, then let the next writer in: SQLAlchemy's own COMMIT or
    # ROLLBACK that follows these events finds no transaction open and does nothing.
    @event.listens_for(engine, "commit")
    def _on_commit(conn):
        dbapi_connection = conn.connection.dbapi_connection
        if queue.holds(dbapi_connection):
            try:
                dbapi_connection.commit()
            finally:
                queue.leave(dbapi_connection)

    @event.listens_for(engine, "rollback")
    def _on_rollback(conn):
        dbapi_connection = conn.connection.dbapi_connection if conn.connection else None
        if dbapi_connection is not None and queue.holds(dbapi_connection):
            try:
                if not dbapi_connection.in_transaction:
                    return
                dbapi_connection.rollback()
            finally:
                queue.leave(dbapi_connection)

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection, _record):
        queue.leave(dbapi_connection)  # a connection never goes back to the pool in the queue

    @event.listens_for(engine, "close")
    def _on_close(dbapi_connection, _record):
        queue.leave(dbapi_connection)


# A pooled connection idle longer than this is checked before use (see ping_after_idle).
PING_AFTER_IDLE_SECONDS = 10.0


def ping_after_idle(engine: Engine, idle_seconds: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Check a pooled connection with a round trip before use only when it sat idle in the pool
    for more than ``idle_seconds``: after a database restart or a dropped link the request
    then gets a fresh connection instead of an error.

    ``pool_pre_ping`` pings on every checkout, a round trip per request (0.5-1 ms on
    PostgreSQL, a quarter of a page served from the page cache); a connection checked in a
    moment ago is very unlikely to have died since. If it has (the server went away while
    the worker was busy), that request fails, and SQLAlchemy then discards every connection
    of the pool opened before the failure, so the next requests reconnect."""

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since <= idle_seconds:
            return  # a new connection, or one in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool closes this connection and checks out another (a new one).
            raise exc.DisconnectionError("the pooled connection no longer answers") from error


class _WriterQueue:
    """Writers of one SQLite file wait their turn for an exclusive ``flock`` of a lock file
    beside it (across threads and gunicorn worker processes) before BEGIN IMMEDIATE, and
    release it right after their COMMIT or ROLLBACK.

    SQLite's own busy handler makes a waiting writer sleep and retry by steps growing to
    100 ms, so under load a write waits long after the lock was freed (p99 of several
    hundred ms). Here a waiting writer tries again every millisecond at most. The wait is bounded
    like SQLite's busy timeout: after ``timeout`` seconds the writer goes on to BEGIN
    IMMEDIATE, where SQLite decides ("database is locked" if the lock is still held).
    """

    def __init__(self, database: str | None, timeout: float = 5.0):
        self.path = None
        if database and database != ":memory:" and not database.startswith("file:"):
            self.path = database + "-writers"
        self.timeout = timeout
        self._held: dict[int, int] = {}  # id(dbapi connection) -> lock file descriptor

    def holds(self, dbapi_connection) -> bool:
        return id(dbapi_connection) in self._held

    def enter(self, dbapi_connection) -> None:
        if self.path is None or id(dbapi_connection) in self._held:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return  # a read-only folder: SQLite's busy handler alone, as before
        deadline = time.monotonic() + self.timeout
        delay = 0.0005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return
                time.sleep(delay)
                delay = min(delay * 2, 0.001)
        self._held[id(dbapi_connection)] = fd

    def leave(self, dbapi_connection) -> None:
        fd = self._held.pop(id(dbapi_connection), None)
        if fd is not None:
            os.close(fd)  # closing the descriptor releases its flock


def commit_keeping_loaded() -> None:
    """Commit without expiring what the session has loaded.

    For a view that renders after its commit from objects its write did not change (the
    signed-in user and their person): after a plain commit each of them is read again, one
    query apiece. Whatever the write changed through Core statements (``update(...)`` with
    ``synchronize_session=False``) is stale in memory: the caller refreshes it.
    """
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True


def begin_write() -> None:
    """Begin the session's unit of work that writes, now (no transaction may be open): on
    SQLite with BEGIN IMMEDIATE, the write lock taken up front; on PostgreSQL the transaction
    begins with its first statement as usual."""
    if db.engine.dialect.name == "sqlite":
        db.session.connection(execution_options={"sqlite_immediate": True})


@contextmanager
def read_outside_transaction() -> Iterator[None]:
    """Run the block's reads as statements of their own (autocommit), ahead of the request's
    transaction, when that saves round trips: on PostgreSQL, in a GET (HEAD, OPTIONS) that
    has begun and added nothing yet. No BEGIN before them and no ROLLBACK after, so a page
    then served from the page cache costs one round trip instead of three. Objects read stay
    loaded; later statements begin a transaction as usual. A GET loses nothing: at READ
    COMMITTED every statement sees the data as of its own start, in a transaction or not.
    Elsewhere (SQLite, writes, a transaction already open) the block runs as it would."""
    from flask import has_request_context, request

    alone = (
        has_request_context()
        and request.method in ("GET", "HEAD", "OPTIONS")
        and db.engine.dialect.name == "postgresql"
    )
    if alone:
        unit = db.session()
        alone = not (unit.in_transaction() or unit.new or unit.dirty or unit.deleted)
    if alone:
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    yield
    if alone:
        commit_keeping_loaded()


def plan_joins_as_written() -> None:
    """PostgreSQL: plan the rest of this transaction's joins in the order they are written.

    A list that eager-loads a row's to-one relations (a help request's category, grid,
    requester, volunteer, building, household and its building) joins eight tables; the
    planner's search over their orders cost 10 ms a query on the city data, against 1 ms for
    the written order, which is already the right plan: the filtered table first, the rest
    looked up by primary key. Call it only before such lists (it lasts to the commit)."""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL join_collapse_limit = 1"))


def dialect_insert():
    """``insert`` of the engine's dialect, which has ``on_conflict_do_nothing`` (PostgreSQL and
    SQLite alike)."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert


def insert_unless_conflict(model, values: dict, conflict: list[str]):
    """``INSERT ... ON CONFLICT (conflict) DO NOTHING RETURNING id`` for one row of ``model``.

    The new row comes back as a persistent object built from ``values`` (not read back from the
    database: a column left out of ``values`` loads when first used), or None when a row with
    the same ``conflict`` columns was already there and nothing was inserted."""
    from sqlalchemy.orm import make_transient_to_detached

    new_id = db.session.scalar(
        dialect_insert()(model)
        .values(**values)
        .on_conflict_do_nothing(index_elements=conflict)
        .returning(model.id)
    )
    if new_id is None:
        return None
    row = model(id=new_id, **values)
    make_transient_to_detached(row)
    db.session.add(row)
    return row
