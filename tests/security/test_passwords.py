"""Password rules on every way an account gets a password: sign-up, the secretary's account
form, the password change page and `flask create-user`. At least 8 characters, not one of the
common passwords (lower-cased compare), not the username, not the phone; hashed with scrypt."""

from __future__ import annotations

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from portal.auth.models import User
from portal.auth.passwords import common_passwords, password_problem
from portal.extensions import db
from portal.people.models import Person
from tests.factories import PASSWORD, make_person

GOOD = "quiet-river-42"


def to_english(client):
    client.post("/language", data={"lang": "en"})


def signup(client, world, password: str, username: str = "wangxm", phone: str = "13800138000"):
    return client.post(
        "/signup",
        data={
            "community_id": world.a.community.id,
            "name": "王小明",
            "phone": phone,
            "username": username,
            "password": password,
            "confirm": password,
        },
    )


def test_the_common_list_is_large_and_lower_case():
    common = common_passwords()
    assert len(common) > 8000
    assert {"password", "iloveyou", "qwertyuiop", "woaini1314", "1qaz2wsx"} <= common
    assert all(p == p.lower() for p in common)
    assert not any(p.startswith("# ") for p in common)  # the file's header is not a password


@pytest.mark.parametrize(
    "password, reason",
    [
        ("short7!", "At least 8 characters."),
        ("PassWord1", "This password is too common; choose another."),
        ("QWERTYUIOP", "This password is too common; choose another."),
        ("Wangxm_88", "The password must not be your username."),
        ("13800138000", "The password must not be your phone number."),
        ("x" * 129, "At most 128 characters."),
    ],
)
def test_password_problem(app, password, reason):
    with force_locale("en"):
        assert password_problem(password, username="wangxm_88", phone="138 0013 8000") == reason


def test_a_good_password_passes(app):
    assert password_problem(GOOD, username="wangxm", phone="13800138000") is None


@pytest.mark.parametrize(
    "password, message",
    [
        ("abc1234", "Field must be between 8 and 128 characters long."),
        ("Iloveyou1", "This password is too common; choose another."),
        ("WangXM2024", "The password must not be your username."),
        ("13800138000", "The password must not be your phone number."),
    ],
)
def test_signup_refuses_weak_passwords(client, world, password, message):
    to_english(client)
    response = signup(client, world, password, username="wangxm2024")
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(User.id)).where(User.username == "wangxm2024")) == 0
    assert db.session.scalar(select(func.count(Person.id)).where(Person.name == "王小明")) == 0


def test_signup_with_a_good_password_hashes_it_with_scrypt(client, world):
    assert signup(client, world, GOOD).status_code == 303
    user = db.session.scalar(select(User).where(User.username == "wangxm"))
    assert user.password_hash.startswith("scrypt:")
    assert GOOD not in user.password_hash
    assert user.check_password(GOOD)


def test_account_made_by_a_secretary_follows_the_rules(client, auth, world):
    """The people domain's account form sets the password through User.set_password too."""
    person = make_person(world.a.community, name="赵六", phone="13700001111")
    auth.login("secretary_a")
    to_english(client)
    for password, message in (
        ("zhaoliu-1", "The password must not be your username."),
        ("13700001111", "The password must not be your phone number."),
        ("Password123", "This password is too common; choose another."),
    ):
        response = client.post(
            f"/people/{person.id}/account",
            data={"username": "zhaoliu-1", "password": password, "confirm": password},
        )
        assert message in response.get_data(as_text=True), password
        assert db.session.scalar(select(User).where(User.username == "zhaoliu-1")) is None
    response = client.post(
        f"/people/{person.id}/account",
        data={"username": "zhaoliu-1", "password": GOOD, "confirm": GOOD},
    )
    assert response.status_code == 303
    assert db.session.scalar(select(User).where(User.username == "zhaoliu-1")) is not None


@pytest.mark.parametrize(
    "password, message",
    [
        ("1234567", "Field must be between 8 and 128 characters long."),
        ("Sunshine1", "This password is too common; choose another."),
        ("Secretary_A", "The password must not be your username."),
        (PASSWORD, "Choose a password different from the current one."),
    ],
)
def test_password_change_refuses_weak_passwords(client, auth, world, password, message):
    auth.login("secretary_a")
    to_english(client)
    before = world.a.secretary.password_hash
    response = client.post(
        "/account/password", data={"current": PASSWORD, "password": password, "confirm": password}
    )
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    db.session.refresh(world.a.secretary)
    assert world.a.secretary.password_hash == before


def test_password_change_refuses_the_phone_number(client, auth, world):
    auth.login("secretary_a")
    to_english(client)
    phone = world.a.secretary.person.phone
    response = client.post(
        "/account/password", data={"current": PASSWORD, "password": phone, "confirm": phone}
    )
    assert "The password must not be your phone number." in response.get_data(as_text=True)


def test_password_change_requires_the_current_password(client, auth, world):
    auth.login("secretary_a")
    response = client.post(
        "/account/password", data={"current": "", "password": GOOD, "confirm": GOOD}
    )
    assert response.status_code == 200
    db.session.refresh(world.a.secretary)
    assert world.a.secretary.check_password(PASSWORD)


def test_the_new_password_signs_in_and_the_old_one_does_not(client, app, auth, world):
    auth.login("volunteer_a")
    page = client.get("/account/password")
    assert page.status_code == 200  # every signed-in role has the page
    response = client.post(
        "/account/password", data={"current": PASSWORD, "password": GOOD, "confirm": GOOD}
    )
    assert response.status_code == 303
    other = app.test_client()
    old = other.post("/login", data={"identifier": "volunteer_a", "password": PASSWORD})
    assert old.status_code == 200
    new = other.post("/login", data={"identifier": "volunteer_a", "password": GOOD})
    assert new.status_code == 303


def test_password_page_needs_sign_in(client):
    response = client.get("/account/password")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize(
    "username, password, phone",
    [
        ("shuji", "1234567", None),
        ("shuji", "Qwerty123", None),
        ("shuji2024", "SHUJI2024", None),
        ("shuji", "13912345678", "13912345678"),
    ],
)
def test_create_user_command_refuses_weak_passwords(runner, username, password, phone):
    runner.invoke(args=["create-community", "--subdistrict", "新城街道", "--name", "育才社区"])
    args = ["create-user", username, "--role", "secretary", "--community", "育才社区"]
    if phone:
        args += ["--phone", phone]
    result = runner.invoke(args=[*args, "--password", password])
    assert result.exit_code != 0
    assert "password refused" in result.output
    assert db.session.scalar(select(User).where(User.username == username)) is None


def test_create_user_command_accepts_a_good_password(runner):
    runner.invoke(args=["create-community", "--subdistrict", "新城街道", "--name", "育才社区"])
    result = runner.invoke(
        args=["create-user", "shuji", "--role", "secretary", "--community", "育才社区"]
        + ["--password", GOOD]
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.username == "shuji"))
    assert user.password_hash.startswith("scrypt:") and user.check_password(GOOD)
