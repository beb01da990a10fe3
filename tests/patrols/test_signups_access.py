"""Who may do what on the volunteer side of shifts: every role and anonymous, grid limits, and
community A / B isolation (404 and nothing changed)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.patrols.models import Shift, Signup
from tests.patrols.conftest import SU_HX, su_hold, su_make_shift

ROLES = ("resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin")
SIGNERS = ("resident", "volunteer", "grid_worker", "secretary")


@pytest.fixture
def su_scene(world):
    """A shift in A's grid 1 (gridworker_a's), one in A's grid 2, and one in B with a sign-up."""
    grid1 = su_make_shift(world.a, title="一网格巡逻")
    grid2 = su_make_shift(world.a, title="二网格巡逻", grid_id=world.a.grid2.id)
    b_shift = su_make_shift(world.b, title="西城巡逻", capacity=3, starts_in=timedelta(days=3))
    su_hold(b_shift, world.b.volunteer.person)
    return type("Scene", (), {"grid1": grid1, "grid2": grid2, "b": b_shift})


def _b_state(shift: Shift) -> tuple:
    db.session.commit()
    taken = db.session.scalar(select(Shift.taken).where(Shift.id == shift.id))
    rows = db.session.execute(
        select(Signup.person_id, Signup.status).where(Signup.shift_id == shift.id)
    ).all()
    return taken, sorted(map(tuple, rows))


# page -> roles that get 200 (every other role gets 403)
GET_PAGES = {
    "/shifts": ROLES,
    "/shifts?view=week": ROLES,
    "/shifts/{grid1}": ROLES,
    "/shifts/{grid1}.ics": ROLES,
    "/my/shifts": SIGNERS,
}


@pytest.mark.parametrize("role", ROLES)
def test_get_access_by_role(client, auth, world, su_scene, role):
    auth.login(world.a.users[role].username)
    for page, allowed in GET_PAGES.items():
        response = client.get(page.format(grid1=su_scene.grid1.id))
        assert response.status_code == (200 if role in allowed else 403), page


@pytest.mark.parametrize(
    "url",
    [
        "/shifts",
        "/shifts/{grid1}",
        "/shifts/{grid1}.ics",
        "/my/shifts",
    ],
)
def test_anonymous_is_sent_to_sign_in(client, su_scene, url):
    response = client.get(url.format(grid1=su_scene.grid1.id))
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("action", ["signup", "cancel"])
def test_anonymous_cannot_sign_up_or_cancel(client, world, su_scene, action):
    before = _b_state(su_scene.grid1)
    response = client.post(f"/shifts/{su_scene.grid1.id}/{action}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    response = client.post(f"/shifts/{su_scene.grid1.id}/{action}", headers=SU_HX)
    assert response.headers["HX-Redirect"].startswith("/login")
    assert _b_state(su_scene.grid1) == before


def test_anonymous_cannot_reset_a_calendar(client, world):
    response = client.post("/my/calendar/reset")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("role", ROLES)
def test_sign_up_by_role(client, auth, world, su_scene, role):
    auth.login(world.a.users[role].username)
    response = client.post(f"/shifts/{su_scene.grid1.id}/signup")
    held = _b_state(su_scene.grid1)
    if role == "subdistrict_admin":
        assert response.status_code == 403
        assert held == (0, [])
    elif role == "volunteer":
        assert response.status_code == 303
        assert held == (1, [(world.a.volunteer.person.id, "confirmed")])
    else:  # residents and staff without an approved registration are told why, nothing saved
        assert response.status_code == 303
        assert held == (0, [])


@pytest.mark.parametrize("role", ROLES)
def test_cancel_by_role(client, auth, world, su_scene, role):
    user = world.a.users[role]
    if user.person is not None:
        su_hold(su_scene.grid1, user.person)
    auth.login(user.username)
    response = client.post(f"/shifts/{su_scene.grid1.id}/cancel")
    taken, rows = _b_state(su_scene.grid1)
    if role == "subdistrict_admin":
        assert response.status_code == 403
    else:
        assert response.status_code == 303
        assert (taken, rows) == (0, [(user.person.id, "cancelled")])


@pytest.mark.parametrize("role", ROLES)
def test_calendar_reset_by_role(client, auth, world, role):
    auth.login(world.a.users[role].username)
    response = client.post("/my/calendar/reset")
    assert response.status_code == (403 if role == "subdistrict_admin" else 303)


# --- grids ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/shifts/{id}"),
        ("GET", "/shifts/{id}.ics"),
        ("POST", "/shifts/{id}/signup"),
        ("POST", "/shifts/{id}/cancel"),
    ],
)
def test_grid_worker_cannot_reach_other_grids(client, auth, world, su_scene, method, path):
    before = _b_state(su_scene.grid2)
    auth.login("gridworker_a")
    response = client.open(path.format(id=su_scene.grid2.id), method=method)
    assert response.status_code == 404
    assert _b_state(su_scene.grid2) == before


# --- isolation: A's users get 404 for B's shifts, and B's rows stay as they were -------------

ID_ROUTES = [
    ("GET", "/shifts/{id}"),
    ("GET", "/shifts/{id}.ics"),
    ("POST", "/shifts/{id}/signup"),
    ("POST", "/shifts/{id}/cancel"),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("htmx", [False, True])
def test_other_community_shifts_are_not_found(client, auth, world, su_scene, role, htmx):
    before = _b_state(su_scene.b)
    auth.login(world.a.users[role].username)
    for method, path in ID_ROUTES:
        response = client.open(
            path.format(id=su_scene.b.id), method=method, headers=SU_HX if htmx else {}
        )
        body = response.get_data(as_text=True)
        if htmx:
            assert response.headers.get("HX-Retarget") == "#flash", (method, path)
        else:
            expected = 403 if (role == "subdistrict_admin" and method == "POST") else 404
            assert response.status_code == expected, (method, path)
        assert "西城巡逻" not in body
        assert world.b.volunteer.person.name not in body
    assert _b_state(su_scene.b) == before


def test_other_community_shifts_are_not_listed(client, auth, world, su_scene):
    for role in ROLES:
        auth.login(world.a.users[role].username)
        for url in ("/shifts", "/shifts?view=week", "/shifts?open=y", "/my/shifts"):
            assert "西城巡逻" not in client.get(url).get_data(as_text=True), (role, url)
        auth.logout()


def test_a_volunteer_of_b_cannot_use_a_shift_of_a_by_id(client, auth, world, su_scene):
    before = _b_state(su_scene.grid1)
    auth.login("volunteer_b")
    assert client.get(f"/shifts/{su_scene.grid1.id}").status_code == 404
    assert client.post(f"/shifts/{su_scene.grid1.id}/signup").status_code == 404
    assert _b_state(su_scene.grid1) == before


@pytest.mark.parametrize(("method", "path"), ID_ROUTES)
@pytest.mark.parametrize("ident", ["987654", "9" * 25])
def test_unknown_ids_are_not_found(client, auth, world, method, path, ident):
    auth.login("volunteer_a")
    assert client.open(path.format(id=ident), method=method).status_code == 404
