"""Who may do what: every role and anonymous on every route, and community A/B isolation."""

from __future__ import annotations

import pytest

from tests.volunteers.conftest import HX, make_applicant, reload, snapshot

ROLES = ("resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin")
STAFF = ("grid_worker", "secretary", "subdistrict_admin")

# page -> roles that get 200 (every other role gets 403)
GET_PAGES = {
    "mine": ("resident", "volunteer", "grid_worker", "secretary"),
    "queue": ("grid_worker", "secretary"),
    "roster": STAFF,
    "detail": STAFF,
    "export": STAFF,
}


def _url(page: str, world) -> str:
    # volunteer_a serves in A's grid 1, which gridworker_a looks after.
    volunteer_id = world.a.volunteer.person.volunteer.id
    return {
        "mine": "/volunteers/mine",
        "queue": "/volunteers/queue",
        "roster": "/volunteers/",
        "detail": f"/volunteers/{volunteer_id}",
        "export": "/volunteers/export.csv",
    }[page]


@pytest.mark.parametrize("page", GET_PAGES)
@pytest.mark.parametrize("role", ROLES)
def test_get_access_by_role(client, auth, world, page, role):
    auth.login(world.a.users[role].username)
    response = client.get(_url(page, world), buffered=True)
    assert response.status_code == (200 if role in GET_PAGES[page] else 403)


@pytest.mark.parametrize("page", GET_PAGES)
def test_anonymous_is_sent_to_sign_in(client, world, page):
    response = client.get(_url(page, world))
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_anonymous_cannot_decide(client, world, action):
    pending = world.a.pending_volunteer
    before = snapshot(pending)
    response = client.post(f"/volunteers/{pending.id}/{action}", data={"reason": "x"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert snapshot(pending) == before


def test_anonymous_htmx_request_is_redirected_to_sign_in(client, world):
    pending = world.a.pending_volunteer
    response = client.post(f"/volunteers/{pending.id}/approve", headers=HX)
    assert "/login" in response.headers["HX-Redirect"]
    assert reload(pending).status == "pending"


@pytest.mark.parametrize("action", ["approve", "reject"])
@pytest.mark.parametrize("role", ROLES)
def test_decide_by_role(client, auth, world, role, action):
    applicant = make_applicant(world.a, grid=world.a.grid)  # in gridworker_a's grid
    before = snapshot(applicant)
    auth.login(world.a.users[role].username)
    response = client.post(f"/volunteers/{applicant.id}/{action}", data={"reason": "资料不全"})
    if role in ("grid_worker", "secretary"):
        assert response.status_code == 303
        assert reload(applicant).status == {"approve": "approved", "reject": "rejected"}[action]
    else:
        assert response.status_code == 403
        assert snapshot(applicant) == before


# --- isolation: A's users get 404 for B's ids, and B's rows stay as they were ---------------

ID_ROUTES = [
    ("GET", "/volunteers/{id}"),
    ("POST", "/volunteers/{id}/approve"),
    ("POST", "/volunteers/{id}/reject"),
]


@pytest.mark.parametrize(("method", "route"), ID_ROUTES)
@pytest.mark.parametrize("role", ["grid_worker", "secretary", "subdistrict_admin"])
def test_other_community_ids_are_not_found(client, auth, world, role, method, route):
    target = world.b.pending_volunteer
    before = snapshot(target)
    auth.login(world.a.users[role].username)
    url = route.format(id=target.id)
    response = client.get(url) if method == "GET" else client.post(url, data={"reason": "越权"})
    expected = 403 if (role == "subdistrict_admin" and method == "POST") else 404
    assert response.status_code == expected
    assert snapshot(target) == before
    assert world.b.pending.person.name not in response.get_data(as_text=True)


@pytest.mark.parametrize(("method", "route"), ID_ROUTES)
def test_grid_worker_cannot_reach_other_grids(client, auth, world, method, route):
    target = world.a.pending_volunteer  # A's grid 2: not gridworker_a's
    before = snapshot(target)
    auth.login("gridworker_a")
    url = route.format(id=target.id)
    response = client.get(url) if method == "GET" else client.post(url, data={"reason": "越权"})
    assert response.status_code == 404
    assert snapshot(target) == before


@pytest.mark.parametrize(("method", "route"), ID_ROUTES)
def test_unknown_ids_are_not_found(client, auth, world, method, route):
    auth.login("secretary_a")
    url = route.format(id=987654)
    response = client.get(url) if method == "GET" else client.post(url, data={"reason": "x"})
    assert response.status_code == 404


def test_lists_never_show_the_other_community(client, auth, world):
    b_names = {world.b.volunteer.person.name, world.b.pending.person.name}
    for username in ("secretary_a", "gridworker_a", "admin_a"):
        auth.login(username)
        for url in ("/volunteers/", "/volunteers/queue", "/volunteers/export.csv"):
            page = client.get(url, buffered=True).get_data(as_text=True)
            assert not any(name in page for name in b_names), (username, url)
        page = client.get(f"/volunteers/?grid={world.b.grid.id}").get_data(as_text=True)
        assert not any(name in page for name in b_names)
        auth.logout()


def test_decisions_without_csrf_are_refused(client, auth, world):
    pending = world.a.pending_volunteer
    before = snapshot(pending)
    auth.login("secretary_a")
    response = client.post(f"/volunteers/{pending.id}/approve", csrf=False)
    assert response.status_code == 400
    assert snapshot(pending) == before
