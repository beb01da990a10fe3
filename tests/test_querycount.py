"""QUERY_COUNT_HEADER: the X-Query-Count header the load benchmark reads (bench/run.py)."""

from __future__ import annotations

import pytest

from portal import create_app
from portal.extensions import db
from tests.conftest import CSRFClient, _empty_tables, _engine_options
from tests.helpers import count_queries


@pytest.fixture
def counting_app(database_url):
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(database_url),
            "SECRET_KEY": "test-secret-key-that-is-long-enough-1234",
            "SERVER_NAME": "localhost",
            "QUERY_COUNT_HEADER": True,
        }
    )
    app.test_client_class = CSRFClient
    with app.app_context():
        yield app
        db.session.remove()
        _empty_tables()
        db.session.remove()
        db.engine.dispose()


def _login(client, username: str) -> None:
    from tests import factories

    response = client.post("/login", data={"identifier": username, "password": factories.PASSWORD})
    assert response.status_code == 303


def test_header_absent_without_the_flag(client, world):
    assert client.get("/login").headers.get("X-Query-Count") is None
    _login(client, "volunteer_a")
    assert client.get("/").headers.get("X-Query-Count") is None


def test_header_zero_on_a_page_without_sql(counting_app):
    from tests import factories  # noqa: F401

    response = counting_app.test_client().get("/login")
    assert response.status_code == 200
    assert response.headers["X-Query-Count"] == "0"


@pytest.mark.parametrize("path", ["/", "/shifts", "/points"])
def test_header_counts_the_statements_of_the_request(counting_app, path):
    from tests import factories

    factories.build_world()
    db.session.commit()
    client = counting_app.test_client()
    _login(client, "volunteer_a")
    with count_queries() as counted:
        response = client.get(path)
    assert response.status_code == 200
    assert int(response.headers["X-Query-Count"]) == counted["n"]
    assert counted["n"] > 0


def test_count_is_per_request_not_cumulative(counting_app):
    from tests import factories

    factories.build_world()
    db.session.commit()
    client = counting_app.test_client()
    _login(client, "volunteer_a")
    first = int(client.get("/notifications").headers["X-Query-Count"])
    second = int(client.get("/notifications").headers["X-Query-Count"])
    assert first == second > 0
