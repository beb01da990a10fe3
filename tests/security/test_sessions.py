"""Sessions and sign-in, attacked: replayed cookies after logout and password change, cookie
flags, a new session and CSRF token at sign-in, the staff idle timeout, throttling that holds
across gunicorn workers and ignores a forged X-Forwarded-For, the production start checks, and
the audit rows of signing in and out."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from portal import create_app
from portal.auth.models import Throttle, User
from portal.config import DEFAULT_SECRET, ProductionConfigError
from portal.extensions import db
from portal.trust.models import AuditEntry
from tests.factories import PASSWORD
from tests.patrols.test_signup_load import CSRF_META, Browser, gunicorn_serving

ROOT = Path(__file__).resolve().parents[2]
GOOD_SECRET = "a-production-secret-that-is-long-enough-0123456789"
THROTTLED = "登录失败次数过多"
WRONG = "用户名/手机号或密码错误"


def sign_in(client, username: str, remember: bool = False, **kwargs):
    data = {"identifier": username, "password": PASSWORD}
    if remember:
        data["remember"] = "y"
    response = client.post("/login", data=data, **kwargs)
    assert response.status_code == 303, response.get_data(as_text=True)
    return response


def set_cookies(response) -> dict[str, str]:
    """Set-Cookie headers of a response, by cookie name."""
    cookies = {}
    for header in response.headers.getlist("Set-Cookie"):
        cookies[header.split("=", 1)[0]] = header
    return cookies


def audit_rows(action: str) -> list[AuditEntry]:
    db.session.commit()
    return list(
        db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
    )


# --- sessions end: logout, password change, remember-me ---------------------------------------


def test_replayed_session_and_remember_cookies_are_refused_after_logout(client, app, world):
    sign_in(client, "resident_a", remember=True)
    session_cookie = client.get_cookie("session").value
    remember_cookie = client.get_cookie("remember_token").value
    assert client.get("/").status_code == 200
    response = client.post("/logout")
    assert response.status_code == 303
    # logout asks the browser to drop the remember-me cookie
    assert "remember_token=;" in set_cookies(response).get("remember_token", "")
    for name, value in (("session", session_cookie), ("remember_token", remember_cookie)):
        replay = app.test_client()
        replay.set_cookie(name, value, domain="localhost")
        answer = replay.get("/")
        assert answer.status_code == 302, name
        assert answer.headers["Location"].startswith("/login")


def test_remember_cookie_alone_signs_a_resident_back_in(client, app, world):
    """The control for the test above: the cookie works until the session token rotates."""
    sign_in(client, "resident_a", remember=True)
    replay = app.test_client()
    replay.set_cookie("remember_token", client.get_cookie("remember_token").value)
    assert replay.get("/").status_code == 200


def test_password_change_ends_other_sessions_and_remember_cookies(client, app, world):
    sign_in(client, "resident_a", remember=True)
    other = app.test_client()
    sign_in(other, "resident_a")
    remember_cookie = client.get_cookie("remember_token").value
    response = client.post(
        "/account/password",
        data={"current": PASSWORD, "password": "quiet-river-42", "confirm": "quiet-river-42"},
    )
    assert response.status_code == 303
    assert client.get("/").status_code == 200
    assert other.get("/").status_code == 302
    replay = app.test_client()
    replay.set_cookie("remember_token", remember_cookie)
    assert replay.get("/").status_code == 302


# --- cookies -----------------------------------------------------------------------------------


def test_session_and_remember_cookies_are_httponly_and_samesite_lax(client, world):
    response = sign_in(client, "resident_a", remember=True)
    cookies = set_cookies(response)
    for name in ("session", "remember_token"):
        assert "HttpOnly" in cookies[name], cookies[name]
        assert "SameSite=Lax" in cookies[name], cookies[name]
        # the development configuration serves plain http
        assert "Secure" not in cookies[name]


def test_production_cookies_are_secure(app, monkeypatch, world):
    monkeypatch.setenv("TONGXIN_ENV", "production")
    prod = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "SECRET_KEY": GOOD_SECRET,
            "SERVER_NAME": "localhost",
            "PUBLIC_URL": "https://localhost",
        }
    )
    assert prod.config["SESSION_COOKIE_SECURE"] and prod.config["REMEMBER_COOKIE_SECURE"]
    with prod.test_client() as browser:
        page = browser.get("/login", base_url="https://localhost")
        token = CSRF_META.search(page.get_data(as_text=True)).group(1)
        response = browser.post(
            "/login",
            base_url="https://localhost",
            headers={"Referer": "https://localhost/login"},  # checked over https
            data={
                "identifier": "resident_a",
                "password": PASSWORD,
                "remember": "y",
                "csrf_token": token,
            },
        )
        assert response.status_code == 303
        cookies = set_cookies(response)
        for name in ("session", "remember_token"):
            assert "Secure" in cookies[name] and "HttpOnly" in cookies[name], cookies[name]
        assert "Strict-Transport-Security" in response.headers
    with prod.app_context():
        db.engine.dispose()


# --- a new session at sign-in ------------------------------------------------------------------


def test_sign_in_changes_session_and_csrf_token(client, world):
    page = client.get("/login").get_data(as_text=True)
    token_before = CSRF_META.search(page).group(1)
    cookie_before = client.get_cookie("session").value
    response = client.post(
        "/login",
        data={"identifier": "secretary_a", "password": PASSWORD, "csrf_token": token_before},
        csrf=False,
    )
    assert response.status_code == 303
    assert client.get_cookie("session").value != cookie_before
    page = client.get("/").get_data(as_text=True)
    token_after = CSRF_META.search(page).group(1)
    assert token_after != token_before
    # The token from before sign-in no longer works (a fixated token is useless).
    stale = client.post("/logout", data={"csrf_token": token_before}, csrf=False)
    assert stale.status_code == 400
    assert client.get("/").status_code == 200
    fresh = client.post("/logout", data={"csrf_token": token_after}, csrf=False)
    assert fresh.status_code == 303


def test_staff_get_no_remember_me_cookie(client, world):
    response = sign_in(client, "secretary_a", remember=True)
    assert "remember_token" not in set_cookies(response)
    assert client.get_cookie("remember_token") is None


# --- staff idle timeout ------------------------------------------------------------------------


def idle_for(client, seconds: int) -> None:
    with client.session_transaction() as sess:
        sess["seen"] = int(time.time()) - seconds


@pytest.mark.parametrize("username", ["gridworker_a", "secretary_a", "admin_a"])
def test_staff_session_ends_after_30_idle_minutes(client, world, username):
    sign_in(client, username)
    client.post("/language", data={"lang": "en"})
    idle_for(client, 31 * 60)
    response = client.get("/places/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/places/"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You were signed out after 30 minutes without activity." in page
    assert client.get("/").status_code == 302  # signed out for good, not just redirected


def test_idle_staff_htmx_request_gets_hx_redirect(client, world):
    sign_in(client, "secretary_a")
    idle_for(client, 31 * 60)
    response = client.get(
        "/volunteers/queue",
        headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/volunteers/queue"},
    )
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == "/login?next=/volunteers/queue"
    assert "<form" not in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_idle_staff_post_changes_nothing(client, world):
    sign_in(client, "secretary_a")
    idle_for(client, 31 * 60)
    response = client.post(f"/accounts/{world.a.resident.id}/disable")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login")
    db.session.refresh(world.a.resident)
    assert world.a.resident.active is True


def test_staff_active_within_30_minutes_stay_signed_in(client, world):
    sign_in(client, "secretary_a")
    idle_for(client, 29 * 60)
    response = client.get("/")
    assert response.status_code == 200
    # the last-seen time was refreshed: 29 more minutes later the session is still alive
    with client.session_transaction() as sess:
        assert time.time() - sess["seen"] < 5
        sess["seen"] -= 29 * 60
    assert client.get("/").status_code == 200


def test_last_seen_is_rewritten_at_most_once_a_minute(client, world):
    sign_in(client, "secretary_a")
    client.get("/")
    response = client.get("/")
    assert "session" not in set_cookies(response)  # nothing new: the cookie is not rewritten
    idle_for(client, 61)
    response = client.get("/")
    assert "session" in set_cookies(response)


def test_residents_have_no_idle_timeout(client, world):
    sign_in(client, "resident_a")
    idle_for(client, 5 * 60 * 60)
    assert client.get("/").status_code == 200


def test_staff_restored_from_a_remember_cookie_must_sign_in_again(client, app, world):
    """Staff get no remember-me cookie; one issued while the account was a resident's (without
    rotation, as before this rule) does not bring back a staff session past the idle limit."""
    sign_in(client, "resident_a", remember=True)
    remember_cookie = client.get_cookie("remember_token").value
    db.session.execute(
        User.__table__.update().where(User.id == world.a.resident.id).values(role="secretary")
    )
    db.session.commit()
    replay = app.test_client()
    replay.set_cookie("remember_token", remember_cookie)
    response = replay.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    assert replay.get("/").status_code == 302


# --- throttling: client address ----------------------------------------------------------------


def test_forged_x_forwarded_for_does_not_change_the_address(client, world):
    client.post(
        "/login",
        data={"identifier": "secretary_a", "password": "wrong-pass"},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    db.session.commit()
    assert db.session.scalars(select(Throttle.key).where(Throttle.key.like("n:%"))).all() == [
        "n:127.0.0.1"
    ]
    assert [row.address for row in audit_rows("sign_in_failed")] == ["127.0.0.1"]


def test_rotating_forged_addresses_does_not_escape_the_address_limit(client, app, world):
    app.config["LOGIN_ACCOUNTS_PER_ADDRESS"] = 3
    for n, name in enumerate(("x1", "x2", "x3")):
        client.post(
            "/login",
            data={"identifier": name, "password": "wrong-pass"},
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
        )
    response = client.post(
        "/login",
        data={"identifier": "secretary_a", "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.77"},
    )
    assert response.status_code == 200
    assert THROTTLED in response.get_data(as_text=True)


def test_a_configured_trusted_proxy_supplies_the_address(app, world):
    proxied = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "SECRET_KEY": app.config["SECRET_KEY"],
            "SERVER_NAME": "localhost",
            "TRUSTED_PROXIES": 1,
        }
    )
    proxied.test_client_class = type(app.test_client())
    browser = proxied.test_client()
    # One proxy: its own X-Forwarded-For entry (the last) is the client; earlier ones are forged.
    browser.post(
        "/login",
        data={"identifier": "secretary_a", "password": "wrong-pass"},
        headers={"X-Forwarded-For": "10.0.0.1, 203.0.113.9"},
    )
    db.session.commit()
    assert db.session.scalars(select(Throttle.key).where(Throttle.key.like("n:%"))).all() == [
        "n:203.0.113.9"
    ]
    with proxied.app_context():
        db.engine.dispose()


# --- throttling across gunicorn workers --------------------------------------------------------


class Pin:
    """A half-sent request: the sync worker that accepted it is stuck reading until release."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        time.sleep(0.3)  # let a worker accept it

    def release(self) -> None:
        self.sock.sendall(b"Connection: close\r\n\r\n")
        assert self.sock.recv(100).startswith(b"HTTP/1.1 200")
        self.sock.close()


