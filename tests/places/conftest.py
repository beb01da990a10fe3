"""Helpers for the places tests: switching to English and counting SQL statements."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event

from portal.extensions import db


def to_english(client) -> None:
    client.post("/language", data={"lang": "en"})


@contextmanager
def count_queries():
    """Count the SQL statements run inside the block (``with count_queries() as n: ...; n[0]``)."""
    counter = [0]

    def _count(*_args, **_kwargs):
        counter[0] += 1

    event.listen(db.engine, "before_cursor_execute", _count)
    try:
        yield counter
    finally:
        event.remove(db.engine, "before_cursor_execute", _count)


def follow(client, response):
    """GET the redirect target (the suite's client cannot follow redirects by itself)."""
    assert response.status_code in (302, 303), response.status_code
    return client.get(response.headers["Location"])


@pytest.fixture
def english(client):
    to_english(client)
    return client


@pytest.fixture
def login(client, auth, world):
    """``login("secretary", "a")``: sign in as that role of community A or B."""

    def _login(role: str, key: str = "a"):
        user = getattr(world, key).users[role]
        auth.login(user.username)
        return user

    return _login
