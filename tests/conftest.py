"""Fixtures after the flaskr tutorial: app, client, runner, auth, and factories.

The suite runs on a throw-away SQLite file, or on PostgreSQL when ``TEST_DATABASE_URL`` is set
(``REQUIRE_POSTGRES=1`` picks the local server and makes an unreachable one fail the run).
The schema is built once per run by the Alembic revisions; each test starts from empty tables.
Under pytest-xdist (``-n auto``) every worker has its own SQLite file or PostgreSQL database.
"""

from __future__ import annotations

import contextvars
import hashlib
import os
import tempfile
import time
from pathlib import Path
from unittest import mock

import pytest
from flask import has_app_context
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import create_engine, make_url, select, text
from werkzeug.routing.rules import Rule

from portal import create_app
from portal.extensions import db
from tests import factories

LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _memoize_url_builders() -> None:
    """Every test makes its own app, and werkzeug compiles two URL-builder functions (through
    ``ast`` and ``compile``) for each of the app's ~150 rules: 75 ms of every test's setup.
    The function depends only on the rule's parsed parts and defaults, and gets the rule as its
    first argument, so the same rule text yields the same function: compile it once a run."""
    compile_builder = Rule._compile_builder
    cache: dict = {}

    def cached(self: Rule, append_unknown: bool = True):
        defaults = self.defaults or {}
        key = (
            self.rule,
            tuple(self._trace),
            tuple(sorted((k, repr(v), type(self._converters.get(k))) for k, v in defaults.items())),
            append_unknown,
        )
        builder = cache.get(key)
        if builder is None:
            builder = cache[key] = compile_builder(self, append_unknown)
        return builder

    Rule._compile_builder = cached


_memoize_url_builders()


def _database_url(tmp_dir: str) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url and os.environ.get("REQUIRE_POSTGRES") == "1":
        url = LOCAL_POSTGRES
    if url:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        return url
    return "sqlite:///" + str(Path(tmp_dir) / "test.db")


