"""Who may open which places page: every role of community A, and anonymous visitors."""

from __future__ import annotations

import re

import pytest

from portal.extensions import db
from portal.places.models import Building, Entrance, Estate, Grid, Household

ROLES = ("resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin")

# Expected status per role, in the order of ROLES. The grid worker of A works in A's first grid
# only: building2/household2 lie in the second grid.
STAFF = (403, 403, 200, 200, 200)
OUT_OF_GRID = (403, 403, 404, 200, 200)
SECRETARY_ONLY = (403, 403, 403, 200, 403)
COMMUNITY = (403, 403, 403, 200, 200)


def read_pages(a):
    return [
        ("/places/", STAFF),
        (f"/places/communities/{a.community.id}", COMMUNITY),
        (f"/places/grids/{a.grid.id}", STAFF),
        (f"/places/grids/{a.grid2.id}", OUT_OF_GRID),
        (f"/places/estates/{a.estate.id}", STAFF),
        (f"/places/buildings/{a.building.id}", STAFF),
        (f"/places/buildings/{a.building2.id}", OUT_OF_GRID),
        (f"/places/households/{a.household.id}", STAFF),
        (f"/places/households/{a.household2.id}", OUT_OF_GRID),
    ]


def form_pages(a):
    return [
        "/places/grids/new",
        "/places/estates/new",
        "/places/buildings/new",
        f"/places/grids/{a.grid.id}/edit",
        f"/places/estates/{a.estate.id}/edit",
        f"/places/buildings/{a.building.id}/edit",
        f"/places/entrances/{a.entrance.id}/edit",
        f"/places/buildings/{a.building.id}/households/new",
        f"/places/households/{a.household.id}/edit",
    ]


def write_posts(a):
    """Every POST route with data that would change something if it were allowed."""
    return [
        ("/places/grids/new", {"name": "新网格"}),
        ("/places/estates/new", {"name": "新小区", "kind": "ordinary"}),
        (
            "/places/buildings/new",
            {"estate_id": a.estate.id, "grid_id": a.grid.id, "name": "9号楼"},
        ),
        (f"/places/grids/{a.grid.id}/edit", {"name": "改名"}),
        (f"/places/grids/{a.grid2.id}/delete", {}),
        (f"/places/estates/{a.estate.id}/edit", {"name": "改名", "kind": "ordinary"}),
        (f"/places/estates/{a.estate.id}/delete", {}),
        (
            f"/places/buildings/{a.building.id}/edit",
            {"estate_id": a.estate.id, "grid_id": a.grid.id, "name": "改名"},
        ),
        (f"/places/buildings/{a.building.id}/delete", {}),
        (f"/places/buildings/{a.building.id}/entrances", {"name": "9单元"}),
        (f"/places/entrances/{a.entrance.id}/edit", {"name": "改名"}),
        (f"/places/entrances/{a.entrance.id}/delete", {}),
        (f"/places/buildings/{a.building.id}/households/new", {"room": "999"}),
        (f"/places/households/{a.household.id}/edit", {"room": "改名"}),
        (f"/places/households/{a.household2.id}/delete", {}),
    ]


def snapshot() -> dict:
    """Everything the places forms could change, to prove a refused request changed nothing."""
    db.session.expire_all()
    return {
        "grids": sorted(
            (g.id, g.name, g.description, tuple(u.id for u in g.workers))
            for g in db.session.query(Grid)
        ),
        "estates": sorted((e.id, e.name, e.kind, e.address) for e in db.session.query(Estate)),
        "buildings": sorted(
            (b.id, b.name, b.estate_id, b.grid_id, b.floors, b.captain_id)
            for b in db.session.query(Building)
        ),
        "entrances": sorted((e.id, e.name, e.building_id) for e in db.session.query(Entrance)),
        "households": sorted(
            (h.id, h.room, h.entrance_id, h.notes, h.building_id)
            for h in db.session.query(Household)
        ),
    }


@pytest.mark.parametrize("role", ROLES)
def test_read_pages_by_role(client, login, world, role):
    login(role)
    index = ROLES.index(role)
    wrong = []
    for url, expected in read_pages(world.a):
        status = client.get(url).status_code
        if status != expected[index]:
            wrong.append((url, status, expected[index]))
    assert wrong == []


@pytest.mark.parametrize("role", ROLES)
def test_form_pages_by_role(client, login, world, role):
    login(role)
    expected = SECRETARY_ONLY[ROLES.index(role)]
    wrong = [
        (url, status)
        for url in form_pages(world.a)
        if (status := client.get(url).status_code) != expected
    ]
    assert wrong == []


@pytest.mark.parametrize("role", [r for r in ROLES if r != "secretary"])
def test_writes_refused_for_other_roles(client, login, world, role):
    login(role)
    before = snapshot()
    wrong = [
        (url, status)
        for url, data in write_posts(world.a)
        if (status := client.post(url, data=data).status_code) != 403
    ]
    assert wrong == []
    assert snapshot() == before


