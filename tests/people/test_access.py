"""Who may open which page: every role and anonymous, on every people route."""

from __future__ import annotations

import pytest

from tests.people.conftest import person_count, reload

ROLES = ("resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin")

# page -> roles allowed (everyone else gets 403)
GET_PAGES = {
    "index": ("grid_worker", "secretary", "subdistrict_admin"),
    "new": ("grid_worker", "secretary"),
    "detail": ("grid_worker", "secretary", "subdistrict_admin"),
    "edit": ("grid_worker", "secretary"),
    "account": ("secretary",),
    "check_phone": ("grid_worker", "secretary"),
}


def _url(page: str, world) -> str:
    # A resident of A's grid 1, in reach of every staff role of A.
    person_id = world.a.volunteer.person.id
    return {
        "index": "/people/",
        "new": "/people/new",
        "detail": f"/people/{person_id}",
        "edit": f"/people/{person_id}/edit",
        "account": f"/people/{person_id}/account",
        "check_phone": "/people/check-phone?phone=13812345678",
    }[page]


@pytest.mark.parametrize("page", GET_PAGES)
@pytest.mark.parametrize("role", ROLES)
def test_get_access_by_role(client, auth, world, page, role):
    auth.login(world.a.users[role].username)
    response = client.get(_url(page, world))
    expected = 200 if role in GET_PAGES[page] else 403
    assert response.status_code == expected


@pytest.mark.parametrize("page", GET_PAGES)
def test_anonymous_is_sent_to_sign_in(client, world, page):
    response = client.get(_url(page, world))
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


@pytest.mark.parametrize("role", ("resident", "volunteer", "subdistrict_admin"))
def test_post_new_refused_to_non_editors(client, auth, world, role):
    auth.login(world.a.users[role].username)
    before = person_count()
    response = client.post("/people/new", data={"name": "王强", "room": "101"})
    assert response.status_code == 403
    assert person_count() == before


@pytest.mark.parametrize("role", ("resident", "volunteer", "subdistrict_admin"))
def test_post_edit_refused_to_non_editors(client, auth, world, role):
    person = world.a.volunteer.person
    name = person.name
    auth.login(world.a.users[role].username)
    response = client.post(f"/people/{person.id}/edit", data={"name": "改名"})
    assert response.status_code == 403
    assert reload(person).name == name


@pytest.mark.parametrize("role", ("resident", "volunteer", "grid_worker", "subdistrict_admin"))
def test_post_account_refused_to_all_but_secretary(client, auth, world, make_person, role):
    from portal.auth.models import User
    from portal.extensions import db

    person = make_person(world.a.community, household=world.a.household)
    auth.login(world.a.users[role].username)
    response = client.post(
        f"/people/{person.id}/account",
        data={"username": "newuser", "password": "long-secret-9", "confirm": "long-secret-9"},
    )
    assert response.status_code == 403
    assert db.session.query(User).filter_by(username="newuser").count() == 0


def test_anonymous_post_is_sent_to_sign_in(client, world):
    before = person_count()
    response = client.post("/people/new", data={"name": "王强", "room": "101"})
    assert response.status_code == 302
    assert person_count() == before


def test_post_without_csrf_token_is_refused(client, auth, world):
    auth.login("secretary_a")
    before = person_count()
    response = client.post(
        "/people/new",
        data={"name": "王强", "building_id": world.a.building.id, "room": "101"},
        csrf=False,
    )
    assert response.status_code == 400
    assert person_count() == before
