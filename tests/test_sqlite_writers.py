"""SQLite writers queue on a lock file beside the database (portal.database._WriterQueue)."""

from __future__ import annotations

import fcntl
import os
import threading

import pytest
from sqlalchemy import create_engine, text

from portal.database import configure_sqlite


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    configure_sqlite(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE counter (n INTEGER NOT NULL)")
        conn.exec_driver_sql("INSERT INTO counter VALUES (0)")
    yield engine
    engine.dispose()


def _queue_is_held(engine) -> bool:
    fd = os.open(engine.url.database + "-writers", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _writer(engine):
    return engine.connect().execution_options(sqlite_immediate=True)


def test_a_write_holds_the_queue_until_commit(engine):
    with _writer(engine) as conn:
        conn.begin()
        conn.execute(text("UPDATE counter SET n = n + 1"))
        assert _queue_is_held(engine)
        conn.commit()
        assert not _queue_is_held(engine)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT n FROM counter")) == 1


def test_rollback_and_a_dropped_connection_leave_the_queue(engine):
    with _writer(engine) as conn:
        conn.begin()
        conn.execute(text("UPDATE counter SET n = n + 1"))
        conn.rollback()
        assert not _queue_is_held(engine)
        conn.begin()
        conn.execute(text("UPDATE counter SET n = n + 5"))
    # Closed without commit: rolled back, and the queue is free again.
    assert not _queue_is_held(engine)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT n FROM counter")) == 0


def test_reads_do_not_queue(engine):
    with _writer(engine) as writer:
        writer.begin()
        writer.execute(text("UPDATE counter SET n = 7"))
        with engine.connect() as reader:  # WAL: a reader sees the last commit, and never waits
            assert reader.scalar(text("SELECT n FROM counter")) == 0
        writer.commit()


def test_parallel_read_modify_writes_lose_nothing(engine):
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(40):
                with _writer(engine) as conn:
                    conn.begin()
                    n = conn.scalar(text("SELECT n FROM counter"))
                    conn.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
                    conn.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT n FROM counter")) == 160
    assert not _queue_is_held(engine)


def test_a_stuck_holder_only_delays_until_the_timeout(engine, monkeypatch):
    """Someone holds the lock file and never lets go (not a database lock): after the wait the
    writer goes on, and SQLite itself decides."""
    from portal import database

    monkeypatch.setattr(database._WriterQueue.__init__, "__defaults__", (0.2,))
    stuck = create_engine(engine.url)
    configure_sqlite(stuck)
    fd = os.open(engine.url.database + "-writers", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with _writer(stuck) as conn:
            conn.begin()
            conn.execute(text("UPDATE counter SET n = 3"))
            conn.commit()
    finally:
        os.close(fd)
        stuck.dispose()
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT n FROM counter")) == 3
