"""Who may do what on the day: every role, the leader, anonymous; and community A/B isolation."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.patrols.models import DoorVisit, Hazard, PatrolReport, Shift, Signup
from tests.patrols.conftest import DUTY_HX, duty_make_shift

ROLES = ("resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin")
LEADS = {"grid_worker", "secretary", "leader"}

LEADER_PAGES = {
    "lead": "/shifts/{shift}/lead",
    "qr": "/shifts/{shift}/qr.svg",
    "door_watch": "/shifts/{shift}/door-watch",
    "report": "/shifts/{shift}/report",
}


def _username(scene, who: str) -> str:
    return "leader_a" if who == "leader" else scene.a.users[who].username


@pytest.fixture
def scene(duty_scene):
    a = duty_scene.a
    duty_scene.shift.route = [{"building_id": a.building.id, "label": ""}]
    db.session.commit()
    return duty_scene


@pytest.mark.parametrize("page", LEADER_PAGES)
@pytest.mark.parametrize("who", [*ROLES, "leader"])
def test_leader_pages_by_role(client, auth, scene, page, who):
    auth.login(_username(scene, who))
    response = client.get(LEADER_PAGES[page].format(shift=scene.shift.id))
    assert response.status_code == (200 if who in LEADS else 403)


@pytest.mark.parametrize("page", LEADER_PAGES)
def test_leader_pages_need_sign_in(client, scene, page):
    url = LEADER_PAGES[page].format(shift=scene.shift.id)
    response = client.get(url)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    htmx = client.get(url, headers=DUTY_HX)
    assert htmx.headers["HX-Redirect"].startswith("/login")


@pytest.mark.parametrize("page", LEADER_PAGES)
def test_grid_worker_of_another_grid_does_not_lead(client, auth, scene, page):
    shift = duty_make_shift(scene.a, grid_id=scene.a.grid2.id)
    auth.login("gridworker_a")
    assert client.get(LEADER_PAGES[page].format(shift=shift.id)).status_code == 403


def test_leader_of_one_shift_does_not_lead_another(client, auth, scene):
    other = duty_make_shift(scene.a)
    auth.login("leader_a")
    assert client.get(f"/shifts/{other.id}/lead").status_code == 403


def _state() -> tuple:
    db.session.commit()
    signups = db.session.execute(
        select(
            Signup.id, Signup.checked_in_at, Signup.checked_out_at, Signup.attendance, Signup.hours
        ).order_by(Signup.id)
    ).all()
    counts = tuple(
        len(db.session.scalars(select(m.id)).all()) for m in (DoorVisit, PatrolReport, Hazard)
    )
    return tuple(map(tuple, signups)), counts


def _posts(scene) -> dict[str, tuple[str, dict]]:
    shift, a = scene.shift.id, scene.a
    return {
        "attendance": (
            f"/shifts/{shift}/attendance/{scene.signup.id}",
            {"attendance": "present"},
        ),
        "door_visit": (f"/shifts/{shift}/door-watch/{a.household.id}", {"outcome": "ok"}),
        "report": (f"/shifts/{shift}/report", {"summary": "巡逻正常"}),
        "hazard_add": (f"/shifts/{shift}/report/hazards", {"description": "路灯坏了"}),
    }


@pytest.mark.parametrize("action", ["attendance", "door_visit", "report", "hazard_add"])
@pytest.mark.parametrize("who", [*ROLES, "leader"])
def test_leader_actions_by_role(client, auth, scene, action, who):
    before = _state()
    auth.login(_username(scene, who))
    url, data = _posts(scene)[action]
    response = client.post(url, data=data)
    if who in LEADS:
        assert response.status_code == 303
        assert _state() != before
    else:
        assert response.status_code == 403
        assert _state() == before


@pytest.mark.parametrize("action", ["attendance", "door_visit", "report", "hazard_add"])
def test_leader_actions_need_sign_in(client, scene, action):
    before = _state()
    url, data = _posts(scene)[action]
    response = client.post(url, data=data)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.post(url, data=data, headers=DUTY_HX).headers["HX-Redirect"].startswith("/login")
    assert _state() == before


@pytest.mark.parametrize("who", ROLES)
def test_check_in_pages_open_to_everyone_signed_in(client, auth, scene, who):
    auth.login(_username(scene, who))
    assert client.get("/checkin").status_code == 200
    assert client.get(f"/shifts/{scene.shift.id}/checkin").status_code == 200


@pytest.mark.parametrize("url", ["/checkin", "/shifts/{shift}/checkin"])
def test_check_in_needs_sign_in(client, scene, url):
    response = client.get(url.format(shift=scene.shift.id))
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_checkout_needs_sign_in(client, scene):
    response = client.post(f"/shifts/{scene.shift.id}/checkout")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# --- isolation -------------------------------------------------------------------------------


@pytest.fixture
def b_ids(scene):
    b = scene.b
    report = PatrolReport(community_id=b.community.id, shift_id=scene.b_shift.id, summary="乙")
    db.session.add(report)
    db.session.flush()
    hazard = Hazard(
        community_id=b.community.id,
        report_id=report.id,
        description="乙社区隐患",
        photo="2026/" + "b" * 32 + ".jpg",
    )
    db.session.add(hazard)
    scene.b_shift.route = [{"building_id": b.building.id, "label": ""}]
    db.session.commit()
    return {
        "shift_id": scene.b_shift.id,
        "signup_id": scene.b_signup.id,
        "household_id": b.household.id,
        "hazard_id": hazard.id,
    }


def _b_rows() -> list:
    db.session.commit()
    rows = []
    for model in (Shift, Signup, DoorVisit, PatrolReport, Hazard):
        table = model.__table__
        rows.append(sorted(map(tuple, db.session.execute(select(table)).all()), key=repr))
    return rows


def _duty_rules(app):
    return [r for r in app.url_map.iter_rules() if r.endpoint.startswith("duty.") and r.arguments]


def _url(rule, ids: dict[str, int]) -> str:
    path = rule.rule
    for name in rule.arguments:
        path = path.replace(f"<int:{name}>", str(ids[name]))
    return path


@pytest.mark.parametrize("who", [*ROLES, "leader"])
def test_community_b_ids_answer_404_and_change_nothing(app, client, auth, scene, b_ids, who):
    auth.login(_username(scene, who))
    before = _b_rows()
    data = {
        "code": scene.b_shift.checkin_code,
        "attendance": "present",
        "outcome": "needs_help",
        "summary": "越权",
        "description": "越权",
    }
    rules = _duty_rules(app)
    assert len(rules) == 10
    for rule in rules:
        url = _url(rule, b_ids)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method, data=data)
            assert response.status_code == 404, (who, method, url, response.status_code)
            body = response.get_data(as_text=True)
            assert "乙社区隐患" not in body and scene.b_shift.checkin_code not in body
            htmx = client.open(url, method=method, data=data, headers=DUTY_HX)
            assert htmx.headers.get("HX-Retarget") == "#flash", (who, method, url)
    assert _b_rows() == before


def test_a_shift_with_b_records_is_not_found(client, auth, scene, b_ids):
    before = _b_rows()
    auth.login("secretary_a")
    shift = scene.shift.id
    attendance = client.post(
        f"/shifts/{shift}/attendance/{b_ids['signup_id']}", data={"attendance": "present"}
    )
    visit = client.post(
        f"/shifts/{shift}/door-watch/{b_ids['household_id']}", data={"outcome": "ok"}
    )
    assert attendance.status_code == 404 and visit.status_code == 404
    assert _b_rows() == before


def test_community_a_code_means_nothing_to_community_b(client, auth, scene):
    auth.login("volunteer_b")
    # volunteer_b's own code works for them; volunteer_a's code (community A) is unknown to them.
    response = client.post("/checkin", data={"code": scene.shift.checkin_code})
    assert response.status_code == 200
    db.session.commit()
    assert db.session.get(Signup, scene.signup.id).checked_in_at is None
