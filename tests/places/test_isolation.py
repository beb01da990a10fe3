"""Staff of community A get 404 for every route taking an id of community B; B is unchanged."""

from __future__ import annotations

import pytest

from tests.places.test_access import snapshot


def read_routes(b):
    return [
        f"/places/communities/{b.community.id}",
        f"/places/grids/{b.grid.id}",
        f"/places/estates/{b.estate.id}",
        f"/places/buildings/{b.building.id}",
        f"/places/buildings/{b.building.id}?page=1&list=households",
        f"/places/households/{b.household.id}",
    ]


def edit_pages(b):
    return [
        f"/places/grids/{b.grid.id}/edit",
        f"/places/estates/{b.estate.id}/edit",
        f"/places/buildings/{b.building.id}/edit",
        f"/places/entrances/{b.entrance.id}/edit",
        f"/places/buildings/{b.building.id}/households/new",
        f"/places/households/{b.household.id}/edit",
    ]


def posts(b):
    building = {"estate_id": b.estate.id, "grid_id": b.grid.id, "name": "改名"}
    return [
        (f"/places/grids/{b.grid.id}/edit", {"name": "改名", "description": "x"}),
        (f"/places/grids/{b.grid2.id}/delete", {}),
        (f"/places/estates/{b.estate.id}/edit", {"name": "改名", "kind": "resettlement"}),
        (f"/places/estates/{b.estate.id}/delete", {}),
        (f"/places/buildings/{b.building.id}/edit", building),
        (f"/places/buildings/{b.building2.id}/delete", {}),
        (f"/places/buildings/{b.building.id}/entrances", {"name": "9单元"}),
        (f"/places/entrances/{b.entrance.id}/edit", {"name": "改名"}),
        (f"/places/entrances/{b.entrance.id}/delete", {}),
        (f"/places/buildings/{b.building.id}/households/new", {"room": "999"}),
        (f"/places/households/{b.household.id}/edit", {"room": "改名"}),
        (f"/places/households/{b.household2.id}/delete", {}),
    ]


@pytest.mark.parametrize("role", ["secretary", "grid_worker", "subdistrict_admin"])
def test_read_routes_of_b_are_404(client, login, world, role):
    login(role)
    expected = {f"/places/communities/{world.b.community.id}": 403} if role == "grid_worker" else {}
    wrong = []
    for url in read_routes(world.b):
        status = client.get(url).status_code
        if status != expected.get(url, 404):
            wrong.append((url, status))
    assert wrong == []


def test_secretary_gets_404_for_every_edit_page_of_b(client, login, world):
    login("secretary")
    wrong = [
        (url, status)
        for url in edit_pages(world.b)
        if (status := client.get(url).status_code) != 404
    ]
    assert wrong == []


def test_secretary_gets_404_for_every_post_of_b_and_nothing_changes(client, login, world):
    login("secretary")
    before = snapshot()
    wrong = []
    for url, data in posts(world.b):
        for headers in ({}, {"HX-Request": "true"}):
            response = client.post(url, data=data, headers=headers)
            # htmx answers errors in the flash area with 200 (htmx does not swap 4xx bodies).
            status = 404 if "HX-Retarget" in response.headers else response.status_code
            if status != 404:
                wrong.append((url, headers, response.status_code))
    assert wrong == []
    assert snapshot() == before


def test_unknown_ids_are_404(client, login, world):
    login("secretary")
    for url in (
        "/places/communities/999999",
        "/places/grids/999999",
        "/places/estates/999999",
        "/places/buildings/999999",
        "/places/households/999999",
        "/places/entrances/999999/edit",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post("/places/households/999999/delete").status_code == 404


def test_admin_of_b_cannot_see_a(client, login, world):
    login("subdistrict_admin", "b")
    page = client.get("/places/").get_data(as_text=True)
    assert "社区B" in page and "社区A" not in page
    assert client.get(f"/places/communities/{world.a.community.id}").status_code == 404
    assert client.get(f"/places/households/{world.a.household.id}").status_code == 404
