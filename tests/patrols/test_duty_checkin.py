"""Check-in by code or QR link, check-out, and the validity window of the code."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.core.errors import DomainError
from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.patrols import attendance as services
from portal.patrols.models import Shift, Signup
from tests import factories
from tests.patrols.conftest import duty_make_shift, duty_make_signup, duty_reload


def _signup(scene) -> Signup:
    return duty_reload(Signup, scene.signup.id)


# --- the window and the code (service, with a fixed clock) --------------------------------------


@pytest.mark.parametrize(
    ("offset", "valid"),
    [
        (timedelta(minutes=-31), False),  # too early
        (timedelta(minutes=-30), True),  # opens 30 minutes before the start
        (timedelta(0), True),
        (timedelta(hours=2), True),  # the end itself
        (timedelta(hours=2, seconds=1), False),  # expired
    ],
)
def test_code_window(duty_scene, duty_request_en, offset, valid):
    shift = duty_scene.shift
    now = shift.starts_at + offset
    assert services.code_is_open(shift, now) is valid
    person_id = duty_scene.a.volunteer.person_id
    if valid:
        signup = services.validate_checkin(shift, person_id, shift.checkin_code, now)
        assert signup.id == duty_scene.signup.id
    else:
        with pytest.raises(DomainError) as caught:
            services.validate_checkin(shift, person_id, shift.checkin_code, now)
        assert "not valid now" in caught.value.errors["code"]


def test_wrong_code_and_not_signed_up(duty_scene, duty_request_en):
    shift = duty_scene.shift
    now = shift.starts_at
    with pytest.raises(DomainError) as caught:
        services.validate_checkin(shift, duty_scene.a.volunteer.person_id, "WRONG1", now)
    assert caught.value.errors == {"code": "Wrong code. Check it with the shift leader."}
    with pytest.raises(DomainError) as caught:
        services.validate_checkin(shift, duty_scene.a.resident.person_id, shift.checkin_code, now)
    assert caught.value.errors == {"code": "You are not signed up for this shift."}


def test_code_is_normalised(duty_scene, duty_request_en):
    shift = duty_scene.shift
    typed = " " + " ".join(shift.checkin_code.lower()) + " "
    signup = services.validate_checkin(shift, duty_scene.a.volunteer.person_id, typed, now_utc())
    assert signup.id == duty_scene.signup.id


def test_check_in_twice_keeps_the_first_time(duty_scene, duty_request_en):
    shift = duty_scene.shift
    person_id = duty_scene.a.volunteer.person_id
    first = services.check_in(shift, person_id, shift.checkin_code, shift.starts_at)
    later = services.check_in(
        shift, person_id, shift.checkin_code, shift.starts_at + timedelta(minutes=20)
    )
    db.session.commit()
    assert first.won and not later.won
    assert _signup(duty_scene).checked_in_at == shift.starts_at


# --- over HTTP: the QR link -------------------------------------------------------------------


def _checkin_url(shift: Shift, code: str | None = None) -> str:
    url = f"/shifts/{shift.id}/checkin"
    return url + (f"?code={code}" if code else "")


def test_qr_link_shows_a_confirm_button_and_changes_nothing(client, auth, duty_scene, duty_english):
    shift = duty_scene.shift
    auth.login("volunteer_a")
    response = client.get(_checkin_url(shift, shift.checkin_code))
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Check in now" in body
    assert f'value="{shift.checkin_code}"' in body
    assert _signup(duty_scene).checked_in_at is None


def test_confirm_checks_in_and_redirects(client, auth, duty_scene, duty_english):
    shift = duty_scene.shift
    auth.login("volunteer_a")
    before = now_utc()
    response = client.post(_checkin_url(shift), data={"code": shift.checkin_code})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/shifts/{shift.id}/checkin"
    signup = _signup(duty_scene)
    assert signup.checked_in_at is not None and signup.checked_in_at >= before
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Checked in at" in page and "Check out now" in page


def test_double_tap_keeps_the_first_time(client, auth, duty_scene, duty_english):
    shift = duty_scene.shift
    auth.login("volunteer_a")
    client.post(_checkin_url(shift), data={"code": shift.checkin_code})
    first = _signup(duty_scene).checked_in_at
    response = client.post(_checkin_url(shift), data={"code": shift.checkin_code})
    assert response.status_code == 303
    assert _signup(duty_scene).checked_in_at == first
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You had already checked in" in page


@pytest.mark.parametrize(
    ("starts_in", "message"),
    [
        (timedelta(hours=3), "This code is not valid now: check-in opens at"),
        (timedelta(hours=-5), "This code is not valid now: the shift ended at"),
    ],
    ids=["too-early", "expired"],
)
def test_code_outside_its_window(client, auth, world, duty_english, starts_in, message):
    shift = duty_make_shift(world.a, starts_in=starts_in)
    signup = duty_make_signup(shift, world.a.volunteer.person)
    auth.login("volunteer_a")
    shown = client.get(_checkin_url(shift, shift.checkin_code)).get_data(as_text=True)
    assert message in shown
    response = client.post(_checkin_url(shift), data={"code": shift.checkin_code})
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert duty_reload(Signup, signup.id).checked_in_at is None


def test_wrong_code_is_refused(client, auth, duty_scene, duty_english):
    auth.login("volunteer_a")
    response = client.post(_checkin_url(duty_scene.shift), data={"code": "ZZZZZ9"})
    assert response.status_code == 200
    assert "Wrong code" in response.get_data(as_text=True)
    assert _signup(duty_scene).checked_in_at is None


def test_cancelled_shift_refuses_check_in(client, auth, duty_scene, duty_english):
    shift = duty_scene.shift
    shift.status = "cancelled"
    db.session.commit()
    auth.login("volunteer_a")
    response = client.post(_checkin_url(shift), data={"code": shift.checkin_code})
    assert "This shift was cancelled." in response.get_data(as_text=True)
    assert _signup(duty_scene).checked_in_at is None


def test_not_signed_up_sees_why(client, auth, duty_scene, duty_english):
    shift = duty_scene.shift
    auth.login("resident_a")
    page = client.get(_checkin_url(shift, shift.checkin_code)).get_data(as_text=True)
    assert "You are not signed up for this shift." in page
    response = client.post(_checkin_url(shift), data={"code": shift.checkin_code})
    assert response.status_code == 200
    assert "You are not signed up for this shift." in response.get_data(as_text=True)
    assert db.session.scalar(select(Signup).where(Signup.checked_in_at.is_not(None))) is None


def test_waitlisted_place_cannot_check_in(client, auth, world, duty_english):
    shift = duty_make_shift(world.a)
    signup = duty_make_signup(shift, world.a.volunteer.person, status="waitlisted")
    auth.login("volunteer_a")
    response = client.post(_checkin_url(shift), data={"code": shift.checkin_code})
    assert "You are not signed up for this shift." in response.get_data(as_text=True)
    assert duty_reload(Signup, signup.id).checked_in_at is None


def test_request_without_csrf_token_is_refused(client, auth, duty_scene):
    auth.login("volunteer_a")
    shift = duty_scene.shift
    response = client.post(_checkin_url(shift), data={"code": shift.checkin_code}, csrf=False)
    assert response.status_code == 400
    assert _signup(duty_scene).checked_in_at is None


# --- over HTTP: typing the code ----------------------------------------------------------------


def test_typed_code_finds_the_shift(client, auth, duty_scene, duty_english):
    shift = duty_scene.shift
    auth.login("volunteer_a")
    assert client.get("/checkin").status_code == 200
    typed = " ".join(shift.checkin_code.lower())
    response = client.post("/checkin", data={"code": typed})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/shifts/{shift.id}/checkin"
    assert _signup(duty_scene).checked_in_at is not None


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("", "Enter the check-in code."),
        ("QQQQQQ", "Wrong code. Check it with the shift leader."),
    ],
)
def test_typed_code_errors(client, auth, duty_scene, duty_english, code, message):
    auth.login("volunteer_a")
    response = client.post("/checkin", data={"code": code})
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert _signup(duty_scene).checked_in_at is None


def test_typed_code_of_a_shift_one_is_not_on(client, auth, duty_scene, duty_english):
    auth.login("resident_a")
    response = client.post("/checkin", data={"code": duty_scene.shift.checkin_code})
    assert response.status_code == 200
    assert "You are not signed up for the shift with this code." in response.get_data(as_text=True)


def test_typed_code_of_another_community_is_a_wrong_code(client, auth, duty_scene, duty_english):
    # volunteer_b's shift code typed by volunteer_a: community B's shifts are not looked at.
    auth.login("volunteer_a")
    response = client.post("/checkin", data={"code": duty_scene.b_shift.checkin_code})
    assert "Wrong code" in response.get_data(as_text=True)
    assert duty_reload(Signup, duty_scene.b_signup.id).checked_in_at is None


def test_typed_code_expired(client, auth, world, duty_english):
    shift = duty_make_shift(world.a, starts_in=timedelta(hours=-6))
    duty_make_signup(shift, world.a.volunteer.person)
    auth.login("volunteer_a")
    response = client.post("/checkin", data={"code": shift.checkin_code})
    assert "This code is not valid now: the shift ended at" in response.get_data(as_text=True)


def test_check_in_page_lists_shifts_to_check_out_of(client, auth, duty_scene, duty_english):
    signup = duty_scene.signup
    signup.checked_in_at = duty_scene.shift.starts_at
    db.session.commit()
    auth.login("volunteer_a")
    page = client.get("/checkin").get_data(as_text=True)
    assert "Checked in now" in page and duty_scene.shift.title in page


# --- check-out ---------------------------------------------------------------------------------


def test_check_out_records_hours_once(client, auth, world, duty_english):
    # Started 100 minutes ago: checked in at the start, out now = 1 h 40 min -> 1.5 hours.
    shift = duty_make_shift(world.a, starts_in=timedelta(minutes=-100), hours=3)
    signup = duty_make_signup(shift, world.a.volunteer.person, checked_in_at=shift.starts_at)
    auth.login("volunteer_a")
    response = client.post(f"/shifts/{shift.id}/checkout")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/shifts/{shift.id}/checkin"
    row = duty_reload(Signup, signup.id)
    assert row.checked_out_at is not None and row.attendance == "present"
    assert str(row.hours) in ("1.50", "1.5") and row.hours_recorded_at is not None
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "hours recorded" in page

    first_out, first_recorded = row.checked_out_at, row.hours_recorded_at
    again = client.post(f"/shifts/{shift.id}/checkout")
    assert again.status_code == 303
    row = duty_reload(Signup, signup.id)
    assert (row.checked_out_at, row.hours_recorded_at) == (first_out, first_recorded)
    assert "You had already checked out" in client.get(again.headers["Location"]).get_data(
        as_text=True
    )


def test_check_out_before_check_in_is_refused(client, auth, duty_scene, duty_english):
    auth.login("volunteer_a")
    response = client.post(f"/shifts/{duty_scene.shift.id}/checkout")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Check in first" in page
    assert _signup(duty_scene).checked_out_at is None


def test_check_out_closes_two_hours_after_the_end(client, auth, world, duty_english):
    shift = duty_make_shift(world.a, starts_in=timedelta(hours=-5), hours=2)
    signup = duty_make_signup(shift, world.a.volunteer.person, checked_in_at=shift.starts_at)
    auth.login("volunteer_a")
    response = client.post(f"/shifts/{shift.id}/checkout")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Check-out closed at" in page
    row = duty_reload(Signup, signup.id)
    assert row.checked_out_at is None and row.hours_recorded_at is None


def test_check_out_still_open_just_after_the_end(client, auth, world, duty_english):
    shift = duty_make_shift(world.a, starts_in=timedelta(hours=-3), hours=2)
    signup = duty_make_signup(shift, world.a.volunteer.person, checked_in_at=shift.starts_at)
    auth.login("volunteer_a")
    client.post(f"/shifts/{shift.id}/checkout")
    row = duty_reload(Signup, signup.id)
    assert row.checked_out_at is not None
    assert str(row.hours) in ("2.00", "2")  # clipped to the shift's end


def test_no_show_cannot_check_out(client, auth, duty_scene, duty_english):
    signup = duty_scene.signup
    signup.checked_in_at = duty_scene.shift.starts_at
    signup.attendance = "no_show"
    db.session.commit()
    auth.login("volunteer_a")
    response = client.post(f"/shifts/{duty_scene.shift.id}/checkout")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "marked you absent" in page
    assert _signup(duty_scene).hours_recorded_at is None


def test_someone_elses_place_is_not_checked_out(client, auth, duty_scene, duty_english):
    other = factories.make_user("volunteer", duty_scene.a.community)
    signup = duty_scene.signup
    signup.checked_in_at = duty_scene.shift.starts_at
    db.session.commit()
    auth.login(other.username)
    client.post(f"/shifts/{duty_scene.shift.id}/checkout")
    assert _signup(duty_scene).checked_out_at is None
