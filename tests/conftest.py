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
from pathlib import Path

import pytest
from flask import has_app_context
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import create_engine, make_url, text

from portal import create_app
from portal.extensions import db
from tests import factories

LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


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
    options: dict = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        # Tests commit after every factory row; waiting for the disk each time only costs time.
        options["connect_args"] = {"options": "-c synchronous_commit=off"}
    return options


@pytest.fixture
def app(database_url):
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(database_url),
            "SECRET_KEY": "test-secret-key-that-is-long-enough-1234",
            "SERVER_NAME": "localhost",
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
