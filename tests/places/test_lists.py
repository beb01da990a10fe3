"""List pages: paginated, htmx swaps one list, and a fixed number of queries whatever the rows."""

from __future__ import annotations

import re

import pytest

from tests import factories
from tests.places.conftest import count_queries

HX = {"HX-Request": "true"}


def grow(world) -> None:
    """Add many rows of every kind to community A and its subdistrict."""
    a = world.a
    for i in range(4):
        worker = factories.make_user("grid_worker", a.community, username=f"more_gw{i}")
        grid = factories.make_grid(a.community, name=f"加网格{i}")
        grid.workers.append(worker)
        a.gridworker.grids.append(grid)
        estate = factories.make_estate(a.community, name=f"加小区{i}", kind="resettlement")
        captain = factories.make_person(a.community)
        factories.make_volunteer(captain, ("building_captain",))
        building = factories.make_building(estate, grid, name=f"{i}栋", captain_id=captain.id)
        entrance = factories.make_entrance(a.building, name=f"加{i}单元")
        for j in range(3):
            household = factories.make_household(
                a.building, room=f"加{i}{j}", entrance_id=entrance.id
            )
            factories.make_person(a.community, household=household)
            factories.make_household(building, room=f"{j}01")
        sister = factories.make_community(a.subdistrict, name=f"姊妹社区{i}")
        factories.make_household(
            factories.make_building(factories.make_estate(sister), factories.make_grid(sister))
        )
    from portal.extensions import db

    db.session.commit()


def pages(world):
    a = world.a
    return [
        ("secretary_a", "/places/"),
        ("secretary_a", f"/places/grids/{a.grid.id}"),
        ("secretary_a", f"/places/estates/{a.estate.id}"),
        ("secretary_a", f"/places/buildings/{a.building.id}"),
        ("secretary_a", f"/places/households/{a.household.id}"),
        ("gridworker_a", "/places/"),
        ("gridworker_a", f"/places/estates/{a.estate.id}"),
        ("admin_a", "/places/"),
        ("admin_a", f"/places/communities/{a.community.id}"),
    ]


def measure(app, world) -> dict:
    from tests.conftest import AuthActions

    counts = {}
    clients = {}
    for username, url in pages(world):
        if username not in clients:
            clients[username] = app.test_client()
            AuthActions(clients[username]).login(username)
        client = clients[username]
        with count_queries() as n:
            response = client.get(url)
        assert response.status_code == 200, (username, url)
        counts[(username, url)] = n[0]
    return counts


def test_query_count_does_not_grow_with_rows(app, world):
    before = measure(app, world)
    grow(world)
    after = measure(app, world)
    assert after == before


def test_building_households_paginate_with_htmx(client, login, world, app):
    app.config["PAGE_SIZE"] = 2
    building = world.a.building
    for room in ("102", "103", "104"):
        factories.make_household(building, room=room)
    login("secretary")
    url = f"/places/buildings/{building.id}"
    page = client.get(url).get_data(as_text=True)
    assert ">101<" in page and ">102<" in page and ">103<" not in page
    assert f'href="{url}?page=2"' in page
    assert f'hx-get="{url}?page=2&amp;list=households"' in page

    response = client.get(f"{url}?page=2&list=households", headers=HX)
    fragment = response.get_data(as_text=True)
    assert "<html" not in fragment
    assert fragment.lstrip().startswith('<div id="households">')
    assert ">103<" in fragment and ">104<" in fragment and ">101<" not in fragment
    assert "HX-Request" in response.headers["Vary"]

    # the same URL without htmx (reload, or no JS) is the whole page
    full = client.get(f"{url}?page=2").get_data(as_text=True)
    assert "<html" in full and ">103<" in full


@pytest.mark.parametrize("list_name", ["grids", "estates"])
def test_community_tree_lists_page_separately(client, login, world, app, list_name):
    app.config["PAGE_SIZE"] = 1
    login("secretary")
    page = client.get("/places/?gpage=2&epage=1").get_data(as_text=True)
    assert "A二网格" in page and "A一网格" not in page  # ordered by name, one per page
    response = client.get(f"/places/?gpage=2&epage=1&list={list_name}", headers=HX)
    fragment = response.get_data(as_text=True)
    assert re.match(rf'\s*<div id="{list_name}">', fragment)
    assert "<html" not in fragment


def test_pager_links_keep_the_other_lists_page(client, login, world, app):
    app.config["PAGE_SIZE"] = 1
    factories.make_estate(world.a.community, name="B座小区")
    login("secretary")
    page = client.get("/places/?gpage=2&epage=1").get_data(as_text=True)
    # the estates pager moves epage and keeps gpage=2
    assert 'href="/places/?gpage=2&amp;epage=2"' in page
    # the grids pager moves gpage and keeps epage=1
    assert 'href="/places/?gpage=1&amp;epage=1"' in page


def test_page_beyond_the_end_is_an_empty_list_not_an_error(client, login, world):
    login("secretary")
    response = client.get(f"/places/buildings/{world.a.building.id}?page=99")
    assert response.status_code == 200
    response = client.get("/places/?gpage=-3&epage=abc")
    assert response.status_code == 200
