"""Every route, every role, with and without htmx: nothing crashes, and nobody in community A
reads or changes anything of community B, whatever URL they try."""

from __future__ import annotations

from datetime import date, time, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from portal.care.models import CareHousehold, HelpTask, help_task_household
from portal.certificates.models import Certificate
from portal.certificates.services import new_number
from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.help.apikeys import create_api_key
from portal.help.models import Category, HelpRequest, RequestPhoto
from portal.notifications.models import Notification
from portal.patrols.codes import new_checkin_code
from portal.patrols.models import Hazard, PatrolReport, Shift, ShiftSeries, Signup
from portal.points import ledger
from portal.rewards.models import Redemption, Reward

ROLES = ("anonymous", "resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin")


def _add_duties(side) -> None:
    """A series, a shift led by the side's volunteer with their sign-up, a hazard report and a
    notification, so that every route taking such an id has one of each community."""
    start = now_utc() + timedelta(minutes=20)
    series = ShiftSeries(
        community_id=side.community.id, grid_id=side.grid.id, kind="patrol", title="周巡",
        rrule="FREQ=WEEKLY;BYDAY=MO", starts_on=date(2030, 1, 7), ends_on=date(2030, 2, 4),
        start_time=time(19), duration_minutes=60, capacity=5,
    )  # fmt: skip
    shift = Shift(
        community_id=side.community.id, grid_id=side.grid.id, kind="door_watch", title="巡逻",
        route=[{"building_id": side.building.id, "label": ""}], starts_at=start,
        ends_at=start + timedelta(hours=2), capacity=5, taken=1, checkin_code=new_checkin_code(),
        leader_id=side.volunteer.person.id,
    )  # fmt: skip
    db.session.add_all([series, shift])
    db.session.flush()
    signup = Signup(
        community_id=side.community.id, shift_id=shift.id, person_id=side.volunteer.person.id,
        status="confirmed",
    )  # fmt: skip
    report = PatrolReport(community_id=side.community.id, shift_id=shift.id, summary="正常")
    report.hazards = [Hazard(community_id=side.community.id, description="路灯坏了")]
    notification = Notification(
        community_id=side.community.id, user_id=side.volunteer.id, kind="shift_changed",
        params={"title": "巡逻", "when": "2030-01-07 19:00"}, link="/", dedupe_key="x",
    )  # fmt: skip
    side.volunteer.calendar_token = f"calendar-token-{side.community.id}-long-secret"
    db.session.add_all([signup, report, notification])
    db.session.commit()
    side.series, side.shift, side.signup = series, shift, signup
    side.hazard, side.notification = report.hazards[0], notification
    # help (intake): a category, a request of the side's resident and a photo of it.
    major = Category(
        community_id=side.community.id, code="repair", name_zh="报修", name_en="Repair"
    )
    db.session.add(major)
    db.session.flush()
    minor = Category(
        community_id=side.community.id, parent_id=major.id, code="repair.water", name_zh="漏水",
        name_en="Leak", handler="grid_worker", time_limit_hours=24,
    )  # fmt: skip
    db.session.add(minor)
    db.session.flush()
    help_request = HelpRequest(
        community_id=side.community.id, grid_id=side.grid.id, category_id=minor.id,
        requester_id=side.resident.person.id, created_by_id=side.resident.id, description="漏水",
        household_id=side.household.id,
    )  # fmt: skip
    db.session.add(help_request)
    db.session.flush()
    request_photo = RequestPhoto(
        community_id=side.community.id, request_id=help_request.id, file="2030/" + "0" * 32 + ".jpg"
    )
    db.session.add(request_photo)
    db.session.commit()
    side.help_category, side.help_request, side.request_photo = minor, help_request, request_photo
    # care: the side's household enrolled for regular help, with a task.
    side.care = CareHousehold(
        community_id=side.community.id, grid_id=side.grid.id, household_id=side.household.id,
        consent_person_id=side.resident.person.id, door_code=f"D{side.community.id:07d}",
    )  # fmt: skip
    side.task = HelpTask(
        community_id=side.community.id, grid_id=side.grid.id, building_id=side.building.id,
        category_id=minor.id, title="买菜", private_notes="钥匙在门卫",
    )  # fmt: skip
    db.session.add_all([side.care, side.task])
    db.session.flush()
    db.session.execute(
        help_task_household.insert().values(task_id=side.task.id, household_id=side.household.id)
    )
    db.session.commit()
    # catalogue: an Open311 API key of the side's community.
    side.api_key, _full_key = create_api_key(side.community.id, "12345", None)
    db.session.commit()
    # points: a ledger entry of the side's volunteer, a reward, a redemption, a certificate.
    person_id = side.volunteer.person.id
    side.entry = ledger.adjust(
        person_id, points=100, hours=Decimal(3), reason="开账", actor_id=side.secretary.id
    )
    side.reward = Reward(community_id=side.community.id, name="大米", cost=10, stock=5)
    db.session.add(side.reward)
    db.session.flush()
    side.redemption = Redemption(
        community_id=side.community.id, reward_id=side.reward.id, person_id=person_id, cost=10,
        voucher_code=f"V{side.community.id:07d}",
    )  # fmt: skip
    side.certificate = Certificate(
        number=new_number(2030), person_id=person_id, community_id=side.community.id,
        holder_name=side.volunteer.person.name, community_name=side.community.name,
        period_start=date(2030, 1, 1), period_end=date(2030, 1, 31), total_hours=Decimal(3),
        activity_count=1, activities=[],
    )  # fmt: skip
    db.session.add_all([side.redemption, side.certificate])
    db.session.commit()


@pytest.fixture
def duties(world):
    _add_duties(world.a)
    _add_duties(world.b)
    return world


