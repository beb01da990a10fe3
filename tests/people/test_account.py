"""A secretary gives a resident a sign-in account."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.auth.models import User
from portal.extensions import db
from tests.people.conftest import reload


@pytest.fixture
def resident(world, make_person):
    return make_person(world.a.community, household=world.a.household, name="钱大伯")


def _post(client, person, **overrides):
    data = {"username": "qian.dabo", "password": "sunny-garden-7", "confirm": "sunny-garden-7"}
    data.update(overrides)
    return client.post(f"/people/{person.id}/account", data=data)


def _users() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count(User.id)))


def test_secretary_creates_account_that_signs_in(client, auth, world, resident):
    auth.login("secretary_a")
    response = _post(client, resident)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/people/{resident.id}")
    user = reload(resident).user
    assert (user.username, user.role, user.community_id) == (
        "qian.dabo",
        "resident",
        world.a.community.id,
    )
    assert user.check_password("sunny-garden-7")
    auth.logout()
    auth.login("qian.dabo", "sunny-garden-7")


def test_detail_offers_account_only_without_one(client, auth, world, resident):
    auth.login("secretary_a")
    assert f"/people/{resident.id}/account" in client.get(f"/people/{resident.id}").text
    page = client.get(f"/people/{world.a.resident.person.id}").text
    assert f"/people/{world.a.resident.person.id}/account" not in page
    assert "resident_a" in page


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"username": "RESIDENT_A"}, "This username is taken."),
        ({"username": "ab"}, "Field must be between 3 and 40 characters long."),
        ({"username": "钱 大伯"}, "Use letters, digits, dot, dash or underscore."),
        ({"username": ""}, "This field is required."),
        ({"password": "short7", "confirm": "short7"}, "Field must be between 8 and 128"),
        (
            {"password": "12345678", "confirm": "12345678"},
            "This password is too common; choose another.",
        ),
        ({"confirm": "other-thing-8"}, "The passwords differ."),
    ],
)
def test_account_field_messages(client, auth, english, resident, overrides, message):
    auth.login("secretary_a")
    before = _users()
    response = _post(client, resident, **overrides)
    assert response.status_code == 200
    assert message in response.text
    assert _users() == before


def test_no_second_account(client, auth, english, world):
    person = world.a.resident.person
    auth.login("secretary_a")
    page = client.get(f"/people/{person.id}/account").text
    assert "already has an account: resident_a" in page and 'name="username"' not in page
    before = _users()
    response = _post(client, person, username="second_one")
    assert response.status_code == 200
    assert "already has an account" in response.text
    assert _users() == before
    assert reload(person).user.username == "resident_a"


def test_username_race_becomes_field_error(client, auth, english, resident, monkeypatch):
    from portal.people import services

    monkeypatch.setattr(services, "username_taken", lambda *a: False)
    auth.login("secretary_a")
    before = _users()
    response = _post(client, resident, username="resident_a")
    assert response.status_code == 200
    assert "This username is taken." in response.text
    assert _users() == before
