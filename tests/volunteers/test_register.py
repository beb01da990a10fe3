"""Registering as a volunteer, editing while pending, re-applying after a rejection."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from portal.core.timeutil import local_today
from tests.volunteers.conftest import (
    make_applicant,
    reload,
    snapshot,
    volunteer_count,
    volunteer_of,
)


def form(**overrides) -> dict:
    data = {
        "types": ["red_armband"],
        "skills": "电工, 理发",
        "availability": ["weekday_evenings", "weekends"],
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_register_red_armband_defaults_to_building_grid(client, auth, world, english):
    auth.login("resident_a")
    page = client.get("/volunteers/mine").get_data(as_text=True)
    assert "Register as a volunteer" in page
    # The grid of the household's building is preselected.
    assert re.search(rf'<option selected value="{world.a.grid.id}">', page)

    response = client.post("/volunteers/mine", data=form())
    assert response.status_code == 303
    assert response.headers["Location"] == "/volunteers/mine"
    volunteer = volunteer_of(world.a.resident.person.id)
    assert volunteer.status == "pending"
    assert volunteer.community_id == world.a.community.id
    assert volunteer.types == ["red_armband"]
    assert volunteer.grid_id == world.a.grid.id
    assert volunteer.skills == "电工, 理发"
    assert volunteer.availability == "weekday_evenings,weekends"
    assert volunteer.armband_no is None

    page = client.get("/volunteers/mine").get_data(as_text=True)
    assert "Your registration was sent. It now awaits approval." in page
    assert 'id="volunteer-status"' in page
    assert "Awaiting approval" in page
    assert "Change my registration" in page


def test_grid_left_empty_is_the_building_grid(client, auth, world):
    auth.login("resident_a")
    client.post("/volunteers/mine", data=form(grid_id=""))
    assert volunteer_of(world.a.resident.person.id).grid_id == world.a.grid.id


def test_register_party_member_and_five_elders(client, auth, world):
    auth.login("resident_a")
    response = client.post(
        "/volunteers/mine",
        data=form(
            types=["party_member", "five_elders", "mediator"],
            employer="安康市中心医院",
            party_branch="第一党支部",
            grid_id=str(world.a.grid2.id),
            five_elder_kind="teacher",
        ),
    )
    assert response.status_code == 303
    volunteer = volunteer_of(world.a.resident.person.id)
    assert volunteer.types == ["five_elders", "mediator", "party_member"]
    assert (volunteer.employer, volunteer.party_branch) == ("安康市中心医院", "第一党支部")
    assert volunteer.grid_id == world.a.grid2.id  # the grid they report to
    assert volunteer.five_elder_kind == "teacher"
    assert volunteer.party_reported_on is None  # dated on approval


def test_details_of_unchosen_types_are_not_kept(client, auth, world):
    auth.login("resident_a")
    client.post(
        "/volunteers/mine",
        data=form(employer="某公司", party_branch="某支部", five_elder_kind="veteran"),
    )
    volunteer = volunteer_of(world.a.resident.person.id)
    assert (volunteer.employer, volunteer.party_branch, volunteer.five_elder_kind) == ("", "", None)


@pytest.mark.parametrize(
    ("data", "messages"),
    [
        (form(types=None), ["Choose at least one volunteer type."]),
        (
            form(types=["party_member"]),
            [
                "A party member gives the employer.",
                "A party member gives the party branch.",
                "Choose the grid you report to.",
            ],
        ),
        (form(types=["five_elders"]), ["Choose which of the five elders you are."]),
        (form(five_elder_kind="wizard", types=["five_elders"]), ["Not a valid choice."]),
        (form(skills="水" * 201), ["Field cannot be longer than 200 characters."]),
        (form(employer="x" * 101, types=["party_member"]), ["Field cannot be longer than 100"]),
        (form(availability=["at_midnight"]), ["not a valid choice"]),
    ],
    ids=["no-type", "party-incomplete", "elder-no-kind", "elder-bad-kind", "long-skills",
         "long-employer", "bad-availability"],
)  # fmt: skip
def test_validation_messages_in_english(client, auth, world, english, data, messages):
    auth.login("resident_a")
    response = client.post("/volunteers/mine", data=data)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for message in messages:
        assert message in page
    assert volunteer_of(world.a.resident.person.id) is None


def test_grid_of_another_community_is_refused(client, auth, world, english):
    auth.login("resident_a")
    response = client.post(
        "/volunteers/mine",
        data=form(
            types=["party_member"],
            employer="汉滨区税务局",
            party_branch="机关党支部",
            grid_id=str(world.b.grid.id),
        ),
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Choose a grid of your community" in page
    assert 'value="汉滨区税务局"' in page  # what was typed is kept
    assert volunteer_of(world.a.resident.person.id) is None


def test_unknown_grid_is_refused(client, auth, world, english):
    auth.login("resident_a")
    response = client.post("/volunteers/mine", data=form(grid_id="999999"))
    assert "Choose a grid of your community" in response.get_data(as_text=True)
    assert volunteer_of(world.a.resident.person.id) is None


def test_validation_works_in_chinese_too(client, auth, world):
    auth.login("resident_a")
    response = client.post("/volunteers/mine", data=form(types=None))
    assert response.status_code == 200
    assert 'class="error"' in response.get_data(as_text=True)
    assert volunteer_of(world.a.resident.person.id) is None


def test_edit_while_pending(client, auth, world):
    auth.login("pending_a")
    before = reload(world.a.pending_volunteer)
    applied_at = before.applied_at
    page = client.get("/volunteers/mine").get_data(as_text=True)
    assert "修改我的报名信息" in page
    response = client.post(
        "/volunteers/mine", data=form(types=["red_armband", "building_captain"], skills="修水管")
    )
    assert response.status_code == 303
    volunteer = reload(world.a.pending_volunteer)
    assert volunteer.status == "pending"
    assert volunteer.types == ["building_captain", "red_armband"]
    assert volunteer.skills == "修水管"
    assert volunteer.applied_at == applied_at  # keeps its place in the queue
    assert volunteer_count() == 4  # the world's own: no new row


def test_reapply_after_rejection(client, auth, world, english):
    rejected = make_applicant(
        world.a,
        status="rejected",
        rejection_reason="电话无法接通",
        decided_by_id=world.a.secretary.id,
        applied_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    auth.login(rejected.person.user.username)
    page = client.get("/volunteers/mine").get_data(as_text=True)
    assert "Your registration was not approved. Reason: 电话无法接通" in page
    assert "Correct and re-apply" in page

    response = client.post("/volunteers/mine", data=form(skills="已更新电话"))
    assert response.status_code == 303
    volunteer = reload(rejected)
    assert volunteer.status == "pending"
    assert volunteer.rejection_reason == ""
    assert volunteer.decided_at is None and volunteer.decided_by_id is None
    assert volunteer.applied_at > datetime(2025, 1, 2, tzinfo=UTC)
    assert "Awaiting approval" in client.get("/").get_data(as_text=True)


def test_approved_registration_cannot_be_changed(client, auth, world, english):
    auth.login("volunteer_a")
    volunteer = world.a.volunteer.person.volunteer
    before = snapshot(volunteer)
    page = client.get("/volunteers/mine").get_data(as_text=True)
    assert "Approved" in page and "a-0001" in page
    assert 'name="types"' not in page  # no form once approved
    response = client.post("/volunteers/mine", data=form(types=["mediator"]))
    assert response.status_code == 200
    assert "Your registration is already approved." in response.get_data(as_text=True)
    assert snapshot(volunteer) == before
    assert reload(volunteer).types == ["red_armband"]


def test_volunteer_sees_approval_on_mine_and_home(client, auth, world, english):
    applicant = make_applicant(world.a, types=("red_armband", "party_member"))
    auth.login("secretary_a")
    assert client.post(f"/volunteers/{applicant.id}/approve").status_code == 303
    auth.logout()
    auth.login(applicant.person.user.username)
    number = reload(applicant).armband_no
    for url in ("/volunteers/mine", "/"):
        page = client.get(url).get_data(as_text=True)
        assert 'id="volunteer-status"' in page
        assert "Approved" in page
        assert number in page
        assert "Party report date" in page
    assert local_today().year == reload(applicant).party_reported_on.year


def test_subdistrict_admin_has_no_registration_page(client, auth, world):
    auth.login("admin_a")
    assert client.get("/volunteers/mine").status_code == 403
    assert client.post("/volunteers/mine", data=form()).status_code == 403


def test_staff_with_a_person_record_may_register(client, auth, world):
    auth.login("gridworker_a")
    assert client.post("/volunteers/mine", data=form()).status_code == 303
    assert volunteer_of(world.a.gridworker.person.id).status == "pending"


def test_registration_without_csrf_is_refused(client, auth, world):
    auth.login("resident_a")
    response = client.post("/volunteers/mine", data=form(), csrf=False)
    assert response.status_code == 400
    assert volunteer_of(world.a.resident.person.id) is None


def test_registration_page_loads_its_script_without_inline_js(client, auth, world):
    auth.login("resident_a")
    page = client.get("/volunteers/mine").get_data(as_text=True)
    assert "/static/js/volunteers.js" in page
    assert 'data-reveal-for="party_member"' in page
    assert "onclick" not in page and "hx-on" not in page
    assert client.get("/static/js/volunteers.js").status_code == 200