def test_anonymous_is_sent_to_sign_in(client, world):
    a = world.a
    before = snapshot()
    urls = [url for url, _ in read_pages(a)] + form_pages(a)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/login?next="), url
    for url, data in write_posts(a):
        response = client.post(url, data=data)
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/login"), url
    assert snapshot() == before


def test_anonymous_htmx_request_is_redirected_by_header(client, world):
    response = client.get(
        f"/places/buildings/{world.a.building.id}?page=2&list=households",
        headers={"HX-Request": "true"},
    )
    assert response.headers["HX-Redirect"].startswith("/login")


def test_post_without_csrf_token_is_refused(client, login, world):
    login("secretary")
    before = snapshot()
    response = client.post("/places/grids/new", data={"name": "无令牌"}, csrf=False)
    assert response.status_code == 400
    assert snapshot() == before


def test_secretary_index_shows_own_tree_only(client, login, world):
    login("secretary")
    page = client.get("/places/").get_data(as_text=True)
    assert "A一网格" in page and "A二网格" in page and "A花园" in page
    assert "B一网格" not in page and "B花园" not in page
    assert 'href="/places/grids/new"' in page


def test_grid_worker_index_shows_own_grids_and_their_buildings(client, login, world):
    login("grid_worker")
    page = client.get("/places/").get_data(as_text=True)
    assert "A一网格" in page
    assert "A二网格" not in page
    assert f"/places/buildings/{world.a.building.id}" in page
    assert f"/places/buildings/{world.a.building2.id}" not in page
    assert "/places/grids/new" not in page


def test_grid_worker_estate_page_lists_only_buildings_of_their_grids(client, login, world):
    login("grid_worker")
    page = client.get(f"/places/estates/{world.a.estate.id}").get_data(as_text=True)
    assert f"/places/buildings/{world.a.building.id}" in page
    assert f"/places/buildings/{world.a.building2.id}" not in page
    assert "/edit" not in page


def test_grid_worker_gets_404_for_estate_without_buildings_in_their_grids(client, login, world):
    from tests import factories

    other = factories.make_estate(world.a.community, name="别的小区")
    factories.make_building(other, world.a.grid2, name="8号楼")
    empty = factories.make_estate(world.a.community, name="空小区")
    login("grid_worker")
    assert client.get(f"/places/estates/{other.id}").status_code == 404
    assert client.get(f"/places/estates/{empty.id}").status_code == 404


def test_subdistrict_admin_sees_communities_of_the_subdistrict(client, login, world):
    from tests import factories

    sister = factories.make_community(world.a.subdistrict, name="社区A2")
    grid = factories.make_grid(sister)
    estate = factories.make_estate(sister)
    building = factories.make_building(estate, grid)
    factories.make_household(building)
    factories.make_household(building)
    login("subdistrict_admin")
    page = client.get("/places/").get_data(as_text=True)
    assert "社区A" in page and "社区A2" in page and "社区B" not in page
    assert f"/places/communities/{sister.id}" in page
    compact = re.sub(r"\s+", "", page)
    # grids, estates, buildings, households of A and of A2
    assert "社区A</a></td><td>2</td><td>1</td><td>2</td><td>2</td>" in compact
    assert "社区A2</a></td><td>1</td><td>1</td><td>1</td><td>2</td>" in compact
    community = client.get(f"/places/communities/{sister.id}").get_data(as_text=True)
    assert grid.name in community and estate.name in community
    assert "/places/grids/new" not in community


def test_admin_detail_pages_are_read_only(client, login, world):
    a = world.a
    login("subdistrict_admin")
    for url in (
        f"/places/grids/{a.grid.id}",
        f"/places/estates/{a.estate.id}",
        f"/places/buildings/{a.building.id}",
        f"/places/households/{a.household.id}",
    ):
        page = client.get(url).get_data(as_text=True)
        assert "/edit" not in page and "/delete" not in page, url
        assert '/entrances"' not in page, url


def test_household_page_phone_masking_and_links(client, auth, world):
    a = world.a
    phone = a.resident.person.phone
    masked = phone[:3] + "****" + phone[-4:]
    register = f"/people/new?household_id={a.household.id}"
    detail = f"/people/{a.resident.person.id}"
    # Masked for every role: the person page (linked) reveals it, audited, to those who call.
    for username, can_register in (
        ("secretary_a", True),
        ("gridworker_a", True),
        ("admin_a", False),
    ):
        auth.login(username)
        page = client.get(f"/places/households/{a.household.id}").get_data(as_text=True)
        assert a.resident.person.name in page
        assert detail in page
        assert phone not in page and masked in page
        assert (register in page) is can_register
        auth.logout()
