"""Who may do what in the rewards shop: every role and anonymous on every route, community B's
ids answer 404 (and change nothing), and a POST without its CSRF token is refused."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import text

from portal.extensions import db
from portal.rewards.models import Reward
from tests.rewards.conftest import ROLES, RW_HX, rw_give_points, rw_make_reward, rw_redeemed

SHOPPERS = ("resident", "volunteer", "grid_worker", "secretary")
READERS = ("secretary", "subdistrict_admin")
SECRETARY = ("secretary",)
PHOTO = "2030/" + "ab" * 16 + ".jpg"


def _side(side, uploads) -> SimpleNamespace:
    """A reward with a photo on disk, and a redemption of it by the side's volunteer."""
    reward = rw_make_reward(
        side, name=f"专属礼品{side.community.id}", cost=10, stock=5, photo=PHOTO
    )
    rw_give_points(side.volunteer.person, 100)
    redemption = rw_redeemed(side, reward)
    return SimpleNamespace(reward=reward.id, redemption=redemption.id)


@pytest.fixture
def scene(world, rw_uploads):
    (rw_uploads / "2030").mkdir(parents=True)
    (rw_uploads / PHOTO).write_bytes(b"\xff\xd8\xff\xe0 a stored jpeg")
    return SimpleNamespace(world=world, a=_side(world.a, rw_uploads), b=_side(world.b, rw_uploads))


# url -> roles answered 200 (others: 403; "owner" routes answer 404 to non-owners)
GET_ROUTES = {
    "/rewards": SHOPPERS,
    "/rewards/{reward}": SHOPPERS,
    "/rewards/mine": SHOPPERS,
    "/rewards/{reward}/photo": ROLES,
    "/rewards/manage": READERS,
    "/rewards/new": SECRETARY,
    "/rewards/{reward}/edit": SECRETARY,
    "/rewards/redemptions": READERS,
    "/rewards/redemptions/export.csv": READERS,
    "/rewards/redemptions/export.xlsx": READERS,
}
POST_ROUTES = {
    "/rewards/{reward}/redeem": SHOPPERS,
    "/rewards/new": SECRETARY,
    "/rewards/{reward}/edit": SECRETARY,
    "/rewards/redemptions/{redemption}/hand-over": SECRETARY,
    "/rewards/redemptions/{redemption}/cancel": SECRETARY,
}
ID_ROUTES = [
    ("GET", "/rewards/{reward}", SHOPPERS),
    ("GET", "/rewards/{reward}/photo", ROLES),
    ("GET", "/rewards/{reward}/edit", SECRETARY),
    ("GET", "/rewards/vouchers/{redemption}", SHOPPERS),
    ("POST", "/rewards/{reward}/redeem", SHOPPERS),
    ("POST", "/rewards/{reward}/edit", SECRETARY),
    ("POST", "/rewards/redemptions/{redemption}/hand-over", SECRETARY),
    ("POST", "/rewards/redemptions/{redemption}/cancel", SECRETARY),
]
TABLES = ("reward", "redemption", "points_ledger", "points_account", "notification")


def _snapshot() -> dict:
    db.session.commit()
    state = {
        name: sorted(map(tuple, db.session.execute(text(f'SELECT * FROM "{name}"'))), key=repr)
        for name in TABLES
    }
    db.session.commit()
    return state


@pytest.mark.parametrize("role", ROLES)
def test_get_routes_by_role(client, auth, scene, role):
    auth.login(scene.world.a.users[role].username)
    for url, allowed in GET_ROUTES.items():
        response = client.get(url.format(reward=scene.a.reward, redemption=scene.a.redemption))
        assert response.status_code == (200 if role in allowed else 403), (url, role)


@pytest.mark.parametrize("role", ROLES)
def test_voucher_is_for_its_owner_only(client, auth, scene, role):
    auth.login(scene.world.a.users[role].username)
    response = client.get(f"/rewards/vouchers/{scene.a.redemption}")
    expected = {"volunteer": 200, "subdistrict_admin": 403}.get(role, 404)
    assert response.status_code == expected
    if expected == 200:
        assert "no-store" in response.headers["Cache-Control"]


@pytest.mark.parametrize("role", ROLES)
def test_post_routes_refuse_other_roles_and_change_nothing(client, auth, scene, role):
    auth.login(scene.world.a.users[role].username)
    for url, allowed in POST_ROUTES.items():
        if role in allowed:
            continue
        before = _snapshot()
        path = url.format(reward=scene.a.reward, redemption=scene.a.redemption)
        data = {"name": "x", "cost": "1", "stock": "1", "reason": "x"}
        assert client.post(path, data=data).status_code == 403, (url, role)
        assert client.post(path, data=data, headers=RW_HX).headers["HX-Retarget"] == "#flash"
        assert _snapshot() == before, (url, role)


@pytest.mark.parametrize("role", ROLES)
def test_community_b_ids_are_not_found_and_nothing_changes(client, auth, scene, role):
    auth.login(scene.world.a.users[role].username)
    before = _snapshot()
    for method, url, allowed in ID_ROUTES:
        path = url.format(reward=scene.b.reward, redemption=scene.b.redemption)
        data = {"name": "x", "cost": "1", "stock": "1", "reason": "x"} if method == "POST" else None
        response = client.open(path, method=method, data=data)
        assert response.status_code == (404 if role in allowed else 403), (method, url, role)
        assert "专属礼品" not in response.get_data(as_text=True)
    assert _snapshot() == before


@pytest.mark.parametrize(
    ("method", "url"),
    [("GET", url) for url in GET_ROUTES]
    + [("GET", "/rewards/vouchers/{redemption}")]
    + [("POST", url) for url in POST_ROUTES],
)
def test_anonymous_is_sent_to_sign_in(client, scene, method, url):
    before = _snapshot()
    path = url.format(reward=scene.a.reward, redemption=scene.a.redemption)
    response = client.open(path, method=method)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    response = client.open(path, method=method, headers=RW_HX)
    assert response.headers["HX-Redirect"].startswith("/login")
    assert _snapshot() == before


def test_post_without_csrf_token_is_refused(client, auth, scene):
    auth.login("volunteer_a")
    before = _snapshot()
    response = client.post(f"/rewards/{scene.a.reward}/redeem", csrf=False)
    assert response.status_code == 400
    assert _snapshot() == before
    auth.logout()
    auth.login("secretary_a")
    response = client.post(
        f"/rewards/redemptions/{scene.a.redemption}/cancel", data={"reason": "x"}, csrf=False
    )
    assert response.status_code == 400
    assert _snapshot() == before


def test_ids_beyond_any_integer_are_not_found(client, auth, scene):
    auth.login("secretary_a")
    huge = 2**70
    assert client.get(f"/rewards/{huge}").status_code == 404
    assert client.get(f"/rewards/{huge}/edit").status_code == 404
    assert client.post(f"/rewards/redemptions/{huge}/hand-over").status_code == 404
    assert db.session.get(Reward, scene.a.reward) is not None
