"""Inline phone validation: a small fragment, a progressive enhancement of the form."""

from __future__ import annotations

import pytest


@pytest.fixture
def staff(client, auth, english, world):
    auth.login("secretary_a")


@pytest.mark.parametrize(
    ("phone", "message"),
    [
        ("12345", "The phone number format is wrong"),
        ("12812345678", "The phone number format is wrong"),
        ("13899998888", "This phone number can be used."),
        ("138 9999 8888", "This phone number can be used."),
    ],
)
def test_phone_check_messages(client, staff, world, phone, message):
    response = client.get("/people/check-phone", query_string={"phone": phone})
    assert response.status_code == 200
    assert message in response.text
    assert response.text.lstrip().startswith('<div id="phone-check"')
    assert "<html" not in response.text


def test_taken_phone_unless_it_is_the_persons_own(client, staff, world):
    person = world.a.resident.person
    taken = client.get("/people/check-phone", query_string={"phone": person.phone}).text
    assert "This phone number is already registered." in taken
    own = client.get(
        "/people/check-phone", query_string={"phone": person.phone, "person_id": person.id}
    ).text
    assert "This phone number can be used." in own


def test_empty_phone_says_nothing(client, staff, world):
    response = client.get("/people/check-phone?phone=")
    assert response.status_code == 200 and '<p class="' not in response.text


def test_form_wires_the_check(client, staff, world):
    page = client.get("/people/new").text
    assert 'hx-get="/people/check-phone"' in page
    assert 'hx-trigger="change, keyup changed delay:600ms"' in page
    assert 'hx-target="#phone-check"' in page and '<div id="phone-check"' in page
    person = world.a.resident.person
    edit = client.get(f"/people/{person.id}/edit").text
    assert f'hx-get="/people/check-phone?person_id={person.id}"' in edit
