"""A forged Host (or X-Forwarded-Host) never reaches Open311's absolute URLs, neither in its own
answer nor in a page the page cache keeps and serves to the next client."""

from __future__ import annotations

import pytest

from portal.core import pagecache
from portal.extensions import db
from portal.help.models import RequestPhoto
from tests.help.conftest import in_make_request

BASE = "/open311/v2"
EVIL = "evil.example"


@pytest.fixture
def forgeable(app, cat_keys, monkeypatch):
    """The app as it runs without SERVER_NAME (url_for would then follow the Host header), one
    request of community A with a photo, submitted through A's key (only that key's answers
    carry its photo's absolute URL), and the page cache's minute pinned."""
    app.config["SERVER_NAME"] = None
    monkeypatch.setattr(pagecache, "current_minute", lambda: 29_000_000)
    world = cat_keys
    req = in_make_request(
        world.a, world.a.cat_water, status="accepted", api_key_id=world.a.cat_key_row.id
    )
    db.session.add(
        RequestPhoto(community_id=world.a.community.id, request_id=req.id, file="2030/x.jpg")
    )
    db.session.commit()
    return world


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_forged_hosts_do_not_poison_the_cached_request_list(client, forgeable, fmt):
    url = f"{BASE}/requests.{fmt}?jurisdiction_id={forgeable.a.community.id}"
    keyed = f"{url}&api_key={forgeable.a.cat_key}"
    for _ in range(12):
        for target in (url, keyed):
            forged = client.get(target, headers={"Host": EVIL})
            assert forged.status_code == 200
            assert EVIL not in forged.get_data(as_text=True)
        assert "http://localhost/request-photos/" in forged.get_data(as_text=True)
    normal = client.get(url, headers={"Accept-Encoding": "identity"})
    assert normal.headers["X-Page-Cache"] == "hit"  # the page the forged requests stored
    assert EVIL not in normal.get_data(as_text=True)
    own = client.get(keyed, headers={"Accept-Encoding": "identity"})
    assert own.headers.get("X-Page-Cache") != "hit"  # a keyed answer is never kept
    body = own.get_data(as_text=True)
    assert EVIL not in body
    assert "http://localhost/request-photos/" in body


def test_forwarded_host_from_a_trusted_proxy_is_not_used_either(client, app, forgeable):
    from portal.core.urls import external_url

    url = f"{BASE}/requests.json?api_key={forgeable.a.cat_key}"
    headers = {"X-Forwarded-Host": EVIL, "X-Forwarded-Proto": "https", "Host": EVIL}
    app.config["TRUSTED_PROXIES"] = 1
    from werkzeug.middleware.proxy_fix import ProxyFix

    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    (row,) = client.get(url, headers=headers).get_json()
    assert row["media_url"].startswith("http://localhost/request-photos/")
    with app.test_request_context("/", headers=headers):
        assert (
            external_url("open311.discovery", fmt="json")
            == f"http://localhost{BASE}/discovery.json"
        )


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_discovery_under_a_forged_host(client, app, fmt):
    app.config["SERVER_NAME"] = None
    body = client.get(f"{BASE}/discovery.{fmt}", headers={"Host": EVIL}).get_data(as_text=True)
    assert EVIL not in body
    assert "http://localhost/open311/v2" in body
