"""Hours: the overlap with the shift, rounded down to a quarter hour, recorded exactly once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from portal.core.errors import DomainError
from portal.extensions import db
from portal.patrols import attendance as services
from portal.patrols.models import Signup
from tests.patrols.conftest import duty_make_shift, duty_make_signup, duty_reload

MIN = timedelta(minutes=1)


@pytest.fixture
def shift(world):
    return duty_make_shift(world.a, starts_in=timedelta(hours=-4), hours=2)


@pytest.mark.parametrize(
    ("check_in", "check_out", "hours"),
    [
        (0, 120, "2.00"),
        (-30, 150, "2.00"),  # early and late count only inside the shift
        (0, 59, "0.75"),  # rounded down to the quarter hour
        (0, 60, "1.00"),
        (14, 120, "1.75"),
        (16, 120, "1.50"),
        (130, 140, "0.00"),  # entirely after the end
        (-60, -10, "0.00"),  # entirely before the start
    ],
)
def test_hours_between(shift, check_in, check_out, hours):
    start = shift.starts_at
    assert services.hours_between(shift, start + check_in * MIN, start + check_out * MIN) == (
        Decimal(hours)
    )


def test_record_hours_only_once(shift, world):
    signup = duty_make_signup(shift, world.a.volunteer.person)
    now = shift.ends_at
    assert services.record_hours(signup, Decimal("1.25"), now) is True
    assert services.record_hours(signup, Decimal("2.00"), now + MIN) is False
    db.session.commit()
    row = duty_reload(Signup, signup.id)
    assert row.hours == Decimal("1.25") and row.hours_recorded_at == now


def test_verified_hours_for_sums_recorded_hours_only(world):
    person = world.a.volunteer.person
    done = duty_make_shift(world.a, starts_in=timedelta(days=-3))
    also = duty_make_shift(world.a, starts_in=timedelta(days=-2))
    pending = duty_make_shift(world.a, starts_in=timedelta(days=-1))
    for s, hours in ((done, "2.00"), (also, "1.25")):
        signup = duty_make_signup(s, person)
        services.record_hours(signup, Decimal(hours), s.ends_at)
    duty_make_signup(pending, person, checked_in_at=pending.starts_at)
    db.session.commit()
    assert services.verified_hours_for(person.id) == Decimal("3.25")
    assert services.verified_hours_for(world.a.resident.person_id) == Decimal("0.00")


def test_present_without_times_is_the_shift_duration(shift, world, duty_request_en):
    signup = duty_make_signup(shift, world.a.volunteer.person)
    outcome = services.mark_attendance(signup, "present", world.a.secretary, shift.ends_at)
    db.session.commit()
    assert outcome.hours_recorded
    row = duty_reload(Signup, signup.id)
    assert row.attendance == "present" and row.hours == Decimal("2.00")
    assert row.attendance_marked_by_id == world.a.secretary.id


def test_present_with_check_in_only_counts_from_check_in(shift, world, duty_request_en):
    signup = duty_make_signup(
        shift, world.a.volunteer.person, checked_in_at=shift.starts_at + 40 * MIN
    )
    services.mark_attendance(signup, "present", world.a.secretary, shift.ends_at)
    db.session.commit()
    assert duty_reload(Signup, signup.id).hours == Decimal("1.25")


def test_present_twice_records_once(shift, world, duty_request_en):
    signup = duty_make_signup(shift, world.a.volunteer.person)
    first = services.mark_attendance(signup, "present", world.a.secretary, shift.ends_at)
    recorded_at = signup.hours_recorded_at
    second = services.mark_attendance(signup, "present", world.a.secretary, shift.ends_at + MIN)
    db.session.commit()
    assert first.hours_recorded and not second.hours_recorded
    assert duty_reload(Signup, signup.id).hours_recorded_at == recorded_at


def test_check_out_then_present_does_not_record_again(world, duty_request_en):
    shift = duty_make_shift(world.a, starts_in=timedelta(minutes=-90), hours=2)
    person = world.a.volunteer.person
    signup = duty_make_signup(shift, person, checked_in_at=shift.starts_at)
    out = services.check_out(shift, person.id, shift.starts_at + 61 * MIN)
    assert out.won and out.hours_recorded and signup.hours == Decimal("1.00")
    again = services.mark_attendance(signup, "present", world.a.secretary, shift.ends_at)
    db.session.commit()
    assert not again.hours_recorded
    assert duty_reload(Signup, signup.id).hours == Decimal("1.00")


def test_no_show_after_hours_is_refused(shift, world, duty_request_en):
    signup = duty_make_signup(shift, world.a.volunteer.person)
    services.mark_attendance(signup, "present", world.a.secretary, shift.ends_at)
    db.session.commit()
    with pytest.raises(DomainError) as caught:
        services.mark_attendance(signup, "no_show", world.a.secretary, shift.ends_at)
    assert "Hours were already recorded" in caught.value.errors["_"]
    db.session.rollback()
    row = duty_reload(Signup, signup.id)
    assert row.attendance == "present" and row.hours == Decimal("2.00")


def test_no_show_then_present_records_hours(shift, world, duty_request_en):
    signup = duty_make_signup(shift, world.a.volunteer.person)
    services.mark_attendance(signup, "no_show", world.a.secretary, shift.ends_at)
    assert signup.attendance == "no_show" and signup.hours_recorded_at is None
    services.mark_attendance(signup, "present", world.a.secretary, shift.ends_at)
    db.session.commit()
    assert duty_reload(Signup, signup.id).hours == Decimal("2.00")


def test_marks_before_check_in_opens_are_refused(world, duty_request_en):
    shift = duty_make_shift(world.a, starts_in=timedelta(hours=5))
    signup = duty_make_signup(shift, world.a.volunteer.person)
    with pytest.raises(DomainError) as caught:
        services.mark_attendance(signup, "no_show", world.a.secretary, shift.starts_at - 31 * MIN)
    assert "Attendance can be marked from" in caught.value.errors["_"]


@pytest.mark.parametrize("value", ["", "maybe", "present "])
def test_unknown_mark_is_refused(shift, world, duty_request_en, value):
    signup = duty_make_signup(shift, world.a.volunteer.person)
    with pytest.raises(DomainError) as caught:
        services.mark_attendance(signup, value, world.a.secretary, shift.ends_at)
    assert caught.value.errors == {"_": "Choose present or no-show."}


def test_cancelled_place_cannot_be_marked(shift, world, duty_request_en):
    signup = duty_make_signup(shift, world.a.volunteer.person, status="cancelled")
    with pytest.raises(DomainError):
        services.mark_attendance(signup, "present", world.a.secretary, shift.ends_at)
    db.session.rollback()
    assert duty_reload(Signup, signup.id).hours_recorded_at is None
