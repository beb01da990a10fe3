"""Registering and editing residents: field messages, consent rules and what is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.people.models import Person
from tests.people.conftest import person_count, person_form, reload


@pytest.fixture
def secretary(client, auth, world, english):
    auth.login("secretary_a")
    return world


def _new(client, world, **overrides):
    data = person_form(**{"building_id": world.a.building.id, **overrides})
    return client.post("/people/new", data=data)


def _stored(name: str = "张秀英") -> Person | None:
    db.session.expire_all()
    return db.session.scalar(select(Person).where(Person.name == name))


def test_register_by_building_and_room(client, secretary):
    world = secretary
    response = _new(client, world)
    person = _stored()
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/people/{person.id}")
    assert person.community_id == world.a.community.id
    assert person.household_id == world.a.household.id
    assert (person.phone, person.sex, person.birth_year) == ("13812345678", "female", 1948)
    assert person.care_consent_at is None and person.care_flags == []
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "张秀英 is registered." in page


def test_register_from_household_page(client, secretary):
    world = secretary
    url = f"/people/new?household_id={world.a.household2.id}"
    page = client.get(url).get_data(as_text=True)
    assert f'name="household_id" type="hidden" value="{world.a.household2.id}"' in page
    assert "2号楼 201" in page and 'name="building_id"' not in page
    response = client.post(
        url, data={"household_id": world.a.household2.id, "name": "李建国", "phone": ""}
    )
    assert response.status_code == 303
    person = _stored("李建国")
    assert person.household_id == world.a.household2.id and person.phone is None


def test_phone_with_spaces_is_normalised(client, secretary):
    assert _new(client, secretary, phone="138 1234-5678").status_code == 303
    assert _stored().phone == "13812345678"


def test_care_needs_with_consent_are_stored_with_time(client, secretary):
    before = datetime.now(UTC)
    response = _new(client, secretary, lives_alone="y", disabled="y", care_consent="y")
    assert response.status_code == 303
    person = _stored()
    assert person.lives_alone and person.disabled and not person.empty_nest
    assert before - timedelta(seconds=1) <= person.care_consent_at <= datetime.now(UTC)


def test_care_needs_without_consent_save_nothing(client, secretary):
    before = person_count()
    response = _new(client, secretary, empty_nest="y")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Care needs are recorded only with consent" in page
    assert 'id="empty_nest" name="empty_nest" type="checkbox" value="y"' in page.replace(
        "checked ", ""
    )
    assert person_count() == before


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"phone": "12812345678"}, "Enter an 11-digit mobile number starting with 13–19."),
        ({"phone": "1381234567"}, "Enter an 11-digit mobile number starting with 13–19."),
        ({"name": ""}, "Enter the resident"),
        ({"name": "   "}, "Enter the resident"),
        ({"name": "张" * 41}, "Field cannot be longer than 40 characters."),
        ({"birth_year": "1899"}, "Enter a year between 1900 and"),
        ({"birth_year": str(datetime.now(UTC).year + 1)}, "Enter a year between 1900 and"),
        ({"room": "999"}, "No household with this room in this building"),
        ({"room": ""}, "Enter the room number."),
        ({"building_id": ""}, "Choose a building."),
    ],
)
def test_field_messages_and_nothing_saved(client, secretary, overrides, message):
    before = person_count()
    response = _new(client, secretary, **overrides)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert person_count() == before


def test_typed_values_are_kept_on_error(client, secretary):
    response = _new(client, secretary, phone="123", name="王小明")
    page = response.get_data(as_text=True)
    assert 'value="王小明"' in page and 'value="123"' in page


def test_duplicate_phone_is_a_field_error(client, secretary):
    taken = secretary.a.resident.person.phone
    before = person_count()
    response = _new(client, secretary, phone=taken)
    assert response.status_code == 200
    assert "This phone number is already registered." in response.get_data(as_text=True)
    assert person_count() == before


def test_phone_of_other_community_is_also_taken(client, secretary):
    response = _new(client, secretary, phone=secretary.b.resident.person.phone)
    assert "This phone number is already registered." in response.get_data(as_text=True)


def test_secretary_may_register_without_household(client, secretary):
    response = _new(client, secretary, building_id="", room="")
    assert response.status_code == 303
    assert _stored().household_id is None


def test_posted_community_id_is_ignored(client, secretary):
    response = _new(client, secretary, community_id=str(secretary.b.community.id))
    assert response.status_code == 303
    assert _stored().community_id == secretary.a.community.id


# -- editing -----------------------------------------------------------------------------


def _edit(client, person, **fields):
    data = {
        "name": person.name,
        "phone": person.phone or "",
        "sex": person.sex or "",
        "building_id": person.household.building_id if person.household else "",
        "room": person.household.room if person.household else "",
    }
    data.update(fields)
    return client.post(f"/people/{person.id}/edit", data=data)


def test_edit_form_is_prefilled(client, secretary, make_person):
    person = make_person(
        secretary.a.community,
        household=secretary.a.household2,
        name="赵桂兰",
        sex="female",
        birth_year=1940,
        lives_alone=True,
        care_consent_at=datetime.now(UTC),
    )
    page = client.get(f"/people/{person.id}/edit").get_data(as_text=True)
    assert 'value="赵桂兰"' in page and 'value="1940"' in page
    assert f'<option selected value="{secretary.a.building2.id}">' in page
    assert 'value="201"' in page
    assert 'checked id="lives_alone"' in page and 'checked id="care_consent"' in page
    assert 'checked id="sex-2"' in page


def test_edit_changes_fields_and_household(client, secretary):
    person = secretary.a.volunteer.person
    response = _edit(
        client,
        person,
        name="新名字",
        phone="13700001111",
        birth_year="1960",
        building_id=secretary.a.building2.id,
        room="201",
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/people/{person.id}")
    person = reload(person)
    assert (person.name, person.phone, person.birth_year) == ("新名字", "13700001111", 1960)
    assert person.household_id == secretary.a.household2.id


def test_edit_keeps_own_phone(client, secretary):
    person = secretary.a.volunteer.person
    assert _edit(client, person, name="同号").status_code == 303
    assert reload(person).name == "同号"


def test_edit_to_taken_phone_is_refused(client, secretary):
    person = secretary.a.volunteer.person
    phone = person.phone
    response = _edit(client, person, phone=secretary.a.resident.person.phone)
    assert response.status_code == 200
    assert "This phone number is already registered." in response.get_data(as_text=True)
    assert reload(person).phone == phone


def test_consent_time_is_kept_on_later_edits(client, secretary):
    person = secretary.a.volunteer.person
    _edit(client, person, lives_alone="y", care_consent="y")
    first = reload(person).care_consent_at
    assert first is not None
    assert _edit(client, reload(person), lives_alone="y", empty_nest="y", care_consent="y")
    person = reload(person)
    assert person.care_consent_at == first and person.empty_nest


def test_unticking_consent_clears_every_care_need(client, secretary, make_person):
    person = make_person(
        secretary.a.community,
        household=secretary.a.household,
        lives_alone=True,
        disabled=True,
        care_consent_at=datetime.now(UTC),
    )
    response = _edit(client, person)
    assert response.status_code == 303
    person = reload(person)
    assert person.care_consent_at is None
    assert not (person.lives_alone or person.empty_nest or person.disabled)


def test_edit_flag_without_consent_changes_nothing(client, secretary):
    person = secretary.a.volunteer.person
    name = person.name
    response = _edit(client, person, name="不保存", disabled="y")
    assert response.status_code == 200
    assert "Care needs are recorded only with consent" in response.get_data(as_text=True)
    person = reload(person)
    assert person.name == name and not person.disabled


def test_edit_to_unknown_room_changes_nothing(client, secretary):
    person = secretary.a.volunteer.person
    response = _edit(client, person, room="404")
    assert "No household with this room in this building" in response.get_data(as_text=True)
    assert reload(person).household_id == secretary.a.household.id


# -- the database has the last word on a duplicate phone (two clerks at once) -----------


def test_phone_race_on_create_becomes_field_error(client, secretary, monkeypatch):
    from portal.people import services

    monkeypatch.setattr(services, "phone_taken", lambda *a, **k: False)
    before = person_count()
    response = _new(client, secretary, phone=secretary.a.resident.person.phone)
    assert response.status_code == 200
    assert "This phone number is already registered." in response.get_data(as_text=True)
    assert person_count() == before


def test_phone_race_on_edit_becomes_field_error(client, secretary, monkeypatch):
    from portal.people import services

    person = secretary.a.volunteer.person
    phone = person.phone
    monkeypatch.setattr(services, "phone_taken", lambda *a, **k: False)
    response = _edit(client, person, name="竞争", phone=secretary.a.resident.person.phone)
    assert response.status_code == 200
    assert "This phone number is already registered." in response.get_data(as_text=True)
    person = reload(person)
    assert (person.name, person.phone) == (secretary.a.volunteer.person.name, phone)