def failed_attempt(port: int, username: str, password: str = "wrong-pass") -> str:
    browser = Browser(port)
    status, _headers, text = browser.request("GET", "/login")
    assert status == 200
    token = CSRF_META.search(text).group(1)
    status, _headers, text = browser.request(
        "POST", "/login", {"identifier": username, "password": password, "csrf_token": token}
    )
    assert status == 200, status
    return text


def test_throttling_holds_across_gunicorn_workers(app, world, database_url):
    """Worker X is held busy while worker Y serves 3 failures; then Y is held while X serves 2
    more: X has seen only 2 failures itself, yet refuses the right password (limit 5)."""
    db.session.commit()
    with gunicorn_serving(database_url, workers=2) as port:
        pin_x = Pin(port)
        for _ in range(3):
            assert WRONG in failed_attempt(port, "secretary_a")
        pin_y = Pin(port)
        pin_x.release()
        for _ in range(2):
            assert WRONG in failed_attempt(port, "secretary_a")
        text = failed_attempt(port, "secretary_a", PASSWORD)
        assert THROTTLED in text
        pin_y.release()
    db.session.commit()
    count = db.session.scalar(
        select(Throttle.attempts).where(Throttle.key == f"p:u{world.a.secretary.id}|a:127.0.0.1")
    )
    assert count == 5
    assert (
        db.session.scalar(select(User.last_login_at).where(User.username == "secretary_a")) is None
    )


