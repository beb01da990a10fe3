"""Buildings: estate, grid, floors and building captain chosen from the community only."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.places.models import Building
from tests import factories
from tests.places.conftest import follow


def building_count() -> int:
    return db.session.scalar(select(func.count(Building.id)))


@pytest.fixture
def captain(world):
    """An approved building-captain volunteer of community A."""
    person = factories.make_person(world.a.community, name="王建国", phone="13812345678")
    factories.make_volunteer(person, ("building_captain",))
    return person


def test_create_building_with_captain(client, login, world, captain):
    a = world.a
    login("secretary")
    page = client.get(f"/places/buildings/new?estate_id={a.estate.id}").get_data(as_text=True)
    assert f'<option selected value="{a.estate.id}">' in page
    assert "王建国" in page
    assert world.a.volunteer.person.name not in page  # red armband only: not a captain

    response = client.post(
        "/places/buildings/new",
        data={
            "estate_id": a.estate.id,
            "grid_id": a.grid2.id,
            "name": "3号楼",
            "floors": "18",
            "captain_id": captain.id,
            "community_id": world.b.community.id,
        },
    )
    building = db.session.scalar(select(Building).where(Building.name == "3号楼"))
    assert response.headers["Location"] == f"/places/buildings/{building.id}"
    assert (
        building.community_id,
        building.estate_id,
        building.grid_id,
        building.floors,
        building.captain_id,
    ) == (a.community.id, a.estate.id, a.grid2.id, 18, captain.id)
    page = follow(client, response).get_data(as_text=True)
    assert "王建国" in page and "138****5678" in page and "13812345678" not in page


def test_captain_phone_is_masked_for_subdistrict_admin(client, login, world, captain):
    building = world.a.building
    building.captain_id = captain.id
    db.session.commit()
    login("subdistrict_admin")
    page = client.get(f"/places/buildings/{world.a.building.id}").get_data(as_text=True)
    assert "王建国" in page and "138****5678" in page and "13812345678" not in page


def test_edit_building_moves_it_to_another_grid(client, login, world):
    a = world.a
    login("secretary")
    response = client.post(
        f"/places/buildings/{a.building.id}/edit",
        data={"estate_id": a.estate.id, "grid_id": a.grid2.id, "name": "1号楼", "floors": ""},
    )
    assert response.status_code == 303
    building = db.session.get(Building, a.building.id)
    assert (building.grid_id, building.floors, building.captain_id) == (a.grid2.id, None, None)


def test_delete_building_only_when_empty(client, login, world, english):
    a = world.a
    empty_id = factories.make_building(a.estate, a.grid, name="空楼").id
    with_entrance = factories.make_building(a.estate, a.grid, name="有单元的楼")
    factories.make_entrance(with_entrance)
    login("secretary")

    response = client.post(f"/places/buildings/{empty_id}/delete")
    assert response.headers["Location"] == f"/places/estates/{a.estate.id}"
    assert db.session.get(Building, empty_id) is None

    response = client.post(f"/places/buildings/{a.building.id}/delete")
    assert response.headers["Location"] == f"/places/buildings/{a.building.id}"
    page = follow(client, response).get_data(as_text=True)
    assert "This building still has households. Delete them first." in page

    response = client.post(f"/places/buildings/{with_entrance.id}/delete")
    page = follow(client, response).get_data(as_text=True)
    assert "This building still has entrances. Delete them first." in page
    assert building_count() == 5


def test_building_form_refuses_places_and_people_of_other_communities(
    client, login, world, captain, english
):
    a, b = world.a, world.b
    b_captain = factories.make_person(b.community, name="外社区楼长")
    factories.make_volunteer(b_captain, ("building_captain",))
    pending = factories.make_person(a.community, name="待审楼长")
    factories.make_volunteer(pending, ("building_captain",), status="pending")
    login("secretary")
    before = building_count()

    def post(**changes):
        data = {"estate_id": a.estate.id, "grid_id": a.grid.id, "name": "5号楼", **changes}
        response = client.post("/places/buildings/new", data=data)
        assert response.status_code == 200
        return response.get_data(as_text=True)

    for grid in (b.grid.id, 999999, "abc"):
        page = post(grid_id=grid)
        assert "Choose a grid of your community." in page, grid
        assert 'value="5号楼"' in page
    for estate in (b.estate.id, 999999):
        assert "Choose an estate of your community." in post(estate_id=estate), estate
    for person in (b_captain.id, pending.id, a.volunteer.person.id):
        page = post(captain_id=person)
        assert "Choose an approved building-captain volunteer of your community." in page
    assert "This field is required." in post(grid_id="")
    assert "This field is required." in post(name="")
    assert "Field cannot be longer than 40 characters." in post(name="楼" * 41)
    assert "Enter a number from 1 to 200." in post(floors="0")
    assert "Not a valid integer value." in post(floors="ten")
    assert "A building with this name already exists in this estate." in post(name="1号楼")
    assert building_count() == before


def test_same_building_name_in_another_estate_is_fine(client, login, world):
    other = factories.make_estate(world.a.community, name="西苑")
    login("secretary")
    response = client.post(
        "/places/buildings/new",
        data={"estate_id": other.id, "grid_id": world.a.grid.id, "name": "1号楼"},
    )
    assert response.status_code == 303


def test_current_captain_can_be_kept_after_leaving_the_role(client, login, world, captain):
    a = world.a
    building = a.building
    building.captain_id = captain.id
    captain.volunteer.status = "rejected"
    db.session.commit()
    login("secretary")
    response = client.post(
        f"/places/buildings/{a.building.id}/edit",
        data={
            "estate_id": a.estate.id,
            "grid_id": a.grid.id,
            "name": "1号楼",
            "floors": "6",
            "captain_id": captain.id,
        },
    )
    assert response.status_code == 303
    assert db.session.get(Building, a.building.id).captain_id == captain.id
