"""Sign-in, sign-out, throttling, safe redirects, sessions and sign-up."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.auth.models import Throttle, User
from portal.extensions import db
from portal.people.models import Person
from tests.factories import PASSWORD


def to_english(client):
    client.post("/language", data={"lang": "en"})


def test_login_page_renders_in_chinese_by_default(client):
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="zh-CN">' in page
    assert "登录" in page


def test_login_by_username_and_by_phone(client, auth, world):
    auth.login("secretary_a")
    assert client.get("/").status_code == 200
    auth.logout()
    phone = world.a.secretary.person.phone
    response = client.post("/login", data={"identifier": phone, "password": PASSWORD})
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_username_is_case_insensitive(client, world):
    response = client.post("/login", data={"identifier": "Secretary_A", "password": PASSWORD})
    assert response.status_code == 303


def test_wrong_password_shows_message_and_records_failure(client, world):
    to_english(client)
    response = client.post("/login", data={"identifier": "secretary_a", "password": "nope-nope"})
    assert response.status_code == 200
    assert "Wrong username/phone or password." in response.get_data(as_text=True)
    # counted for the account from this address, for the address, and account-wide
    assert dict(db.session.execute(select(Throttle.key, Throttle.attempts)).all()) == {
        f"p:u{world.a.secretary.id}|a:127.0.0.1": 1,
        "n:127.0.0.1": 1,
        f"a:u{world.a.secretary.id}": 1,
    }
    # what was typed is kept
    assert 'value="secretary_a"' in response.get_data(as_text=True)


def test_wrong_password_message_in_chinese(client, world):
    response = client.post("/login", data={"identifier": "secretary_a", "password": "nope-nope"})
    assert "用户名/手机号或密码错误" in response.get_data(as_text=True)


def test_empty_fields_are_reported(client):
    to_english(client)
    page = client.post("/login", data={"identifier": "", "password": ""}).get_data(as_text=True)
    assert page.count("This field is required.") == 2


def test_failed_sign_ins_are_throttled_per_account(client, world):
    to_english(client)
    for _ in range(5):
        client.post("/login", data={"identifier": "secretary_a", "password": "wrong-pass"})
    # Even the right password is refused while throttled.
    response = client.post("/login", data={"identifier": "secretary_a", "password": PASSWORD})
    assert response.status_code == 200
    assert "Too many failed sign-ins" in response.get_data(as_text=True)
    # Another account from another address is not affected.
    other = client.application.test_client()
    ok = other.post(
        "/login",
        data={"identifier": "secretary_b", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.9.9.9"},
    )
    assert ok.status_code == 303


def test_failed_sign_ins_are_throttled_per_address(client, app, world):
    app.config["LOGIN_ACCOUNTS_PER_ADDRESS"] = 3
    for name in ("x1", "x2", "x3"):
        client.post("/login", data={"identifier": name, "password": "wrong-pass"})
    response = client.post("/login", data={"identifier": "secretary_a", "password": PASSWORD})
    assert response.status_code == 200
    assert (
        db.session.scalar(select(User.last_login_at).where(User.username == "secretary_a")) is None
    )


def test_successful_sign_in_clears_account_failures(client, world):
    client.post("/login", data={"identifier": "secretary_a", "password": "wrong-pass"})
    client.post("/login", data={"identifier": "secretary_a", "password": PASSWORD})
    # the account's counters are gone, and it no longer counts against the address
    assert dict(db.session.execute(select(Throttle.key, Throttle.attempts)).all()) == {
        "n:127.0.0.1": 0
    }


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/places/", "/places/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("", "/"),
    ],
)
def test_next_never_leaves_the_site(client, world, target, expected):
    response = client.post(
        "/login", data={"identifier": "secretary_a", "password": PASSWORD, "next": target}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == expected


def test_protected_page_redirects_to_login_with_next(client):
    response = client.get("/places/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/places/")


def test_expired_session_on_htmx_request_redirects_whole_page(client):
    response = client.get(
        "/volunteers/queue",
        headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/volunteers/queue"},
    )
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == "/login?next=/volunteers/queue"
    assert "<form" not in response.get_data(as_text=True)


def test_logout_ends_the_session_even_for_a_replayed_cookie(client, auth, world, app):
    auth.login("secretary_a")
    cookie = client.get_cookie("session")
    assert cookie is not None
    saved = cookie.value
    auth.logout()
    assert client.get("/").status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", saved, domain="localhost")
    response = replay.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_logout_requires_post_with_csrf(client, auth, world):
    auth.login("secretary_a")
    assert client.get("/logout").status_code == 405
    assert client.post("/logout", csrf=False).status_code == 400
    assert client.get("/").status_code == 200


def test_post_without_csrf_token_is_refused(client, world):
    to_english(client)
    response = client.post(
        "/login", data={"identifier": "secretary_a", "password": PASSWORD}, csrf=False
    )
    assert response.status_code == 400
    assert "The form expired" in response.get_data(as_text=True)


def test_csrf_failure_on_htmx_request_is_shown_in_flash_area(client, auth, world):
    auth.login("secretary_a")
    response = client.post("/logout", headers={"HX-Request": "true"}, csrf=False)
    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == "#flash"
    assert "<html" not in response.get_data(as_text=True)


def test_disabled_account_cannot_sign_in_or_stay_signed_in(client, auth, world):
    auth.login("secretary_a")
    world.a.secretary.active = False
    db.session.commit()
    assert client.get("/").status_code == 302
    response = client.post("/login", data={"identifier": "secretary_a", "password": PASSWORD})
    assert response.status_code == 200


def test_sign_in_gives_a_new_session(client, world):
    client.get("/login")
    before = client.csrf_token()
    client.post("/login", data={"identifier": "secretary_a", "password": PASSWORD})
    with client.session_transaction() as sess:
        assert "csrf_token" not in sess or client.csrf_token() != before


def test_signup_creates_resident_account_and_person(client, world):
    response = client.post(
        "/signup",
        data={
            "community_id": world.a.community.id,
            "name": "王小明",
            "phone": "138 0013 8000",
            "username": "wangxm",
            "password": "a-long-pass-9",
            "confirm": "a-long-pass-9",
        },
    )
    assert response.status_code == 303
    user = db.session.scalar(select(User).where(User.username == "wangxm"))
    assert user.role == "resident"
    assert user.community_id == world.a.community.id
    assert user.person.name == "王小明"
    # the number waits on the account until staff match it to a household
    assert (user.person.phone, user.signup_phone, user.verified) == (None, "13800138000", False)
    assert client.get("/").status_code == 200


def test_signup_validation_keeps_input_and_reports_each_field(client, world):
    to_english(client)
    taken_phone = world.a.resident.person.phone
    response = client.post(
        "/signup",
        data={
            "community_id": world.a.community.id,
            "name": "x" * 41,
            "phone": "12345",
            "username": "resident_a",
            "password": "12345678",
            "confirm": "different",
        },
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Field cannot be longer than 40 characters." in page
    assert "Enter an 11-digit mobile number starting with 13–19." in page
    assert "This password is too common; choose another." in page
    assert "The passwords differ." in page
    assert 'value="12345"' in page
    # duplicates are reported once the format is right
    response = client.post(
        "/signup",
        data={
            "community_id": world.a.community.id,
            "name": "李四",
            "phone": taken_phone,
            "username": "RESIDENT_A",
            "password": "a-long-pass-9",
            "confirm": "a-long-pass-9",
        },
    )
    page = response.get_data(as_text=True)
    assert "This username is taken." in page
    # whether the phone is on record is never said
    assert "phone number is already" not in page
    assert db.session.scalar(select(func.count(Person.id)).where(Person.name == "李四")) == 0


def test_signup_messages_in_chinese(client, world):
    page = client.post(
        "/signup",
        data={"community_id": world.a.community.id, "name": "", "phone": "123"},
    ).get_data(as_text=True)
    assert "请输入以13–19开头的11位手机号码。" in page


def test_password_change_ends_other_sessions(client, auth, world, app):
    auth.login("secretary_a")
    other = app.test_client()
    AuthOther = type(auth)
    AuthOther(other).login("secretary_a")
    response = client.post(
        "/account/password",
        data={"current": PASSWORD, "password": "brand-new-pass-1", "confirm": "brand-new-pass-1"},
    )
    assert response.status_code == 303
    assert client.get("/").status_code == 200  # this session continues
    assert other.get("/").status_code == 302  # the other one is over


def test_password_change_checks_current_password(client, auth, world):
    auth.login("secretary_a")
    to_english(client)
    response = client.post(
        "/account/password",
        data={
            "current": "wrong-one",
            "password": "brand-new-pass-1",
            "confirm": "brand-new-pass-1",
        },
    )
    assert "The current password is wrong." in response.get_data(as_text=True)


def test_language_switch(client):
    client.post("/language", data={"lang": "en", "next": "/login"})
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in page and "Sign in" in page
    client.post("/language", data={"lang": "zh_Hans_CN"})
    assert "登录" in client.get("/login").get_data(as_text=True)


def test_language_switch_ignores_unknown_language_and_offsite_next(client):
    response = client.post("/language", data={"lang": "xx", "next": "https://evil.example"})
    assert response.headers["Location"] == "/"
    assert '<html lang="zh-CN">' in client.get("/login").get_data(as_text=True)
