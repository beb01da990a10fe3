"""Helpers for the people tests: switch to English, count rows, read a person back."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.people.models import Person


@pytest.fixture
def english(client):
    """Show English messages (the default is Chinese)."""
    response = client.post("/language", data={"lang": "en"})
    assert response.status_code == 303


def person_count() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count(Person.id)))


def reload(person: Person) -> Person:
    db.session.expire_all()
    return db.session.get(Person, person.id)


def person_form(**overrides) -> dict:
    """A valid registration form for world A's first household (building 1, room 101)."""
    data = {
        "name": "张秀英",
        "phone": "13812345678",
        "sex": "female",
        "birth_year": "1948",
        "room": "101",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}
