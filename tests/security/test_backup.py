"""`flask backup` while the portal writes, `flask restore` into a fresh database: the copy is
intact, shows one instant (every ledger sum equals its account's balance, the writer's rows
form an unbroken prefix), and stands at the code's migration head. On SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from portal import create_app
from portal.extensions import db
from portal.points import ledger
from portal.trust.backup import BackupError, code_heads, inspect_backup, restore

WRITER_PREFIX = "backup-writer-"


class Writer(threading.Thread):
    """Adjusts points one committed transaction at a time until told to stop."""

    def __init__(self, app, person_ids: list[int], actor_id: int):
        super().__init__(daemon=True)
        self.app, self.person_ids, self.actor_id = app, person_ids, actor_id
        self.stop = threading.Event()
        self.written = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.app.app_context():
                while not self.stop.is_set() or self.written < 20:
                    if db.engine.dialect.name == "sqlite":
                        db.session.connection(execution_options={"sqlite_immediate": True})
                    ledger.adjust(
                        self.person_ids[self.written % len(self.person_ids)],
                        points=1 + self.written % 7,
                        hours=Decimal("0.25"),
                        reason=f"{WRITER_PREFIX}{self.written}",
                        actor_id=self.actor_id,
                    )
                    db.session.commit()
                    self.written += 1
                db.session.remove()
        except BaseException as exc:  # reported by the test
            self.error = exc


@pytest.fixture
def scratch_url(database_url, tmp_path):
    """A fresh, empty database of the suite's kind, dropped afterwards."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    base = make_url(database_url)
    name = f"{base.database}_restore"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _backup_while_writing(app, runner, world, output: Path) -> Writer:
    people = [world.a.resident.person_id, world.a.volunteer.person_id, world.b.resident.person_id]
    writer = Writer(app, people, world.a.secretary.id)
    writer.start()
    try:
        while writer.written < 10 and writer.is_alive():
            threading.Event().wait(0.01)
        result = runner.invoke(args=["backup", "--output", str(output)])
    finally:
        writer.stop.set()
        writer.join(timeout=60)
    assert writer.error is None, writer.error
    assert result.exit_code == 0, result.output
    assert f"Backup written to {output}" in result.output
    return writer


def _check_restored(engine) -> int:
    """Integrity, one instant's state and the migration head; the writer's rows in the copy."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        assert (version,) == code_heads()
        mismatched = conn.execute(
            text(
                "SELECT a.person_id, a.balance, COALESCE(SUM(l.points), 0) FROM points_account a"
                " LEFT JOIN points_ledger l ON l.person_id = a.person_id"
                " GROUP BY a.person_id, a.balance HAVING a.balance <> COALESCE(SUM(l.points), 0)"
            )
        ).all()
        assert mismatched == []
        notes = conn.execute(
            text("SELECT note FROM points_ledger WHERE note LIKE :p"), {"p": WRITER_PREFIX + "%"}
        ).scalars()
        numbers = sorted(int(note[len(WRITER_PREFIX) :]) for note in notes)
        users = conn.execute(text('SELECT COUNT(*) FROM "user"')).scalar_one()
    # Committed one after another: a point-in-time copy holds exactly the first k of them.
    assert numbers == list(range(len(numbers)))
    assert users == 12  # every account of the two communities
    return len(numbers)


def test_backup_during_writes_restores_consistently(app, runner, world, tmp_path, scratch_url):
    suffix = "sqlite" if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite") else "dump"
    output = tmp_path / f"portal.{suffix}"
    writer = _backup_while_writing(app, runner, world, output)
    assert output.stat().st_mode & 0o077 == 0  # personal data: owner only
    assert inspect_backup(output).revision == code_heads()[0]

    fresh = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": scratch_url})
    fresh_runner = fresh.test_cli_runner()
    engine = create_engine(scratch_url)
    # The command runs in the app context it finds: push the fresh app's, not the suite's.
    with fresh.app_context():
        try:
            result = fresh_runner.invoke(args=["restore", str(output)])
            assert result.exit_code == 0, result.output
            copied = _check_restored(engine)
            assert 10 <= copied <= writer.written
            # Now the database holds data: a second restore needs --yes.
            refused = fresh_runner.invoke(args=["restore", str(output)])
            assert refused.exit_code != 0 and "--yes" in refused.output
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM points_ledger WHERE note LIKE 'backup-writer-1%'"))
            assert _check_restored_fails(engine)
            again = fresh_runner.invoke(args=["restore", "--yes", str(output)])
            assert again.exit_code == 0, again.output
            assert _check_restored(engine) == copied
        finally:
            engine.dispose()
            db.engine.dispose()


def _check_restored_fails(engine) -> bool:
    try:
        _check_restored(engine)
    except AssertionError:
        return True
    return False


def test_restore_checks_the_file_first(app, runner, world, tmp_path):
    before = _users()
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a backup at all" * 100)
    result = runner.invoke(args=["restore", "--yes", str(garbage)])
    assert result.exit_code != 0
    assert "neither a SQLite database nor a pg_dump" in result.output

    # A SQLite file of something else: no migration revision.
    stranger = tmp_path / "stranger.sqlite"
    with sqlite3.connect(stranger) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(BackupError):
        restore(db.engine, stranger, overwrite=True)

    # A file of the other kind, or damaged, is refused and the data stays.
    if db.engine.dialect.name == "postgresql":
        result = runner.invoke(args=["restore", "--yes", str(stranger)])
        assert result.exit_code != 0 and "sqlite backup" in result.output
    else:
        damaged = tmp_path / "damaged.dump"
        damaged.write_bytes(b"PGDMP" + b"\0" * 200)
        result = runner.invoke(args=["restore", "--yes", str(damaged)])
        assert result.exit_code != 0
    assert _users() == before == 12


def _users() -> int:
    with db.engine.connect() as conn:
        return conn.execute(text('SELECT COUNT(*) FROM "user"')).scalar_one()