# --- production start checks -------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, env, reason",
    [
        ({"SECRET_KEY": DEFAULT_SECRET}, {}, "development default"),
        ({"SECRET_KEY": "x" * 31}, {}, "shorter than 32"),
        ({"SECRET_KEY": GOOD_SECRET, "DEBUG": True}, {}, "debug is on"),
        ({"SECRET_KEY": GOOD_SECRET}, {"FLASK_DEBUG": "1"}, "debug is on"),
    ],
)
@pytest.mark.parametrize("selector", ["TONGXIN_ENV", "FLASK_ENV"])
def test_production_refuses_unsafe_settings(monkeypatch, overrides, env, reason, selector):
    monkeypatch.setenv(selector, "production")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ProductionConfigError, match=reason):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", **overrides})


def test_production_starts_with_a_good_key_and_development_with_the_default(monkeypatch):
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    monkeypatch.setenv("TONGXIN_ENV", "production")
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": "sqlite://",
            "SECRET_KEY": GOOD_SECRET,
            "PUBLIC_URL": "https://tongxin.example",
        }
    )
    assert app.config["PRODUCTION"] and not app.debug
    monkeypatch.delenv("TONGXIN_ENV")
    monkeypatch.delenv("FLASK_ENV", raising=False)
    dev = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": DEFAULT_SECRET})
    assert not dev.config.get("PRODUCTION") and not dev.config["SESSION_COOKIE_SECURE"]


