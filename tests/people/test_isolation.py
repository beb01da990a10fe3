"""Community A's staff never reach community B's residents; grid workers stay in their grids."""

from __future__ import annotations

import pytest

from tests.people.conftest import person_count, person_form, reload


def _snapshot(person):
    person = reload(person)
    return (person.name, person.phone, person.household_id, person.care_consent_at)


@pytest.mark.parametrize("username", ["secretary_a", "gridworker_a", "admin_a"])
def test_detail_of_other_community_is_404(client, auth, world, username):
    auth.login(username)
    assert client.get(f"/people/{world.b.resident.person.id}").status_code == 404


@pytest.mark.parametrize("username", ["secretary_a", "gridworker_a"])
def test_edit_of_other_community_is_404_and_unchanged(client, auth, world, username):
    person = world.b.resident.person
    before = _snapshot(person)
    auth.login(username)
    assert client.get(f"/people/{person.id}/edit").status_code == 404
    response = client.post(
        f"/people/{person.id}/edit",
        data={"name": "入侵", "building_id": world.a.building.id, "room": "101"},
    )
    assert response.status_code == 404
    assert _snapshot(person) == before


def test_account_of_other_community_is_404_and_nothing_created(client, auth, world, make_person):
    from portal.auth.models import User
    from portal.extensions import db

    person = make_person(world.b.community, household=world.b.household)
    auth.login("secretary_a")
    assert client.get(f"/people/{person.id}/account").status_code == 404
    response = client.post(
        f"/people/{person.id}/account",
        data={"username": "intruder", "password": "long-secret-9", "confirm": "long-secret-9"},
    )
    assert response.status_code == 404
    assert db.session.query(User).filter_by(username="intruder").count() == 0
    assert reload(person).user is None


def test_unknown_id_is_404(client, auth, world):
    auth.login("secretary_a")
    assert client.get("/people/999999").status_code == 404
    assert client.post("/people/999999/edit", data={"name": "x"}).status_code == 404


@pytest.mark.parametrize("username", ["secretary_a", "gridworker_a"])
def test_new_with_household_of_other_community_is_404(client, auth, world, username):
    auth.login(username)
    assert client.get(f"/people/new?household_id={world.b.household.id}").status_code == 404


@pytest.mark.parametrize("username", ["secretary_a", "gridworker_a"])
def test_posting_household_of_other_community_is_a_field_error(
    client, auth, world, english, username
):
    auth.login(username)
    before = person_count()
    response = client.post(
        f"/people/new?household_id={world.b.household.id}",
        data={
            "household_id": world.b.household.id,
            "name": "王强",
            "community_id": world.b.community.id,
        },
    )
    assert response.status_code == 200
    assert "Choose a household of your community" in response.get_data(as_text=True)
    assert person_count() == before


def test_posting_building_of_other_community_is_a_field_error(client, auth, world, english):
    auth.login("secretary_a")
    before = person_count()
    response = client.post(
        "/people/new", data=person_form(building_id=world.b.building.id, room="101")
    )
    assert response.status_code == 200
    assert "Choose a building of your community" in response.get_data(as_text=True)
    assert person_count() == before


def test_moving_a_resident_into_other_community_is_refused(client, auth, world, english):
    person = world.a.volunteer.person
    before = _snapshot(person)
    auth.login("secretary_a")
    response = client.post(
        f"/people/{person.id}/edit",
        data={"name": person.name, "building_id": world.b.building.id, "room": "101"},
    )
    assert response.status_code == 200
    assert "Choose a building of your community" in response.get_data(as_text=True)
    assert _snapshot(person) == before


def test_other_community_residents_are_not_listed(client, auth, world):
    auth.login("secretary_a")
    page = client.get("/people/").get_data(as_text=True)
    assert world.a.resident.person.name in page
    assert world.b.resident.person.name not in page


# -- grid workers -----------------------------------------------------------------------


def test_grid_worker_reaches_only_residents_of_their_grids(client, auth, world, make_person):
    outside = world.a.pending.person  # household2, grid 2
    homeless = make_person(world.a.community)
    before = _snapshot(outside)
    auth.login("gridworker_a")
    assert client.get(f"/people/{world.a.resident.person.id}").status_code == 200
    for person in (outside, homeless):
        assert client.get(f"/people/{person.id}").status_code == 404
        assert client.get(f"/people/{person.id}/edit").status_code == 404
        response = client.post(
            f"/people/{person.id}/edit",
            data={"name": "改", "building_id": world.a.building.id, "room": "101"},
        )
        assert response.status_code == 404
    assert _snapshot(outside) == before


def test_grid_worker_buildings_are_those_of_their_grids(client, auth, world):
    auth.login("gridworker_a")
    page = client.get("/people/new").get_data(as_text=True)
    assert f'value="{world.a.building.id}">' in page
    assert f'value="{world.a.building2.id}">' not in page


def test_grid_worker_household_outside_grids(client, auth, world, english):
    auth.login("gridworker_a")
    assert client.get(f"/people/new?household_id={world.a.household2.id}").status_code == 404
    before = person_count()
    response = client.post(
        "/people/new", data={"household_id": world.a.household2.id, "name": "王强"}
    )
    assert response.status_code == 200
    assert "Choose a household in your grids" in response.get_data(as_text=True)
    response = client.post(
        "/people/new", data=person_form(building_id=world.a.building2.id, room="201")
    )
    assert "Choose a building of your grids." in response.get_data(as_text=True)
    response = client.post("/people/new", data=person_form(room=""))
    assert "Choose a building of your grids." in response.get_data(as_text=True)
    assert person_count() == before


def test_grid_worker_registers_and_edits_in_their_grids(client, auth, world):
    auth.login("gridworker_a")
    response = client.post(
        "/people/new", data=person_form(building_id=world.a.building.id, room="101")
    )
    assert response.status_code == 303
    person_id = int(response.headers["Location"].rsplit("/", 1)[1])
    response = client.post(
        f"/people/{person_id}/edit",
        data={"name": "网格登记", "building_id": world.a.building.id, "room": "101"},
    )
    assert response.status_code == 303
    from portal.extensions import db
    from portal.people.models import Person

    db.session.expire_all()
    person = db.session.get(Person, person_id)
    assert person.name == "网格登记" and person.household_id == world.a.household.id


def test_grid_worker_cannot_move_resident_out_of_their_grids(client, auth, world, english):
    person = world.a.volunteer.person
    before = _snapshot(person)
    auth.login("gridworker_a")
    response = client.post(
        f"/people/{person.id}/edit",
        data={"name": person.name, "building_id": world.a.building2.id, "room": "201"},
    )
    assert response.status_code == 200
    assert "Choose a building of your grids." in response.get_data(as_text=True)
    assert _snapshot(person) == before
