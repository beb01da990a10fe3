"""Entrances (inline on the building page, with and without htmx) and households."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.extensions import db
from portal.places.models import Entrance, Household
from tests import factories
from tests.places.conftest import follow

HX = {"HX-Request": "true"}


def count(model) -> int:
    return db.session.scalar(select(func.count(model.id)))


def test_add_entrance_without_js(client, login, world):
    building = world.a.building
    login("secretary")
    response = client.post(f"/places/buildings/{building.id}/entrances", data={"name": "2单元"})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/places/buildings/{building.id}#entrances"
    entrance = db.session.scalar(select(Entrance).where(Entrance.name == "2单元"))
    assert (entrance.building_id, entrance.community_id) == (building.id, world.a.community.id)


def test_add_entrance_with_htmx_returns_the_fragment(client, login, world, english):
    building = world.a.building
    login("secretary")
    response = client.post(
        f"/places/buildings/{building.id}/entrances", data={"name": "3单元"}, headers=HX
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in page
    assert page.lstrip().startswith('<div id="entrances">')
    assert "3单元" in page and "1单元" in page
    assert response.headers["HX-Trigger"] == "entrances-changed"
    assert "HX-Request" in response.headers["Vary"]
    assert 'id="flash"' in page and 'hx-swap-oob="true"' in page
    assert "Entrance 3单元 added." in page
    assert count(Entrance) == 3  # 1单元 of A and of B, plus this one


def test_invalid_entrance_with_htmx_keeps_the_input(client, login, world, english):
    building = world.a.building
    login("secretary")
    response = client.post(
        f"/places/buildings/{building.id}/entrances", data={"name": "1单元"}, headers=HX
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in page
    assert "This building already has an entrance with this name." in page
    assert 'value="1单元"' in page
    assert "HX-Trigger" not in response.headers

    response = client.post(f"/places/buildings/{building.id}/entrances", data={"name": ""})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in page
    assert "This field is required." in page
    assert count(Entrance) == 2


def test_rename_and_delete_entrance(client, login, world, english):
    a = world.a
    unused = factories.make_entrance(a.building, name="2单元")
    unused_id = unused.id
    login("secretary")
    response = client.post(f"/places/entrances/{unused_id}/edit", data={"name": "二单元"})
    assert response.headers["Location"] == f"/places/buildings/{a.building.id}#entrances"
    assert db.session.get(Entrance, unused_id).name == "二单元"

    page = client.post(f"/places/entrances/{unused_id}/edit", data={"name": "1单元"}).get_data(
        as_text=True
    )
    assert "This building already has an entrance with this name." in page

    response = client.post(f"/places/entrances/{unused_id}/delete")
    assert response.status_code == 303
    assert db.session.get(Entrance, unused_id) is None

    # 1单元 is used by household 101
    response = client.post(f"/places/entrances/{a.entrance.id}/delete")
    page = follow(client, response).get_data(as_text=True)
    assert "Households still use this entrance." in page
    assert db.session.get(Entrance, a.entrance.id) is not None


def test_create_household(client, login, world):
    a = world.a
    login("secretary")
    page = client.get(f"/places/buildings/{a.building.id}/households/new").get_data(as_text=True)
    assert "1单元" in page
    response = client.post(
        f"/places/buildings/{a.building.id}/households/new",
        data={"room": "302", "entrance_id": a.entrance.id, "notes": "独居老人，每周探访"},
    )
    household = db.session.scalar(select(Household).where(Household.room == "302"))
    assert response.headers["Location"] == f"/places/households/{household.id}"
    assert (
        household.community_id,
        household.building_id,
        household.entrance_id,
        household.notes,
    ) == (a.community.id, a.building.id, a.entrance.id, "独居老人，每周探访")
    page = follow(client, response).get_data(as_text=True)
    assert "302" in page and "独居老人" in page


def test_household_validation_messages(client, login, world, english):
    a, b = world.a, world.b
    other = factories.make_entrance(a.building2, name="其他楼单元")
    login("secretary")
    before = count(Household)
    url = f"/places/buildings/{a.building.id}/households/new"

    def post(**data):
        response = client.post(url, data={"room": "402", **data})
        assert response.status_code == 200
        return response.get_data(as_text=True)

    for entrance in (b.entrance.id, other.id, 999999, "abc"):
        page = post(entrance_id=entrance, notes="保留")
        assert "Choose an entrance of this building." in page, entrance
        assert 'value="402"' in page and "保留" in page
    assert "This field is required." in post(room="")
    assert "Field cannot be longer than 20 characters." in post(room="1" * 21)
    assert "Field cannot be longer than 500 characters." in post(notes="长" * 501)
    assert "This building already has a household with this room number." in post(room="101")
    assert count(Household) == before
    # the same room number in another building is fine
    response = client.post(
        f"/places/buildings/{a.building2.id}/households/new", data={"room": "101"}
    )
    assert response.status_code == 303


def test_edit_household(client, login, world):
    a = world.a
    login("secretary")
    response = client.post(
        f"/places/households/{a.household.id}/edit",
        data={"room": "101A", "entrance_id": "", "notes": "已加装扶手"},
    )
    assert response.headers["Location"] == f"/places/households/{a.household.id}"
    household = db.session.get(Household, a.household.id)
    assert (household.room, household.entrance_id, household.notes) == ("101A", None, "已加装扶手")


def test_delete_household_only_without_residents(client, login, world, english):
    a = world.a
    empty_id = factories.make_household(a.building, room="909").id
    login("secretary")
    response = client.post(f"/places/households/{empty_id}/delete")
    assert response.headers["Location"] == f"/places/buildings/{a.building.id}"
    assert db.session.get(Household, empty_id) is None

    response = client.post(f"/places/households/{a.household.id}/delete")
    assert response.headers["Location"] == f"/places/households/{a.household.id}"
    page = follow(client, response).get_data(as_text=True)
    assert "Residents are still registered in this household." in page
    assert db.session.get(Household, a.household.id) is not None