def _worker_database(url: str) -> str:
    """Under pytest-xdist each worker gets its own PostgreSQL database (``test_gw0``, ...),
    created next to the given one; without xdist the given database is used as it is."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    base = make_url(url)
    name = f"{base.database}_{worker}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if exists is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # unreachable server: fail loudly, never skip silently
        pytest.exit(f"PostgreSQL at {url} is not usable: {exc}", returncode=3)
    finally:
        engine.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url():
    tmp_dir = tempfile.mkdtemp(prefix="tongxin-test-")
    url = _database_url(tmp_dir)
    if url.startswith("postgresql"):
        url = _worker_database(url)
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        except Exception as exc:  # unreachable server: fail loudly, never skip silently
            pytest.exit(f"PostgreSQL at {url} is not usable: {exc}", returncode=3)
        finally:
            engine.dispose()
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.engine.dispose()
    return url


def _empty_tables() -> None:
    # DELETE, children first, on both engines: on PostgreSQL a TRUNCATE of every table makes new
    # files for each table and index (0.2 s a test, against 5 ms for deleting a test's few rows).
    # audit_log is append-only (triggers of migration e946dc44306a): its purge switch, on for
    # this transaction only.
    sqlite = db.engine.dialect.name == "sqlite"
    if sqlite:
        db.session.execute(text("PRAGMA user_version = 7411"))
    else:
        db.session.execute(text("SELECT set_config('tongxin.audit_log_purge', 'on', true)"))
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(text(f'DELETE FROM "{table.name}"'))
    if sqlite:
        db.session.execute(text("PRAGMA user_version = 0"))
    db.session.commit()


def _engine_options(url: str) -> dict:
    options: dict = {}
    if url.startswith("postgresql"):
        # Tests commit after every factory row; waiting for the disk each time only costs time.
        options["connect_args"] = {"options": "-c synchronous_commit=off"}
    return options


@pytest.fixture(autouse=True)
def _page_cache_minute_stands_still():
    """Pages are kept for the minute they were rendered in (portal/core/pagecache.py): a test
    that crossed a minute boundary would see a page render again where it expects it kept.
    tests/test_pagecache.py moves the minute on where that is what it tests."""
    from portal.core import pagecache

    # Not the monkeypatch fixture: set up before every other fixture, it would be undone after
    # their teardown, and a test's own patches (db.session.execute...) would outlive the test.
    minute = pagecache.current_minute()
    with mock.patch.object(pagecache, "current_minute", lambda: minute):
        yield


@pytest.fixture
def app(database_url):
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(database_url),
            "SECRET_KEY": "test-secret-key-that-is-long-enough-1234",
            "SERVER_NAME": "localhost",
            "PUBLIC_URL": "http://localhost",
        }
    )
    app.test_client_class = CSRFClient
    with app.app_context():
        yield app
        db.session.remove()
        _empty_tables()
        db.session.remove()
        db.engine.dispose()


class CSRFClient(FlaskClient):
    """A test client that sends a valid CSRF token with every unsafe request, like a browser.

    Pass ``csrf=False`` to send none (to prove that such a request is refused).
    """

    def open(self, *args, csrf: bool = True, **kwargs):
        method = (kwargs.get("method") or "GET").upper()
        # Streamed answers are read after the request's context is gone: buffer them.
        kwargs.setdefault("buffered", True)
        if csrf and method not in ("GET", "HEAD", "OPTIONS"):
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault("X-CSRFToken", self.csrf_token())
            kwargs["headers"] = headers
        # The test's own session commits what it set up and, after the request, forgets what it
        # had loaded, so assertions read what the request really wrote.
        outer = has_app_context()  # False inside a redirect that the client follows
        if outer:
            db.session.commit()
        # Each request runs in a fresh context: its own app context, ``g`` and database session,
        # as under a real server (pytest-flask's shared context hides bugs; see TRAPS.md).
        response = contextvars.Context().run(super().open, *args, **kwargs)
        if outer:
            db.session.commit()
        return response

    def csrf_token(self) -> str:
        """The signed form of this client's session token (what the page's meta tag holds)."""
        with self.session_transaction() as sess:
            if "csrf_token" not in sess:
                sess["csrf_token"] = hashlib.sha1(os.urandom(64)).hexdigest()
            raw = sess["csrf_token"]
        secret = self.application.config["SECRET_KEY"]
        return URLSafeTimedSerializer(secret, salt="wtf-csrf-token").dumps(raw)


# Seeding the demo takes 5-9 s; the demo tests only read it (or reseed it themselves), so each
# worker seeds once and later tests get the same rows back by bulk insert, which takes a tenth
# of that. A copy older than DEMO_SNAPSHOT_SECONDS is not reused: the demo's dates are relative
# to the time it was seeded (overdue requests, reminders due), so each test file seeds afresh.
DEMO_SNAPSHOT_SECONDS = 120
_demo_snapshot: dict = {}


def _restore_rows(rows: dict[str, list[dict]]) -> None:
    postgres = db.engine.dialect.name == "postgresql"
    session = db.session
    if postgres:
        # Rows go in table by table; a row may name a later row of its own table (a guardian).
        session.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        session.execute(text("PRAGMA defer_foreign_keys = ON"))
    for table in db.metadata.sorted_tables:
        if rows.get(table.name):
            session.execute(table.insert(), rows[table.name])
    if postgres:
        for table in db.metadata.sorted_tables:
            if rows.get(table.name) and "id" in table.c and table.c.id.autoincrement:
                session.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                        f'(SELECT MAX(id) FROM "{table.name}"))'
                    )
                )
    session.commit()


def seed_demo(runner) -> str:
    """``flask seed-demo`` on the empty test database; returns what the command printed."""
    cached = _demo_snapshot.get("rows")
    if cached is not None and time.monotonic() - _demo_snapshot["at"] < DEMO_SNAPSHOT_SECONDS:
        _restore_rows(cached)
        db.session.expire_all()
        return _demo_snapshot["output"]
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    db.session.commit()
    # Not the cache stamps: they are no demo data, the emptied tables' triggers (deferred on
    # PostgreSQL) have written their own rows since, and a version must never go back.
    rows = {
        table.name: [dict(row) for row in db.session.execute(select(table)).mappings()]
        for table in db.metadata.sorted_tables
        if table.name != "cache_stamp"
    }
    db.session.commit()
    _demo_snapshot.update(rows=rows, at=time.monotonic(), output=result.output)
    db.session.expire_all()
    return result.output


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class AuthActions:
    def __init__(self, client: FlaskClient):
        self._client = client

    def login(self, username: str, password: str = factories.PASSWORD):
        """Sign in as ``username`` (a user made by the factories or the ``world`` fixture)."""
        response = self._client.post("/login", data={"identifier": username, "password": password})
        assert response.status_code == 303, f"login as {username} failed"
        return response

    def logout(self):
        return self._client.post("/logout")


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def world(app):
    """Two fully set-up communities, A and B, with a user of every role in each."""
    return factories.build_world()


@pytest.fixture
def make_community(app):
    return factories.make_community


@pytest.fixture
def make_user(app):
    return factories.make_user


@pytest.fixture
def make_person(app):
    return factories.make_person


@pytest.fixture
def make_volunteer(app):
    return factories.make_volunteer


# Files that take longest (attack tests, browsers, gunicorn servers, seeds). pytest-xdist hands
# out whole files (--dist loadfile) in collection order; starting with the long ones keeps both
# workers busy to the end instead of leaving one finishing a 20-second file alone.
SLOW_FILES = (
    "tests/browser/test_xss_corpus.py",
    "tests/security/test_fuzz.py",
    "tests/security/test_kill.py",
    "tests/security/test_isolation.py",
    "tests/test_access_matrix.py",
    "tests/test_seed_bench.py",
    "tests/test_cli.py",
    "tests/help/test_actions_matrix.py",
    "tests/security/test_headers.py",
    "tests/security/test_policy.py",
    "tests/test_demo_help.py",
    "tests/test_demo_patrols.py",
    "tests/test_demo_points.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: position for position, name in enumerate(SLOW_FILES)}
    root = Path(__file__).resolve().parent.parent

    def key(item):
        path = Path(str(item.fspath)).resolve()
        try:
            name = path.relative_to(root).as_posix()
        except ValueError:
            name = path.as_posix()
        return rank.get(name, len(SLOW_FILES))

    items.sort(key=key)  # stable: the order within a file and among the rest is kept
