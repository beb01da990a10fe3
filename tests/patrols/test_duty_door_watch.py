"""The door-watch checklist: consented care households of the route's buildings, and visits."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from portal.database import utcnow
from portal.extensions import db
from portal.patrols.models import DoorVisit
from tests import factories
from tests.patrols.conftest import DUTY_HX, duty_count_queries, duty_make_shift


def _care(community, household, name, **flags):
    return factories.make_person(
        community, name=name, household=household, care_consent_at=utcnow(), **flags
    )


@pytest.fixture
def watch(duty_scene):
    a = duty_scene.a
    # Route: building 2 first, then a checkpoint without a building, then building 1.
    shift = duty_make_shift(
        a,
        kind="door_watch",
        leader_id=duty_scene.leader.person_id,
        route=[
            {"building_id": a.building2.id, "label": ""},
            {"building_id": None, "label": "东门"},
            {"building_id": a.building.id, "label": ""},
        ],
    )
    _care(a.community, a.household, "独居李奶奶", lives_alone=True)
    _care(a.community, a.household2, "空巢赵爷爷", empty_nest=True, disabled=True)
    # Consent on record but no care need: not a care household.
    plain = factories.make_household(a.building, room="102")
    factories.make_person(a.community, name="普通居民", household=plain, care_consent_at=utcnow())
    # A care household in a building that is not on the route.
    building3 = factories.make_building(a.estate, a.grid, name="3号楼")
    elsewhere = factories.make_household(building3, room="301")
    _care(a.community, elsewhere, "别楼孙奶奶", lives_alone=True)
    # Community B's care household.
    _care(duty_scene.b.community, duty_scene.b.household, "乙社区周奶奶", lives_alone=True)
    return SimpleNamespace(
        shift=shift,
        a=a,
        b=duty_scene.b,
        leader=duty_scene.leader,
        elsewhere=elsewhere,
        plain=plain,
    )


def _visits() -> list[DoorVisit]:
    db.session.commit()
    return list(db.session.scalars(select(DoorVisit).order_by(DoorVisit.id)))


def test_checklist_lists_consented_care_households_of_the_route_in_order(
    client, auth, watch, duty_english
):
    auth.login("leader_a")
    response = client.get(f"/shifts/{watch.shift.id}/door-watch")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "空巢赵爷爷" in body and "独居李奶奶" in body
    assert body.index("空巢赵爷爷") < body.index("独居李奶奶")  # route order: building 2 first
    assert "Empty nest" in body and "Disabled" in body and "Elderly, living alone" in body
    for absent in ("普通居民", "别楼孙奶奶", "乙社区周奶奶", watch.a.resident.person.name):
        assert absent not in body
    assert f'id="visit-{watch.a.household2.id}"' in body
    assert f'id="visit-{watch.plain.id}"' not in body


def test_shift_without_route_says_so(client, auth, duty_scene, duty_english):
    shift = duty_make_shift(duty_scene.a, kind="door_watch", leader_id=duty_scene.leader.person_id)
    auth.login("leader_a")
    body = client.get(f"/shifts/{shift.id}/door-watch").get_data(as_text=True)
    assert "no buildings on its route" in body


def test_checklist_runs_a_fixed_number_of_queries(client, auth, watch):
    auth.login("leader_a")
    url = f"/shifts/{watch.shift.id}/door-watch"
    client.get(url)
    with duty_count_queries() as few:
        client.get(url)
    for n in range(5):
        household = factories.make_household(watch.a.building2, room=f"5{n}1")
        _care(watch.a.community, household, f"老人{n}", lives_alone=True)
    client.post(
        f"/shifts/{watch.shift.id}/door-watch/{watch.a.household.id}", data={"outcome": "ok"}
    )
    with duty_count_queries() as many:
        body = client.get(url).get_data(as_text=True)
    assert "老人4" in body
    assert many["n"] == few["n"]


def test_visit_is_recorded_then_corrected_in_place(client, auth, watch, duty_english):
    auth.login("leader_a")
    url = f"/shifts/{watch.shift.id}/door-watch/{watch.a.household.id}"
    response = client.post(url, data={"outcome": "ok", "note": "精神不错"})
    assert response.status_code == 303
    assert response.headers["Location"] == (
        f"/shifts/{watch.shift.id}/door-watch#visit-{watch.a.household.id}"
    )
    [visit] = _visits()
    assert (visit.outcome, visit.note, visit.visited_by_id) == ("ok", "精神不错", watch.leader.id)
    assert visit.community_id == watch.a.community.id

    auth.logout()
    auth.login("secretary_a")
    client.post(url, data={"outcome": "needs_help", "note": "水管漏水"})
    [visit] = _visits()
    assert (visit.outcome, visit.note) == ("needs_help", "水管漏水")
    assert visit.visited_by_id == watch.a.secretary.id
    assert visit.request_id is None


def test_needs_help_says_honestly_what_happens(client, auth, watch, duty_english):
    auth.login("leader_a")
    response = client.post(
        f"/shifts/{watch.shift.id}/door-watch/{watch.a.household2.id}",
        data={"outcome": "needs_help", "note": "摔倒了"},
        headers=DUTY_HX,
    )
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith(f'<article class="card" id="visit-{watch.a.household2.id}"')
    assert "<html" not in body
    assert response.headers["HX-Trigger"] == "door-visit-recorded"
    assert "HX-Request" in response.headers["Vary"]
    assert "recorded for the grid worker" in body
    assert "request will be opened" not in body.lower()
    assert "空巢赵爷爷" in body
    [visit] = _visits()
    assert visit.outcome == "needs_help" and visit.request_id is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"outcome": "fine"}, "Choose how the visit went."),
        ({}, "Choose how the visit went."),
        ({"outcome": "ok", "note": "长" * 501}, "500"),
    ],
)
def test_bad_visit_input_is_refused(client, auth, watch, duty_english, data, message):
    auth.login("leader_a")
    url = f"/shifts/{watch.shift.id}/door-watch/{watch.a.household.id}"
    for headers in ({}, DUTY_HX):
        response = client.post(url, data=data, headers=headers)
        assert response.status_code == 200
        assert message in response.get_data(as_text=True)
    assert _visits() == []


def test_household_off_the_route_is_not_found(client, auth, watch):
    auth.login("leader_a")
    response = client.post(
        f"/shifts/{watch.shift.id}/door-watch/{watch.elsewhere.id}", data={"outcome": "ok"}
    )
    assert response.status_code == 404
    assert _visits() == []


def test_household_of_another_community_is_not_found(client, auth, watch):
    auth.login("secretary_a")
    response = client.post(
        f"/shifts/{watch.shift.id}/door-watch/{watch.b.household.id}", data={"outcome": "ok"}
    )
    assert response.status_code == 404
    assert db.session.scalar(select(func.count(DoorVisit.id))) == 0


def test_visits_wait_until_check_in_opens(client, auth, duty_scene, duty_english):
    a = duty_scene.a
    shift = duty_make_shift(
        a,
        starts_in=timedelta(days=2),
        kind="door_watch",
        leader_id=duty_scene.leader.person_id,
        route=[{"building_id": a.building.id, "label": ""}],
    )
    auth.login("leader_a")
    response = client.post(
        f"/shifts/{shift.id}/door-watch/{a.household.id}", data={"outcome": "ok"}
    )
    assert response.status_code == 200
    assert "Visits can be recorded from" in response.get_data(as_text=True)
    assert _visits() == []


def test_cancelled_shift_records_no_visit(client, auth, watch, duty_english):
    watch.shift.status = "cancelled"
    db.session.commit()
    auth.login("leader_a")
    response = client.post(
        f"/shifts/{watch.shift.id}/door-watch/{watch.a.household.id}", data={"outcome": "ok"}
    )
    assert "This shift was cancelled." in response.get_data(as_text=True)
    assert _visits() == []
