"""The person page: household, care needs for editors only, account, volunteer status."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest


@pytest.fixture
def elder(world, make_person, make_volunteer):
    person = make_person(
        world.a.community,
        household=world.a.household,
        name="孙老太",
        phone="13822223333",
        sex="female",
        birth_year=1938,
        empty_nest=True,
        care_consent_at=datetime.now(UTC),
    )
    make_volunteer(person, ("five_elders",), status="pending", five_elder_kind="teacher")
    return person


@pytest.mark.parametrize("username", ["secretary_a", "gridworker_a"])
def test_editors_see_everything(client, auth, english, elder, username):
    auth.login(username)
    page = client.get(f"/people/{elder.id}").text
    assert "孙老太" in page and "Female" in page and "1938" in page
    # the phone is masked for everyone; editors reveal it with a button (audited)
    assert "138****3333" in page and "13822223333" not in page
    assert f"/people/{elder.id}/phone" in page and "Show the full number" in page
    assert "A花园 1号楼 101" in page and "A一网格" in page
    assert "Empty nest" in page and "Consent recorded on" in page
    assert "Awaiting approval" in page
    assert "No sign-in account" in page
    assert f"/people/{elder.id}/edit" in page


def test_admin_sees_masked_phone_no_care_no_edit(client, auth, english, elder):
    auth.login("admin_a")
    page = client.get(f"/people/{elder.id}").text
    assert "138****3333" in page and "13822223333" not in page
    assert "Empty nest" not in page and "Care needs" not in page
    assert f"/people/{elder.id}/edit" not in page and f"/people/{elder.id}/account" not in page


def test_account_and_role_are_shown(client, auth, english, world):
    auth.login("secretary_a")
    page = client.get(f"/people/{world.a.gridworker.person.id}").text
    assert "gridworker_a" in page and "Grid worker" in page


def test_household_links_to_the_places_household_page(client, auth, app, elder):
    from flask import url_for

    auth.login("secretary_a")
    page = client.get(f"/people/{elder.id}").text
    with app.test_request_context():
        link = url_for("places.household", household_id=elder.household_id)
    assert f'<a href="{link}">A花园 1号楼 101</a>' in page


def test_person_without_household(client, auth, english, world, make_person):
    person = make_person(world.a.community, name="无户籍")
    auth.login("secretary_a")
    page = client.get(f"/people/{person.id}").text
    assert "Not registered to a household" in page
