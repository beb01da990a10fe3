"""Backups while the portal runs, and restoring them.

SQLite: the online backup API copies every page in one step inside one read transaction, so
the copy is the database at one instant even while gunicorn workers write (WAL lets them go on).
PostgreSQL: ``pg_dump -Fc`` reads one snapshot; ``pg_restore --clean --if-exists`` in a single
transaction brings it back. A backup is checked before it overwrites anything: a readable file of
the right kind, intact, at a migration revision this code knows. Backups hold personal data:
the files are readable by their owner only.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
SQLITE_HEADER = b"SQLite format 3\x00"
PG_HEADER = b"PGDMP"


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why."""


@dataclass
class BackupInfo:
    kind: str  # "sqlite" or "postgresql"
    revision: str | None  # the alembic revision the backup stands at


def code_heads() -> tuple[str, ...]:
    """The migration head(s) of this code."""
    return tuple(ScriptDirectory(str(MIGRATIONS)).get_heads())


def _known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}


def _kind(engine: Engine) -> str:
    name = engine.dialect.name
    if name not in ("sqlite", "postgresql"):
        raise BackupError(f"backups of {name} databases are not supported")
    return name


def _sqlite_path(engine: Engine) -> str:
    path = engine.url.database
    if not path or path == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return path


def _private(path: Path) -> None:
    os.chmod(path, 0o600)


def default_output(kind: str, instance_path: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = "sqlite" if kind == "sqlite" else "dump"
    return Path(instance_path) / "backups" / f"tongxin-{stamp}.{suffix}"


# --- PostgreSQL tools -------------------------------------------------------------------------


def _pg_tool(name: str) -> str:
    """The newest pg_dump/pg_restore on the machine (it must not be older than the server)."""
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(re.search(r"/(\d+)/bin/", p).group(1)),  # type: ignore[union-attr]
    )
    if candidates:
        return candidates[-1]
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} was not found: install the PostgreSQL client tools")
    return found


def _pg_args(engine: Engine) -> tuple[list[str], dict[str, str]]:
    url = engine.url
    args = ["--host", url.host or "127.0.0.1", "--port", str(url.port or 5432)]
    if url.username:
        args += ["--username", url.username]
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def _run(command: list[str], env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {result.stderr.strip()[:2000]}")
    return result.stdout


# --- checking a backup file -------------------------------------------------------------------


def inspect_backup(path: str | Path) -> BackupInfo:
    """What the file holds; BackupError when it is no intact backup of this portal."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError as error:
        raise BackupError(f"cannot read {path}: {error.strerror}") from None
    if head.startswith(SQLITE_HEADER):
        return BackupInfo("sqlite", _sqlite_file_revision(path))
    if head.startswith(PG_HEADER):
        return BackupInfo("postgresql", _pg_file_revision(path))
    raise BackupError(f"{path} is neither a SQLite database nor a pg_dump custom archive")


def _sqlite_file_revision(path: Path) -> str | None:
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            check = connection.execute("PRAGMA integrity_check").fetchall()
            if check != [("ok",)]:
                raise BackupError(f"{path} is damaged: {check[:3]}")
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
            if "alembic_version" not in tables:
                return None
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            return row[0] if row else None
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{path} is not a readable SQLite database: {error}") from None


def _pg_file_revision(path: Path) -> str | None:
    listing = _run([_pg_tool("pg_restore"), "--list", str(path)])
    if "TABLE DATA public alembic_version" not in listing:
        return None
    data = _run(
        [_pg_tool("pg_restore"), "--data-only", "--table", "alembic_version", "-f", "-", str(path)]
    )
    # COPY public.alembic_version (version_num) FROM stdin;\n<revision>\n\.
    match = re.search(r"COPY [^\n]*alembic_version[^\n]*FROM stdin;\n([0-9a-zA-Z_]+)\n", data)
    return match.group(1) if match else None


def _check_for(engine: Engine, path: str | Path) -> BackupInfo:
    info = inspect_backup(path)
    kind = _kind(engine)
    if info.kind != kind:
        raise BackupError(f"{path} is a {info.kind} backup; this portal runs on {kind}")
    if info.revision is None:
        raise BackupError(f"{path} holds no migration revision: not a backup of this portal")
    if info.revision not in _known_revisions():
        raise BackupError(
            f"{path} stands at migration {info.revision}, unknown to this code (newer code?)"
        )
    return info


# --- backup and restore -----------------------------------------------------------------------


def backup(engine: Engine, output: str | Path | None, instance_path: str) -> Path:
    """Write a consistent backup of the engine's database to ``output``; the file's path.

    The copy is written next to its destination and renamed into place once checked, so an
    interrupted backup never leaves a half-written file under the final name.
    """
    kind = _kind(engine)
    target = Path(output) if output else default_output(kind, instance_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial_name = tempfile.mkstemp(prefix=".partial-", dir=target.parent)
    os.close(handle)
    partial = Path(partial_name)
    try:
        _private(partial)
        if kind == "sqlite":
            _sqlite_backup(_sqlite_path(engine), partial)
        else:
            args, env = _pg_args(engine)
            database = engine.url.database or ""
            _run(
                [_pg_tool("pg_dump"), "-Fc", "--no-owner", "-f", str(partial), *args, database],
                env,
            )
        _check_for(engine, partial)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _sqlite_backup(source_path: str, target: Path) -> None:
    source = sqlite3.connect(source_path, timeout=30)
    copy = sqlite3.connect(target)
    try:
        source.execute("PRAGMA busy_timeout=30000")
        # pages=-1: every page in one step, under one read transaction: one instant's state.
        source.backup(copy, pages=-1)
        # A single self-contained file (no -wal beside it).
        copy.execute("PRAGMA journal_mode=DELETE")
    finally:
        copy.close()
        source.close()


def _has_tables(engine: Engine) -> bool:
    return bool(inspect(engine).get_table_names())


def restore(engine: Engine, path: str | Path, *, overwrite: bool = False) -> BackupInfo:
    """Replace the engine's database with the backup at ``path``; BackupError if the file fails
    its checks, or if the database already holds tables and ``overwrite`` is not given."""
    info = _check_for(engine, path)
    engine.dispose()
    if _has_tables(engine) and not overwrite:
        raise BackupError(
            "the database already holds data; pass --yes to replace it with the backup"
        )
    if info.kind == "sqlite":
        source = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
        target = sqlite3.connect(_sqlite_path(engine), timeout=30)
        try:
            target.execute("PRAGMA busy_timeout=30000")
            source.backup(target, pages=-1)
        finally:
            target.close()
            source.close()
    else:
        args, env = _pg_args(engine)
        _run(
            [
                _pg_tool("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                "--dbname",
                engine.url.database or "",
                *args,
                str(path),
            ],
            env,
        )
    engine.dispose()
    return info
