"""The leader's page: code, QR code, roster, and marking attendance by hand (htmx and plain)."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from datetime import timedelta
from decimal import Decimal

import segno

from portal.extensions import db
from portal.patrols.models import Signup
from tests import factories
from tests.patrols.conftest import (
    DUTY_HX,
    duty_count_queries,
    duty_make_shift,
    duty_make_signup,
    duty_reload,
)

SVG = "{http://www.w3.org/2000/svg}"


def test_leader_page_shows_code_qr_and_roster(client, auth, duty_scene, duty_english):
    shift = duty_scene.shift
    duty_scene.signup.checked_in_at = shift.starts_at + timedelta(minutes=3)
    db.session.commit()
    auth.login("leader_a")
    response = client.get(f"/shifts/{shift.id}/lead")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert shift.checkin_code in body
    assert f'src="/shifts/{shift.id}/qr.svg"' in body
    assert duty_scene.a.volunteer.person.name in body
    assert f'id="attendee-{duty_scene.signup.id}"' in body
    assert "1 signed up · 1 checked in · 0 present" in body


def test_roster_lists_confirmed_places_only(client, auth, duty_scene):
    waiting = factories.make_user("volunteer", duty_scene.a.community, name="候补王")
    duty_make_signup(duty_scene.shift, waiting.person, status="waitlisted")
    auth.login("secretary_a")
    body = client.get(f"/shifts/{duty_scene.shift.id}/lead").get_data(as_text=True)
    assert "候补王" not in body


def test_qr_code_is_svg_of_the_absolute_check_in_url(client, auth, duty_scene):
    shift = duty_scene.shift
    auth.login("leader_a")
    response = client.get(f"/shifts/{shift.id}/qr.svg")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert "no-store" in response.headers["Cache-Control"]
    root = ET.fromstring(response.data)  # well-formed XML
    assert root.tag == f"{SVG}svg"
    assert root.find(f"{SVG}path") is not None
    # The same symbol as the one for the expected URL: the QR code carries exactly that link.
    expected_url = f"http://localhost/shifts/{shift.id}/checkin?code={shift.checkin_code}"
    buffer = io.BytesIO()
    segno.make(expected_url, error="m").save(buffer, kind="svg", scale=6, border=2)
    expected = ET.fromstring(buffer.getvalue()).find(f"{SVG}path").get("d")
    assert root.find(f"{SVG}path").get("d") == expected


def test_qr_code_of_each_shift_differs(client, auth, duty_scene):
    other = duty_make_shift(duty_scene.a, leader_id=duty_scene.leader.person_id)
    auth.login("leader_a")
    first = client.get(f"/shifts/{duty_scene.shift.id}/qr.svg").data
    second = client.get(f"/shifts/{other.id}/qr.svg").data
    assert first != second


def test_leader_page_runs_a_fixed_number_of_queries(client, auth, duty_scene):
    shift = duty_scene.shift
    auth.login("leader_a")
    url = f"/shifts/{shift.id}/lead"
    client.get(url)
    with duty_count_queries() as few:
        client.get(url)
    for n in range(6):
        user = factories.make_user("volunteer", duty_scene.a.community, name=f"志愿者{n}")
        duty_make_signup(shift, user.person, checked_in_at=shift.starts_at)
    with duty_count_queries() as many:
        body = client.get(url).get_data(as_text=True)
    assert "志愿者5" in body
    assert many["n"] == few["n"]


# --- marking attendance ----------------------------------------------------------------------


def _mark_url(scene, signup=None) -> str:
    signup = signup or scene.signup
    return f"/shifts/{scene.shift.id}/attendance/{signup.id}"


def test_mark_present_with_htmx_returns_the_row(client, auth, duty_scene, duty_english):
    auth.login("leader_a")
    response = client.post(_mark_url(duty_scene), data={"attendance": "present"}, headers=DUTY_HX)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "<html" not in body
    assert body.lstrip().startswith(f'<tr id="attendee-{duty_scene.signup.id}"')
    assert "HX-Request" in response.headers["Vary"]
    assert response.headers["HX-Trigger"] == "attendance-marked"
    assert "present, 2.00 hours recorded" in body
    row = duty_reload(Signup, duty_scene.signup.id)
    assert row.attendance == "present" and row.hours == Decimal("2.00")
    assert row.attendance_marked_by_id == duty_scene.leader.id


def test_mark_without_javascript_redirects(client, auth, duty_scene, duty_english):
    auth.login("secretary_a")
    response = client.post(_mark_url(duty_scene), data={"attendance": "no_show"})
    assert response.status_code == 303
    assert response.headers["Location"] == (
        f"/shifts/{duty_scene.shift.id}/lead#attendee-{duty_scene.signup.id}"
    )
    assert duty_reload(Signup, duty_scene.signup.id).attendance == "no_show"
    page = client.get(f"/shifts/{duty_scene.shift.id}/lead").get_data(as_text=True)
    assert "marked as a no-show" in page


def test_present_twice_records_hours_once(client, auth, duty_scene, duty_english):
    auth.login("leader_a")
    client.post(_mark_url(duty_scene), data={"attendance": "present"}, headers=DUTY_HX)
    first = duty_reload(Signup, duty_scene.signup.id).hours_recorded_at
    response = client.post(_mark_url(duty_scene), data={"attendance": "present"}, headers=DUTY_HX)
    assert "hours were already recorded" in response.get_data(as_text=True)
    assert duty_reload(Signup, duty_scene.signup.id).hours_recorded_at == first


def test_no_show_after_hours_is_refused_with_a_message(client, auth, duty_scene, duty_english):
    auth.login("leader_a")
    client.post(_mark_url(duty_scene), data={"attendance": "present"})
    response = client.post(_mark_url(duty_scene), data={"attendance": "no_show"}, headers=DUTY_HX)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Hours were already recorded" in body
    assert "HX-Trigger" not in response.headers
    row = duty_reload(Signup, duty_scene.signup.id)
    assert row.attendance == "present" and row.hours == Decimal("2.00")


def test_unknown_mark_shows_a_message(client, auth, duty_scene, duty_english):
    auth.login("leader_a")
    response = client.post(_mark_url(duty_scene), data={"attendance": "late"}, headers=DUTY_HX)
    assert "Choose present or no-show." in response.get_data(as_text=True)
    assert duty_reload(Signup, duty_scene.signup.id).attendance is None


def test_mark_before_check_in_opens_is_refused(client, auth, world, duty_english):
    leader = factories.make_user("volunteer", world.a.community, username="early_leader")
    shift = duty_make_shift(world.a, starts_in=timedelta(days=1), leader_id=leader.person_id)
    signup = duty_make_signup(shift, world.a.volunteer.person)
    auth.login("early_leader")
    response = client.post(
        f"/shifts/{shift.id}/attendance/{signup.id}", data={"attendance": "no_show"}
    )
    assert response.status_code == 303
    assert "Attendance can be marked from" in client.get(response.headers["Location"]).get_data(
        as_text=True
    )
    assert duty_reload(Signup, signup.id).attendance is None


def test_signup_of_another_shift_is_not_found(client, auth, duty_scene):
    other = duty_make_shift(duty_scene.a)
    stranger = duty_make_signup(other, duty_scene.a.resident.person)
    auth.login("leader_a")
    response = client.post(
        f"/shifts/{duty_scene.shift.id}/attendance/{stranger.id}", data={"attendance": "present"}
    )
    assert response.status_code == 404
    assert duty_reload(Signup, stranger.id).attendance is None


def test_qr_code_ignores_a_forged_host(app, client, auth, duty_scene):
    shift = duty_scene.shift
    app.config["SERVER_NAME"] = None  # url_for would then follow the Host header
    auth.login("leader_a")
    cookie = client.get_cookie("session", domain="localhost")
    client.set_cookie("session", cookie.value, domain="evil.example")
    response = client.get(f"/shifts/{shift.id}/qr.svg", headers={"Host": "evil.example"})
    assert response.status_code == 200
    expected_url = f"http://localhost/shifts/{shift.id}/checkin?code={shift.checkin_code}"
    buffer = io.BytesIO()
    segno.make(expected_url, error="m").save(buffer, kind="svg", scale=6, border=2)
    expected = ET.fromstring(buffer.getvalue()).find(f"{SVG}path").get("d")
    assert ET.fromstring(response.data).find(f"{SVG}path").get("d") == expected