def test_wsgi_refuses_to_start_in_production_without_a_secret_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "FLASK_DEBUG")}
    env.update(TONGXIN_ENV="production", DATABASE_URL=f"sqlite:///{tmp_path}/x.db")
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert re.search(
        r"ProductionConfigError: refusing to start in production: SECRET_KEY", result.stderr
    )


# --- audit rows --------------------------------------------------------------------------------


def test_sign_in_and_sign_out_are_audited(client, world):
    sign_in(client, "secretary_a")
    client.post("/logout")
    (entry,) = audit_rows("sign_in")
    assert (entry.actor_user_id, entry.actor_name, entry.outcome) == (
        world.a.secretary.id,
        "secretary_a",
        "ok",
    )
    assert entry.community_id == world.a.community.id and entry.address == "127.0.0.1"
    (entry,) = audit_rows("sign_out")
    assert entry.actor_user_id == world.a.secretary.id


def test_failed_sign_ins_are_audited_without_the_password(client, world):
    secret_guess = "Guess-Word-123"
    client.post("/login", data={"identifier": "secretary_a", "password": secret_guess})
    client.post("/login", data={"identifier": "nobody_here", "password": secret_guess})
    phone = world.a.resident.person.phone
    client.post("/login", data={"identifier": phone, "password": secret_guess})
    rows = audit_rows("sign_in_failed")
    assert [(r.actor_name, r.outcome) for r in rows] == [
        ("secretary_a", "failed"),
        ("no********", "failed"),  # unknown: two characters kept (a password typed there)
        ("resident_a", "failed"),  # found by phone: named by account, not by number
    ]
    assert rows[0].actor_user_id == world.a.secretary.id
    assert rows[0].community_id == world.a.community.id
    client.post("/login", data={"identifier": "139 0000 0000", "password": secret_guess})
    unknown_phone = audit_rows("sign_in_failed")[-1]
    assert unknown_phone.actor_name == "139****0000"
    for row in audit_rows("sign_in_failed"):
        text = " ".join(str(getattr(row, c.key)) for c in AuditEntry.__table__.columns)
        assert secret_guess not in text and phone not in text and "13900000000" not in text


def test_throttled_attempts_are_audited_as_refused(client, app, world):
    app.config["LOGIN_FAILURES_PER_ACCOUNT"] = 2
    for _ in range(3):
        client.post("/login", data={"identifier": "secretary_a", "password": "wrong-pass"})
    rows = audit_rows("sign_in_failed")
    assert [r.outcome for r in rows] == ["failed", "failed", "refused"]


def test_password_change_is_audited(client, world):
    sign_in(client, "secretary_a")
    client.post(
        "/account/password",
        data={"current": PASSWORD, "password": "quiet-river-42", "confirm": "quiet-river-42"},
    )
    (entry,) = audit_rows("password_changed")
    assert entry.actor_user_id == world.a.secretary.id == entry.target_id
    assert "quiet-river-42" not in entry.detail
