"""Health check, error pages, security headers, htmx rendering rules."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.places.models import Subdistrict


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_healthz_503_when_database_is_down(client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(db.session, "execute", broken)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "unavailable"}


def test_unknown_page_is_a_friendly_404(client, auth, world):
    client.post("/language", data={"lang": "en"})
    response = client.get("/no/such/page")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "We could not find that page or record." in page
    assert "<html" in page


def test_crash_rolls_back_and_shows_friendly_500(app, client):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/_boom")
    def boom():
        db.session.add(Subdistrict(name="半截数据"))
        db.session.flush()
        raise RuntimeError("boom")

    response = client.get("/_boom")
    assert response.status_code == 500
    assert "没有保存任何内容" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Subdistrict.id))) == 0


def test_security_headers_on_every_response(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_signed_in_pages_are_not_cached(client, auth, world):
    auth.login("secretary_a")
    assert client.get("/").headers["Cache-Control"] == "no-store"


def test_pages_carry_htmx_config_and_csrf_meta(client):
    page = client.get("/login").get_data(as_text=True)
    assert 'name="htmx-config"' in page and '"allowEval":false' in page
    assert 'name="csrf-token"' in page
    assert "htmx-2.0.11.min.js" in page


def test_no_inline_script_in_templates():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "templates"
    for path in root.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), path
        assert not re.search(r"\son[a-z]+=\"", text), path
        assert "hx-on" not in text, path


@pytest.mark.parametrize(
    "role", ["resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin"]
)
def test_home_page_for_every_role(client, auth, world, role):
    user = world.a.users[role]
    auth.login(user.username)
    response = client.get("/")
    assert response.status_code == 200
    assert user.display_name in response.get_data(as_text=True)


def test_oversized_request_gets_a_friendly_413(client, app):
    client.post("/language", data={"lang": "en"})
    response = client.post("/login", data={"identifier": "x" * (13 * 1024 * 1024)})
    assert response.status_code == 413
    assert "at most 10 MB" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "url",
    [
        "/people/" + "9" * 25,
        "/volunteers/?page=" + "9" * 25,
        "/places/?gpage=" + "9" * 25,
        "/shifts/" + str(2**63),
    ],
)
def test_absurd_ids_and_pages_are_not_found(client, auth, world, url):
    auth.login("secretary_a")
    assert client.get(url).status_code == 404
