"""Absolute URLs come from PUBLIC_URL, never from the request's Host; production answers 400 to
any Host (also one forwarded by a trusted proxy) that is not PUBLIC_URL's or an extra one."""

from __future__ import annotations

import re

import pytest
from flask import url_for

from portal import create_app
from portal.config import ConfigError, ProductionConfigError
from portal.core.urls import external_url
from portal.extensions import db

EVIL = "evil.example"
GOOD_SECRET = "a-production-secret-that-is-long-enough-0123456789"


@pytest.fixture
def production(monkeypatch, database_url):
    """Build a production app on the test database: ``production(**config)``."""
    monkeypatch.setenv("TONGXIN_ENV", "production")
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    made = []

    def build(**config):
        app = create_app(
            {
                "TESTING": True,
                "SQLALCHEMY_DATABASE_URI": database_url,
                "SECRET_KEY": GOOD_SECRET,
                "PUBLIC_URL": "https://tongxin.example",
                **config,
            }
        )
        made.append(app)
        return app

    yield build
    for app in made:
        with app.app_context():
            db.engine.dispose()


# --- production: trusted hosts ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/login", "/open311/v2/discovery.json"])
def test_production_answers_400_to_an_unknown_host(production, path):
    client = production().test_client()
    assert client.get(path, headers={"Host": EVIL}).status_code == 400
    assert client.get(path, headers={"Host": "tongxin.example"}).status_code == 200
    # The port does not matter; the name does.
    assert client.get(path, headers={"Host": "tongxin.example:443"}).status_code == 200
    assert client.get(path, headers={"Host": "tongxin.example.evil.example"}).status_code == 400


def test_an_untrusted_host_runs_no_view_and_writes_nothing(production):
    client = production().test_client()
    response = client.post(
        "/login", data={"identifier": "x", "password": "y"}, headers={"Host": EVIL}
    )
    assert response.status_code == 400
    assert "Set-Cookie" not in response.headers


def test_a_trusted_proxy_cannot_forward_another_host(production):
    app = production(TRUSTED_PROXIES=1)
    client = app.test_client()
    # nginx passes the client's Host on as X-Forwarded-Host: it is checked like a Host.
    forged = client.get("/healthz", headers={"Host": "127.0.0.1:8000", "X-Forwarded-Host": EVIL})
    assert forged.status_code == 400
    real = client.get(
        "/healthz", headers={"Host": "127.0.0.1:8000", "X-Forwarded-Host": "tongxin.example"}
    )
    assert real.status_code == 200


def test_extra_hosts_let_a_local_health_check_in(production):
    client = production(EXTRA_HOSTS=["127.0.0.1", "localhost"]).test_client()
    assert client.get("/healthz", headers={"Host": "127.0.0.1:8000"}).status_code == 200
    assert client.get("/healthz", headers={"Host": "localhost"}).status_code == 200
    assert client.get("/healthz", headers={"Host": EVIL}).status_code == 400
    # What it answers still names only the public address.
    body = client.get("/open311/v2/discovery.json", headers={"Host": "localhost"}).get_json()
    assert body["endpoints"][0]["url"] == "https://tongxin.example/open311/v2"


def test_development_accepts_any_host_but_links_to_public_url(app, client):
    app.config["SERVER_NAME"] = None
    assert app.config.get("TRUSTED_HOSTS") is None
    body = client.get("/open311/v2/discovery.json", headers={"Host": EVIL}).get_json()
    assert body["key_service"] == "http://localhost/catalogue/api-keys"


def test_production_refuses_to_start_without_public_url(monkeypatch):
    monkeypatch.setenv("TONGXIN_ENV", "production")
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    with pytest.raises(ProductionConfigError, match="PUBLIC_URL is not set"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": GOOD_SECRET})


@pytest.mark.parametrize(
    "value",
    ["tongxin.example", "ftp://tongxin.example", "https://", "https://tongxin.example/?a=1",
     "https://user:pw@tongxin.example", "https://tongxin.example:port"],
)  # fmt: skip
def test_a_malformed_public_url_is_refused(value):
    with pytest.raises(ConfigError, match="PUBLIC_URL"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "PUBLIC_URL": value})


def test_development_default_public_url(monkeypatch):
    monkeypatch.delenv("TONGXIN_ENV", raising=False)
    monkeypatch.delenv("FLASK_ENV", raising=False)
    dev = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "PUBLIC_URL": ""})
    assert dev.config["PUBLIC_URL"] == "http://127.0.0.1:5000"
    with dev.test_request_context("/", headers={"Host": EVIL}):
        assert external_url("certificates.verify", number="TX1") == (
            "http://127.0.0.1:5000/certificates/TX1"
        )


# --- external_url ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("public", "expected"),
    [
        ("https://tongxin.example", "https://tongxin.example/shifts/7"),
        ("https://tongxin.example/", "https://tongxin.example/shifts/7"),
        ("https://tongxin.example/portal", "https://tongxin.example/portal/shifts/7"),
        ("http://社区.example:8080/a/b/", "http://xn--dkrp89f.example:8080/a/b/shifts/7"),
    ],
)
def test_external_url_on_public_url(app, public, expected):
    app.config["PUBLIC_URL"] = public
    # Whatever the request says: another host, another scheme, another script root.
    environ = {"SCRIPT_NAME": "/elsewhere", "wsgi.url_scheme": "http"}
    with app.test_request_context("/", headers={"Host": EVIL}, environ_overrides=environ):
        assert external_url("shifts.detail", shift_id=7) == expected
        assert url_for("shifts.detail", shift_id=7) == "/elsewhere/shifts/7"  # links stay relative
    with app.app_context():  # outside a request too (commands, mail)
        assert external_url("shifts.detail", shift_id=7) == expected


def test_external_url_keeps_query_and_anchor_and_refuses_url_for_options(app):
    with app.test_request_context("/"):
        assert external_url("duty.checkin", shift_id=3, code="AB CD", _anchor="top") == (
            "http://localhost/shifts/3/checkin?code=AB+CD#top"
        )
        with pytest.raises(TypeError):
            external_url("shifts.detail", shift_id=3, _external=True)


def test_public_url_with_a_path_prefix_in_pages(app, client, world, auth):
    """The calendar feed address a volunteer copies: on PUBLIC_URL, even under a forged Host."""
    app.config.update(SERVER_NAME=None, PUBLIC_URL="https://tongxin.example/portal")
    auth.login("volunteer_a")
    cookie = client.get_cookie("session", domain="localhost")
    client.set_cookie("session", cookie.value, domain=EVIL)
    page = client.get("/my/shifts", headers={"Host": EVIL}).get_data(as_text=True)
    feed = re.search(r'id="feed-url" value="([^"]+)"', page).group(1)
    assert feed.startswith("https://tongxin.example/portal/calendar/")
    assert EVIL not in page
