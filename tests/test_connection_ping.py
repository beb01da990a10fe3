"""Pooled connections are checked before use only after sitting idle (database.ping_after_idle)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import QueuePool

from portal import create_app
from portal.database import PING_AFTER_IDLE_SECONDS, ping_after_idle
from portal.extensions import db


@pytest.fixture
def engine(database_url):
    # One pooled connection, so that every checkout gets the same one back.
    engine = create_engine(database_url, poolclass=QueuePool, pool_size=1, max_overflow=0)
    ping_after_idle(engine, idle_seconds=10)
    yield engine
    engine.dispose()


@pytest.fixture
def pings(engine, monkeypatch):
    calls: list[object] = []
    real = engine.dialect.do_ping

    def counted(dbapi_connection):
        calls.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return calls


def _use(engine) -> tuple[int, dict]:
    """Check out, run a statement, check in: the connection's id and its pool record's info."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        return id(conn.connection.dbapi_connection), conn.connection.info


def test_a_connection_used_a_moment_ago_is_not_pinged(engine, pings):
    first, _ = _use(engine)
    again, _ = _use(engine)
    assert again == first  # the pooled one
    assert pings == []


def test_a_connection_idle_too_long_is_pinged_and_kept_when_it_answers(engine, pings):
    first, info = _use(engine)
    info["idle_since"] -= 11  # as if checked in 11 s ago
    again, _ = _use(engine)
    assert len(pings) == 1
    assert again == first


def test_the_app_replaces_an_idle_connection_whose_server_went_away(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("a server process to end: PostgreSQL only (SQLite has no server)")
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        assert "pool_pre_ping" not in app.config["SQLALCHEMY_ENGINE_OPTIONS"]
        with db.engine.connect() as conn:  # the pool's one connection so far
            dead_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            info = conn.connection.info
        killer = create_engine(database_url)
        try:
            with killer.begin() as conn:
                ended = conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": dead_pid})
                assert ended.scalar_one() is True
        finally:
            killer.dispose()
        info["idle_since"] -= PING_AFTER_IDLE_SECONDS + 1
        # The next unit of work checks it out, finds it dead and gets a new one: no error.
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert pid != dead_pid
        db.session.remove()
        db.engine.dispose()