def _ids(side) -> dict[str, int]:
    return {
        "shift_id": side.shift.id,
        "series_id": side.series.id,
        "signup_id": side.signup.id,
        "hazard_id": side.hazard.id,
        "notification_id": side.notification.id,
        "token": side.volunteer.calendar_token,
        "person_id": side.resident.person.id,
        "household_id": side.household.id,
        "grid_id": side.grid.id,
        "estate_id": side.estate.id,
        "building_id": side.building.id,
        "entrance_id": side.entrance.id,
        "community_id": side.community.id,
        "volunteer_id": side.pending_volunteer.id,
        "request_id": side.help_request.id,
        "photo_id": side.request_photo.id,
        "action": "comment",
        "category_id": side.help_category.id,
        "key_id": side.api_key.id,
        "code": "repair.water",
        "fmt": "json",
        "entry_id": side.entry.id,
        "reward_id": side.reward.id,
        "redemption_id": side.redemption.id,
        "number": side.certificate.number,
        "user_id": side.resident.id,
        "care_id": side.care.id,
        "task_id": side.task.id,
    }


def _routes(app):
    for rule in app.url_map.iter_rules():
        # Signing out mid-walk would test the rest as anonymous: logout has its own tests.
        if rule.endpoint in ("static", "auth.logout"):
            continue
        yield rule


def _url(rule, ids: dict[str, int]) -> str:
    path = rule.rule
    for name in rule.arguments:
        path = path.replace(f"<int:{name}>", str(ids[name])).replace(f"<{name}>", str(ids[name]))
    return path


def _snapshot() -> dict[str, list]:
    """Every row of every table except the sign-in failure log and the audit log (a refused
    request is recorded there: tests/security/test_audit.py checks those rows)."""
    rows = {}
    for table in db.metadata.sorted_tables:
        if table.name in ("login_failure", "audit_log"):
            continue
        rows[table.name] = sorted(
            map(tuple, db.session.execute(text(f'SELECT * FROM "{table.name}"')).all()), key=repr
        )
    db.session.commit()
    return rows


def _sign_in(client, auth, world, role):
    if role != "anonymous":
        auth.login(world.a.users[role].username)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("htmx", [False, True])
def test_no_route_answers_another_communitys_ids(app, client, auth, duties, role, htmx):
    world = duties
    _sign_in(client, auth, world, role)
    headers = {"HX-Request": "true"} if htmx else {}
    before = _snapshot()
    b_ids = _ids(world.b)
    checked = 0
    for rule in _routes(app):
        if not rule.arguments:
            continue
        url = _url(rule, b_ids)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method, data={}, headers=headers)
            checked += 1
            if rule.endpoint in OPEN_API:
                # Open311 needs no sign-in; without a jurisdiction or key it answers nothing.
                expected = (200,) if rule.endpoint == "open311.discovery" else (400, 403, 404)
                assert response.status_code in expected, (method, url)
                assert world.b.resident.person.name not in body_of(response)
                continue
            if rule.endpoint in VERIFY_PAGES:
                # Anyone holding a certificate's number may check it: masked, never the name.
                assert response.status_code == 200, (method, url)
                assert world.b.volunteer.person.name not in body_of(response)
                continue
            if rule.endpoint in SECRET_LINKS:
                # Public by design, but B's secret answers nobody but its holder's URL.
                assert response.status_code == 200 and world.b.shift.title in body_of(response)
                continue
            if role == "anonymous":
                if htmx:
                    assert response.headers.get("HX-Redirect", "").startswith("/login"), url
                else:
                    assert response.status_code == 302, (method, url, response.status_code)
                    assert response.headers["Location"].startswith("/login")
            elif htmx:
                # htmx does not swap error answers: they come as a message for the flash area.
                assert response.headers.get("HX-Retarget") == "#flash", (method, url)
            else:
                assert response.status_code in (403, 404), (method, url, response.status_code)
            body = response.get_data(as_text=True)
            assert world.b.resident.person.name not in body, (method, url)
    assert checked > 30
    assert _snapshot() == before


@pytest.mark.parametrize("role", ROLES)
def test_every_route_answers_every_role_without_crashing(app, client, auth, duties, role):
    world = duties
    _sign_in(client, auth, world, role)
    a_ids = _ids(world.a)
    for rule in _routes(app):
        url = _url(rule, a_ids)
        if role != "anonymous":
            assert client.get("/").status_code == 200, f"signed out before {url}"
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for headers in ({}, {"HX-Request": "true"}):
                response = client.open(url, method=method, data={}, headers=headers)
                assert response.status_code in (200, 302, 303, 400, 403, 404, 409), (
                    role,
                    method,
                    url,
                    response.status_code,
                )
                if role == "anonymous" and rule.endpoint not in PUBLIC:
                    assert response.status_code in (200, 302), (method, url)
                    if response.status_code == 200:
                        assert response.headers.get("HX-Redirect", "").startswith("/login")


PUBLIC = {
    "auth.login", "auth.signup", "auth.language", "core.healthz", "shifts.calendar_feed",
    "certificates.verify",
}  # fmt: skip
# Public pages that state what a number certifies (masked), for whoever holds the number.
VERIFY_PAGES = {"certificates.verify"}
# Open311 GeoReport v2 (portal/help/open311.py): public by the standard, scoped by jurisdiction_id
# or api_key, never by the session.
OPEN_API = {
    "open311.discovery", "open311.services", "open311.service_definition",
    "open311.requests_index", "open311.request_detail", "open311.token_detail", "open311.create",
}  # fmt: skip
PUBLIC |= OPEN_API
# Routes whose URL carries a secret (a calendar token): whoever has the URL may read it.
SECRET_LINKS = {"shifts.calendar_feed"}


def body_of(response) -> str:
    return response.get_data(as_text=True)
