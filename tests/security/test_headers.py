"""Every answer carries the browser-side protections: CSP, nosniff, same-origin referrers, no
framing, no caching of anything a signed-in user sees, ``Vary`` wherever htmx headers choose the
answer; and the vendored htmx is the file its hash pins."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from portal import create_app
from portal.certificates.models import Certificate
from portal.certificates.services import new_number
from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.help.models import Category, HelpRequest
from portal.notifications.models import Notification
from portal.patrols.codes import new_checkin_code
from portal.patrols.models import Hazard, PatrolReport, Shift, Signup
from portal.points import ledger
from portal.rewards.models import Redemption, Reward

ROOT = Path(__file__).resolve().parents[2]
HTMX_FILE = ROOT / "static" / "vendor" / "htmx-2.0.11.min.js"
HX = {"HX-Request": "true"}
# The id given for a kind of object the scene does not make: the route answers its 404 page.
UNKNOWN_ID = 999_999


@pytest.fixture
def scene(world):
    """World A with one of each object that a GET route takes an id of."""
    side = world.a
    start = now_utc() - timedelta(minutes=10)
    shift = Shift(
        community_id=side.community.id, grid_id=side.grid.id, kind="door_watch", title="巡逻",
        route=[{"building_id": side.building.id, "label": ""}], starts_at=start,
        ends_at=start + timedelta(hours=2), capacity=5, taken=1, checkin_code=new_checkin_code(),
        leader_id=side.volunteer.person.id,
    )  # fmt: skip
    db.session.add(shift)
    db.session.flush()
    signup = Signup(
        community_id=side.community.id, shift_id=shift.id, person_id=side.volunteer.person.id,
        status="confirmed",
    )  # fmt: skip
    report = PatrolReport(community_id=side.community.id, shift_id=shift.id, summary="正常")
    report.hazards = [Hazard(community_id=side.community.id, description="路灯坏了")]
    side.volunteer.calendar_token = "calendar-token-for-the-headers-test"
    major = Category(community_id=side.community.id, code="repair", name_zh="报修", name_en="R")
    db.session.add_all([signup, report, major])
    db.session.flush()
    minor = Category(
        community_id=side.community.id, parent_id=major.id, code="repair.water", name_zh="漏水",
        name_en="Leak", handler="grid_worker", time_limit_hours=24,
    )  # fmt: skip
    db.session.add(minor)
    db.session.flush()
    help_request = HelpRequest(
        community_id=side.community.id, grid_id=side.grid.id, category_id=minor.id,
        requester_id=side.volunteer.person.id, created_by_id=side.volunteer.id,
        description="漏水", household_id=side.household.id,
    )  # fmt: skip
    db.session.add(
        Notification(
            community_id=side.community.id, user_id=side.volunteer.id, kind="shift_changed",
            params={"title": "巡逻", "when": "2030-01-07 19:00"}, link="/", dedupe_key="h",
        )
    )  # fmt: skip
    person_id = side.volunteer.person.id
    ledger.adjust(person_id, points=100, hours=Decimal(3), reason="开账", actor_id=None)
    reward = Reward(community_id=side.community.id, name="大米", cost=10, stock=5)
    db.session.add_all([help_request, reward])
    db.session.flush()
    redemption = Redemption(
        community_id=side.community.id, reward_id=reward.id, person_id=person_id, cost=10,
        voucher_code="V0000001",
    )  # fmt: skip
    certificate = Certificate(
        number=new_number(2030), person_id=person_id, community_id=side.community.id,
        holder_name=side.volunteer.person.name, community_name=side.community.name,
        period_start=date(2030, 1, 1), period_end=date(2030, 1, 31), total_hours=Decimal(3),
        activity_count=1, activities=[],
    )  # fmt: skip
    db.session.add_all([redemption, certificate])
    db.session.commit()
    world.ids = {
        "shift_id": shift.id, "signup_id": signup.id, "hazard_id": report.hazards[0].id,
        "token": side.volunteer.calendar_token, "person_id": side.resident.person.id,
        "household_id": side.household.id, "grid_id": side.grid.id,
        "estate_id": side.estate.id, "building_id": side.building.id,
        "entrance_id": side.entrance.id, "community_id": side.community.id,
        "volunteer_id": side.pending_volunteer.id, "request_id": help_request.id,
        "category_id": minor.id, "code": "repair.water", "reward_id": reward.id,
        "redemption_id": redemption.id, "number": certificate.number,
        "filename": "css/app.css",
    }  # fmt: skip
    return world


def _url(rule, ids: dict) -> str:
    """The rule's path with this scene's ids (an unknown kind of id: one that does not exist)."""
    path = rule.rule
    for name in rule.arguments:
        if name == "fmt":
            value = "json" if rule.endpoint.startswith("open311.") else "csv"
        else:
            value = ids.get(name, UNKNOWN_ID)
        path = re.sub(rf"<(?:[a-z]+:)?{name}>", str(value), path)
    return path


def _get_routes(app):
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods:
            yield rule


def _signature(response) -> tuple:
    """What a cache must not mix up: status, page or fragment, where it sends the browser."""
    body = response.get_data(as_text=True) if response.mimetype == "text/html" else ""
    return (
        response.status_code,
        "<html" in body,
        response.headers.get("Location"),
        response.headers.get("HX-Redirect"),
        response.headers.get("HX-Retarget"),
        response.mimetype,
    )


def _assert_protected(response, url: str, *, signed_in: bool, endpoint: str) -> None:
    headers = response.headers
    csp = headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp and "script-src 'self'" in csp, url
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, url
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, url
    assert headers.get("X-Content-Type-Options") == "nosniff", url
    assert headers.get("Referrer-Policy") == "same-origin", url
    assert headers.get("X-Frame-Options") == "DENY", url
    assert "Strict-Transport-Security" not in headers, url  # plain HTTP in tests
    cache = headers.get("Cache-Control", "")
    if endpoint == "static":
        assert "no-store" not in cache and "public" not in cache, url
    elif signed_in or endpoint != "shifts.calendar_feed":
        assert "no-store" in cache, (url, cache)
    else:
        # The secret calendar address: a calendar app may keep it a while, no shared cache.
        assert "private" in cache and "public" not in cache, (url, cache)


@pytest.mark.parametrize("username", [None, "volunteer_a", "secretary_a"])
def test_every_get_route_carries_the_headers(app, client, auth, scene, username):
    if username:
        auth.login(username)
    answered: dict[str, int] = {}
    for rule in _get_routes(app):
        url = _url(rule, scene.ids)
        plain = client.get(url)
        fragment = client.get(url, headers=HX)
        for response in (plain, fragment):
            assert response.status_code < 500, (url, response.status_code)
            _assert_protected(response, url, signed_in=bool(username), endpoint=rule.endpoint)
        if _signature(plain) != _signature(fragment):
            for response in (plain, fragment):
                vary = response.headers.get("Vary", "")
                assert "HX-Request" in vary, (url, _signature(plain), _signature(fragment))
        answered[rule.endpoint] = plain.status_code
    # The walk really reached the pages (not a wall of 404s).
    reached = [endpoint for endpoint, status in answered.items() if status == 200]
    assert len(answered) > 100
    least = {None: 5, "volunteer_a": 30, "secretary_a": 60}[username]
    assert len(reached) >= least, (len(reached), sorted(answered.items()))


def test_fragments_and_error_pages_vary_on_htmx_headers(client, auth, scene):
    auth.login("secretary_a")
    page = client.get("/people/?q=x")
    fragment = client.get("/people/?q=x", headers=HX)
    restore = client.get("/people/?q=x", headers={**HX, "HX-History-Restore-Request": "true"})
    assert "<html" in page.get_data(as_text=True)
    assert "<html" not in fragment.get_data(as_text=True)
    # On a history miss htmx asks again with this header and must get the whole page.
    assert "<html" in restore.get_data(as_text=True)
    for response in (page, fragment, restore):
        vary = response.headers["Vary"]
        assert all(h in vary for h in ("HX-Request", "HX-Boosted", "HX-History-Restore-Request"))
    missing = client.get(f"/people/{UNKNOWN_ID}")
    missing_hx = client.get(f"/people/{UNKNOWN_ID}", headers=HX)
    assert missing.status_code == 404 and missing_hx.headers["HX-Retarget"] == "#flash"
    assert "HX-Request" in missing.headers["Vary"] and "HX-Request" in missing_hx.headers["Vary"]


def test_redirects_exports_and_downloads_are_not_stored(client, auth, scene):
    auth.login("secretary_a")
    exported = client.get("/volunteers/export.csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert "no-store" in exported.headers["Cache-Control"]
    moved = client.get("/people")  # the list lives at /people/
    assert moved.status_code in (301, 308) and "no-store" in moved.headers["Cache-Control"]
    auth.logout()
    auth.login("volunteer_a")
    calendar = client.get(f"/shifts/{scene.ids['shift_id']}.ics")
    assert calendar.status_code == 200 and "no-store" in calendar.headers["Cache-Control"]
    auth.logout()
    to_login = client.get("/people/")
    assert to_login.status_code == 302 and "no-store" in to_login.headers["Cache-Control"]
    assert "HX-Request" in to_login.headers["Vary"]
    widget = client.get("/people/", headers=HX)
    assert widget.headers["HX-Redirect"].startswith("/login")
    assert "HX-Request" in widget.headers["Vary"]


def test_hsts_only_where_cookies_are_secure(database_url):
    secure = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": "test-secret-key-that-is-long-enough-1234",
            "SESSION_COOKIE_SECURE": True,
        }
    )
    with secure.app_context():
        response = secure.test_client().get("/login")
        db.session.remove()
        db.engine.dispose()
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_htmx_is_pinned_by_its_hash(client):
    digest = hashlib.sha384(HTMX_FILE.read_bytes()).digest()
    expected = "sha384-" + base64.b64encode(digest).decode()
    page = client.get("/login").get_data(as_text=True)
    tags = re.findall(r"<script [^>]*htmx-2\.0\.11\.min\.js[^>]*>", page)
    assert len(tags) == 1
    assert f'integrity="{expected}"' in tags[0]
    # The page loads the very file that was hashed.
    served = client.get(re.search(r'src="([^"]+)"', tags[0]).group(1))
    assert hashlib.sha384(served.get_data()).digest() == digest


def test_htmx_config_allows_no_eval_no_scripts_and_no_history_cache(client):
    page = client.get("/login").get_data(as_text=True)
    raw = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", page).group(1)
    config = json.loads(raw)
    assert config["selfRequestsOnly"] is True
    assert config["allowEval"] is False
    assert config["allowScriptTags"] is False
    assert config["includeIndicatorStyles"] is False
    assert config["historyCacheSize"] == 0


def test_indicator_styles_come_from_the_stylesheet(client):
    css = client.get("/static/css/app.css").get_data(as_text=True)
    assert re.search(r"\.htmx-indicator\s*\{[^}]*opacity:\s*0", css)
    assert re.search(r"\.htmx-request \.htmx-indicator[^{]*\{[^}]*opacity:\s*1", css)


# What the strict CSP and allowEval: false would break: inline script or style, inline event
# handlers, hx-on, js: values and hx-trigger event filters ([...]) all need eval or inline code.
FORBIDDEN_IN_TEMPLATES = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "<style> element"),
    (re.compile(r"\sstyle=", re.I), "style= attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "inline event handler"),
    (re.compile(r"(data-)?hx-on", re.I), "hx-on"),
    (re.compile(r"hx-(vals|headers)=['\"]\s*(js|javascript):", re.I), "js: in hx-vals"),
    (re.compile(r"hx-trigger=\"[^\"]*\[", re.I), "hx-trigger event filter"),
    (re.compile(r"\"hx-trigger\":\s*\"[^\"]*\[", re.I), "hx-trigger event filter"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def test_templates_need_neither_eval_nor_inline_code():
    found = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        for pattern, what in FORBIDDEN_IN_TEMPLATES:
            for match in pattern.finditer(text):
                found.append(f"{path.relative_to(ROOT)}: {what}: {match.group(0)!r}")
    assert found == []
