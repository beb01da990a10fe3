"""The default catalogue, its editing by the secretary, and the API keys page."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import event, func, select

from portal.extensions import db
from portal.help.catalogue import DEFAULT_CATALOGUE, active_minors, seed_catalogue
from portal.help.models import HANDLERS, ApiKey, Category
from tests.help.conftest import cat_category

ROLES = ("anonymous", "resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin")
HX = {"HX-Request": "true"}


def _count(community_id: int, *, major: bool) -> int:
    test = Category.parent_id.is_(None) if major else Category.parent_id.is_not(None)
    return db.session.scalar(
        select(func.count(Category.id)).where(Category.community_id == community_id, test)
    )


def _english(client) -> None:
    client.post("/language", data={"lang": "en"})


def _sign_in(auth, world, role):
    if role != "anonymous":
        auth.login(world.a.users[role].username)


# --- seeding ----------------------------------------------------------------------------------


def test_default_catalogue_is_complete_and_consistent():
    codes = [m.code for m in DEFAULT_CATALOGUE] + [
        n.code for m in DEFAULT_CATALOGUE for n in m.minors
    ]
    assert len(DEFAULT_CATALOGUE) >= 12
    assert sum(len(m.minors) for m in DEFAULT_CATALOGUE) >= 40
    assert len(codes) == len(set(codes))
    for major in DEFAULT_CATALOGUE:
        for minor in major.minors:
            assert minor.code.startswith(major.code + ".")
            assert len(minor.code) <= 40 and len(minor.name_zh) <= 60
            assert minor.handler in HANDLERS
            assert 2 <= minor.hours <= 8760
            assert minor.description and len(minor.description) <= 300
            if major.kind == "neighbour_help":
                assert 5 <= minor.points <= 20
            else:
                assert minor.points == 0


def test_seed_catalogue_counts_and_is_idempotent(world):
    community_id = world.a.community.id
    added = seed_catalogue(community_id)
    db.session.commit()
    majors, minors = _count(community_id, major=True), _count(community_id, major=False)
    assert majors >= 12 and minors >= 40 and added == majors + minors
    shopping = cat_category(world.a.community, "help.shopping")
    assert shopping.kind == "neighbour_help" and shopping.handler == "volunteer_pool"
    assert shopping.points > 0 and shopping.parent.code == "help"
    water = cat_category(world.a.community, "repair.water")
    assert water.kind == "report" and water.points == 0 and water.handler == "property_company"
    # A secretary's edit survives a second run, which adds nothing.
    water.time_limit_hours = 6
    db.session.commit()
    assert seed_catalogue(community_id) == 0
    db.session.commit()
    assert _count(community_id, major=False) == minors
    assert cat_category(world.a.community, "repair.water").time_limit_hours == 6
    # Other communities are untouched until seeded.
    assert _count(world.b.community.id, major=False) == 0


def test_seed_adds_only_missing_codes(world):
    community_id = world.a.community.id
    total = seed_catalogue(community_id)
    db.session.delete(cat_category(world.a.community, "help.haircut"))
    db.session.commit()
    assert seed_catalogue(community_id) == 1
    db.session.commit()
    assert _count(community_id, major=True) + _count(community_id, major=False) == total


def test_create_community_command_seeds_the_catalogue(app, runner):
    result = runner.invoke(args=["create-community", "--subdistrict", "新街道", "--name", "新社区"])
    assert result.exit_code == 0, result.output
    from portal.places.models import Community

    community = db.session.scalar(select(Community).where(Community.name == "新社区"))
    assert _count(community.id, major=False) >= 40


# --- the catalogue page -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_catalogue_page_access(client, auth, cat_world, role):
    _sign_in(auth, cat_world, role)
    response = client.get("/catalogue")
    if role == "anonymous":
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    elif role in ("resident", "volunteer"):
        assert response.status_code == 403
    else:
        assert response.status_code == 200
        body = response.get_data(as_text=True)
        assert "代买代购" in body and "repair.water" in body
        edit_link = f"/catalogue/{cat_world.a.cat_water.id}/edit"
        assert (edit_link in body) == (role == "secretary")


def test_catalogue_page_in_english_and_as_fragment(client, auth, cat_world):
    auth.login("secretary_a")
    _english(client)
    body = client.get("/catalogue").get_data(as_text=True)
    assert "Shopping for an elder" in body and "Volunteer pool" in body
    assert "Add a major category" in body
    response = client.get("/catalogue", headers=HX)
    fragment = response.get_data(as_text=True)
    assert "<html" not in fragment and 'id="catalogue"' in fragment
    assert "HX-Request" in response.headers["Vary"]


def test_subdistrict_admin_picks_a_community(client, auth, cat_world, make_community):
    make_community(cat_world.a.subdistrict, name="社区A2")
    auth.login("admin_a")
    body = client.get("/catalogue").get_data(as_text=True)
    assert "社区A2" in body
    assert client.get(f"/catalogue?community_id={cat_world.b.community.id}").status_code == 404


def test_catalogue_page_runs_a_fixed_number_of_queries(app, client, auth, cat_world):
    auth.login("secretary_a")
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        client.get("/catalogue")
        before = len(statements)
        major = cat_world.a.cat_repair
        for n in range(5):
            db.session.add(
                Category(
                    community_id=major.community_id, parent_id=major.id, code=f"x.{n}",
                    name_zh=f"新{n}", name_en=f"New {n}", handler="grid_worker",
                    time_limit_hours=5,
                )
            )  # fmt: skip
        db.session.commit()
        statements.clear()
        client.get("/catalogue")
        assert len(statements) == before
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


# --- editing ----------------------------------------------------------------------------------


def _minor_form(**overrides) -> dict:
    data = {
        "name_zh": "水管爆裂",
        "name_en": "Burst pipe",
        "description": "水管爆裂，需要马上关阀。",
        "handler": "grid_worker",
        "time_limit_hours": "3",
        "points": "0",
        "active": "y",
    }
    data.update(overrides)
    return data


def test_secretary_edits_a_minor(client, auth, cat_world):
    auth.login("secretary_a")
    water = cat_world.a.cat_water
    page = client.get(f"/catalogue/{water.id}/edit")
    assert page.status_code == 200 and "水管漏水" in page.get_data(as_text=True)
    response = client.post(f"/catalogue/{water.id}/edit", data=_minor_form())
    assert response.status_code == 303 and response.headers["Location"] == "/catalogue"
    water = db.session.get(Category, water.id)
    assert (water.name_zh, water.name_en) == ("水管爆裂", "Burst pipe")
    assert water.handler == "grid_worker"
    assert water.time_limit_hours == 3 and water.active and water.code == "repair.water"


def test_deactivated_category_is_not_offered_but_stays(client, auth, cat_world):
    auth.login("secretary_a")
    water = cat_world.a.cat_water
    data = _minor_form()
    del data["active"]
    assert client.post(f"/catalogue/{water.id}/edit", data=data).status_code == 303
    assert db.session.get(Category, water.id).active is False
    offered = {c.code for c in active_minors(cat_world.a.community.id)}
    assert "repair.water" not in offered and "help.shopping" in offered
    assert "未开放" in client.get("/catalogue").get_data(as_text=True)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"time_limit_hours": "0"}, "time_limit_hours", "between 1 and 8760 hours"),
        ({"time_limit_hours": "8761"}, "time_limit_hours", "between 1 and 8760 hours"),
        ({"time_limit_hours": ""}, "time_limit_hours", "between 1 and 8760 hours"),
        ({"points": "1001"}, "points", "Points must be between 0 and 1000"),
        ({"points": "-1"}, "points", "Points must be between 0 and 1000"),
        ({"name_zh": "  "}, "name_zh", "Enter the Chinese name."),
        ({"name_en": ""}, "name_en", "Enter the English name."),
        ({"handler": "mayor"}, "handler", "Choose who handles requests"),
        ({"description": "长" * 301}, "description", "longer than 300 characters"),
    ],
)
def test_edit_validation(client, auth, cat_world, overrides, field, message):
    auth.login("secretary_a")
    _english(client)
    water = cat_world.a.cat_water
    response = client.post(f"/catalogue/{water.id}/edit", data=_minor_form(**overrides))
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and message in body
    assert f'id="field-{field}"' in body
    unchanged = db.session.get(Category, water.id)
    assert unchanged.name_zh == "水管漏水" and unchanged.time_limit_hours == 4


def test_edit_a_major_keeps_its_kind(client, auth, cat_world):
    auth.login("secretary_a")
    major = cat_world.a.cat_repair
    data = {"name_zh": "维修", "name_en": "Repairs", "description": "", "active": "y"}
    response = client.post(f"/catalogue/{major.id}/edit", data={**data, "kind": "neighbour_help"})
    assert response.status_code == 303
    major = db.session.get(Category, major.id)
    assert major.name_zh == "维修" and major.kind == "report" and major.handler is None


def test_add_minor_and_major(client, auth, cat_world):
    auth.login("secretary_a")
    major = cat_world.a.cat_repair
    response = client.post(f"/catalogue/{major.id}/new", data=_minor_form(points="0"))
    assert response.status_code == 303
    added = db.session.scalar(select(Category).where(Category.name_zh == "水管爆裂"))
    assert added.parent_id == major.id and added.kind == "report" and added.active
    assert added.code.startswith("repair.") and added.community_id == major.community_id
    # Only under a major.
    assert client.get(f"/catalogue/{added.id}/new").status_code == 404
    response = client.post(
        "/catalogue/new",
        data={"name_zh": "文体活动", "name_en": "Culture and sport", "kind": "neighbour_help"},
    )
    assert response.status_code == 303
    new_major = db.session.scalar(select(Category).where(Category.name_zh == "文体活动"))
    assert new_major.parent_id is None and new_major.kind == "neighbour_help"
    body = client.get("/catalogue").get_data(as_text=True)
    assert "文体活动" in body and "水管爆裂" in body


def test_add_major_validation(client, auth, cat_world):
    auth.login("secretary_a")
    _english(client)
    before = _count(cat_world.a.community.id, major=True)
    response = client.post("/catalogue/new", data={"name_zh": "", "name_en": "", "kind": "x"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Enter the Chinese name." in body and "Choose the kind of requests." in body
    assert _count(cat_world.a.community.id, major=True) == before


@pytest.mark.parametrize("role", ["resident", "volunteer", "grid_worker", "subdistrict_admin"])
def test_only_the_secretary_edits(client, auth, cat_world, role):
    auth.login(cat_world.a.users[role].username)
    water, major = cat_world.a.cat_water, cat_world.a.cat_repair
    assert client.get(f"/catalogue/{water.id}/edit").status_code == 403
    assert client.post(f"/catalogue/{water.id}/edit", data=_minor_form()).status_code == 403
    assert client.post(f"/catalogue/{major.id}/new", data=_minor_form()).status_code == 403
    assert client.post("/catalogue/new", data={"name_zh": "x", "name_en": "x"}).status_code == 403
    assert client.get("/catalogue/api-keys").status_code == 403
    assert db.session.get(Category, water.id).name_zh == "水管漏水"


def test_anonymous_is_sent_to_sign_in(client, cat_world):
    water = cat_world.a.cat_water
    for url in (f"/catalogue/{water.id}/edit", "/catalogue/new", "/catalogue/api-keys"):
        response = client.post(url, data=_minor_form())
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_another_communitys_category_is_not_found(client, auth, cat_world):
    auth.login("secretary_a")
    water, major = cat_world.b.cat_water, cat_world.b.cat_repair
    minors = _count(cat_world.b.community.id, major=False)
    assert client.get(f"/catalogue/{water.id}/edit").status_code == 404
    assert client.post(f"/catalogue/{water.id}/edit", data=_minor_form()).status_code == 404
    assert client.post(f"/catalogue/{major.id}/new", data=_minor_form()).status_code == 404
    assert db.session.get(Category, water.id).name_zh == "水管漏水"
    assert _count(cat_world.b.community.id, major=False) == minors


# --- API keys ---------------------------------------------------------------------------------


def test_create_key_shows_it_once_and_stores_only_its_hash(client, auth, cat_world):
    auth.login("secretary_a")
    _english(client)
    response = client.post("/catalogue/api-keys", data={"name": "微信小程序"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert "shown only once" in body
    key = body.split('<code id="new-key">')[1].split("</code>")[0]
    assert key.startswith("tx_") and len(key) == 3 + 32
    row = db.session.scalar(select(ApiKey))
    assert row.community_id == cat_world.a.community.id and row.name == "微信小程序"
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest() and row.prefix == key[:8]
    assert row.created_by_id == cat_world.a.secretary.id and row.revoked_at is None
    listing = client.get("/catalogue/api-keys").get_data(as_text=True)
    assert "微信小程序" in listing and key[:8] in listing and key not in listing


def test_create_key_as_htmx_returns_the_fragment(client, auth, cat_world):
    auth.login("secretary_a")
    response = client.post("/catalogue/api-keys", data={"name": "App"}, headers=HX)
    body = response.get_data(as_text=True)
    assert "<html" not in body and 'id="api-keys"' in body and "tx_" in body
    assert response.headers["HX-Trigger"] == "api-keys-changed"


def test_create_key_needs_a_name(client, auth, cat_world):
    auth.login("secretary_a")
    _english(client)
    response = client.post("/catalogue/api-keys", data={"name": "  "})
    assert response.status_code == 200
    assert "Name the application" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(ApiKey.id))) == 0


def test_revoke_key(client, auth, cat_keys):
    auth.login("secretary_a")
    row = cat_keys.a.cat_key_row
    response = client.post(f"/catalogue/api-keys/{row.id}/revoke")
    assert response.status_code == 303 and response.headers["Location"] == "/catalogue/api-keys"
    revoked_at = db.session.get(ApiKey, row.id).revoked_at
    assert revoked_at is not None
    # Revoking again changes nothing; htmx gets the row.
    response = client.post(f"/catalogue/api-keys/{row.id}/revoke", headers=HX)
    body = response.get_data(as_text=True)
    assert f'id="api-key-{row.id}"' in body and "<html" not in body
    assert db.session.get(ApiKey, row.id).revoked_at == revoked_at


def test_keys_are_scoped_to_the_community(client, auth, cat_keys):
    auth.login("secretary_a")
    listing = client.get("/catalogue/api-keys").get_data(as_text=True)
    assert cat_keys.a.cat_key[:8] in listing and cat_keys.b.cat_key[:8] not in listing
    row = cat_keys.b.cat_key_row
    assert client.post(f"/catalogue/api-keys/{row.id}/revoke").status_code == 404
    assert db.session.get(ApiKey, row.id).revoked_at is None


def test_keys_page_runs_a_fixed_number_of_queries(client, auth, cat_keys):
    from portal.help.apikeys import create_api_key

    auth.login("secretary_a")
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        client.get("/catalogue/api-keys")
        before = len(statements)
        for n in range(4):
            create_api_key(cat_keys.a.community.id, f"app {n}", None)
        db.session.commit()
        statements.clear()
        client.get("/catalogue/api-keys")
        assert len(statements) == before
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
