"""Taking a place and giving it back: every rule with its message, the waitlist and promotion,
the cutoff, htmx fragments and the no-JavaScript path."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from flask_babel import gettext
from sqlalchemy import func, select

from portal.core.errors import DomainError
from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.notifications.models import Notification
from portal.patrols import signups
from portal.patrols.models import Shift, Signup
from tests.patrols.conftest import (
    SU_HX,
    su_hold,
    su_make_shift,
    su_make_volunteer,
    su_reload,
    su_signup_of,
)


def _taken(shift: Shift) -> int:
    return su_reload(Shift, shift.id).taken


def _signups(shift: Shift) -> dict[str, int]:
    db.session.commit()
    rows = db.session.execute(
        select(Signup.status, func.count(Signup.id))
        .where(Signup.shift_id == shift.id)
        .group_by(Signup.status)
    ).all()
    return dict(rows)


def _follow_flash(client, response) -> str:
    assert response.status_code == 303
    return client.get(response.headers["Location"]).get_data(as_text=True)


# --- signing up --------------------------------------------------------------------------------


def test_sign_up_without_js_takes_a_place(client, auth, world, su_english):
    shift = su_make_shift(world.a, capacity=3)
    auth.login("volunteer_a")
    response = client.post(f"/shifts/{shift.id}/signup")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/shifts/{shift.id}"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You have a place on this shift. Thank you!" in page
    assert "Cancel my place" in page
    assert "1 of 3 places taken" in page
    signup = su_signup_of(shift, world.a.volunteer.person)
    assert signup.status == "confirmed" and signup.waitlisted_at is None
    assert signup.community_id == world.a.community.id
    assert _taken(shift) == 1


def test_sign_up_with_htmx_returns_the_fragment_and_trigger(client, auth, world, su_english):
    shift = su_make_shift(world.a, capacity=3)
    auth.login("volunteer_a")
    response = client.post(f"/shifts/{shift.id}/signup", headers=SU_HX)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "<html" not in body
    assert f'id="signup-{shift.id}"' in body
    assert f'id="places-{shift.id}"' in body and "1 of 3 places taken" in body
    assert "You have a place on this shift. Thank you!" in body
    assert f'hx-post="/shifts/{shift.id}/cancel"' in body
    assert response.headers["HX-Trigger"] == "signup-changed"
    assert "HX-Request" in response.headers["Vary"]
    assert _taken(shift) == 1


def test_full_shift_puts_you_on_the_waitlist(client, auth, world, su_english):
    shift = su_make_shift(world.a, capacity=1)
    su_hold(shift, su_make_volunteer(world.a).person)
    first = su_make_volunteer(world.a, username="waiting_first")
    auth.login("waiting_first")
    page = client.get(f"/shifts/{shift.id}").get_data(as_text=True)
    assert "Join the waitlist" in page and "Sign up<" not in page
    response = client.post(f"/shifts/{shift.id}/signup", headers=SU_HX)
    body = response.get_data(as_text=True)
    assert "The shift is full: you are number 1 on the waitlist." in body
    assert "You are number 1 on the waitlist" in body
    assert "Leave the waitlist" in body
    assert response.headers["HX-Trigger"] == "signup-changed"
    signup = su_signup_of(shift, first.person)
    assert signup.status == "waitlisted" and signup.waitlisted_at is not None
    assert _taken(shift) == 1
    auth.logout()
    auth.login("volunteer_a")
    client.post("/language", data={"lang": "en"})
    body = client.post(f"/shifts/{shift.id}/signup", headers=SU_HX).get_data(as_text=True)
    assert "you are number 2 on the waitlist" in body
    assert _signups(shift) == {"confirmed": 1, "waitlisted": 2}


def test_signing_up_twice_is_refused(client, auth, world, su_english):
    shift = su_make_shift(world.a)
    auth.login("volunteer_a")
    assert client.post(f"/shifts/{shift.id}/signup").status_code == 303
    response = client.post(f"/shifts/{shift.id}/signup", headers=SU_HX)
    body = response.get_data(as_text=True)
    assert "You already have a place on this shift." in body
    assert 'class="flash flash-error"' in body
    assert "HX-Trigger" not in response.headers
    assert _taken(shift) == 1
    assert _signups(shift) == {"confirmed": 1}


def test_joining_the_waitlist_twice_is_refused(client, auth, world, su_english):
    shift = su_make_shift(world.a, capacity=1)
    su_hold(shift, su_make_volunteer(world.a).person)
    su_hold(shift, world.a.volunteer.person, "waitlisted")
    auth.login("volunteer_a")
    page = _follow_flash(client, client.post(f"/shifts/{shift.id}/signup"))
    assert "You are already on the waitlist for this shift." in page
    assert _signups(shift) == {"confirmed": 1, "waitlisted": 1}


@pytest.mark.parametrize("row_seen", [True, False])
def test_parallel_second_request_gives_its_place_back(su_request, world, monkeypatch, row_seen):
    """Two requests that both passed the rules: the second one's write fails (the reused row is no
    longer cancelled, or UNIQUE(shift_id, person_id) stops the insert) and its place goes back."""
    shift = su_make_shift(world.a, capacity=3)
    person = world.a.volunteer.person
    signups.sign_up(shift, person)
    db.session.commit()
    # The race: the second request read before the first one committed.
    monkeypatch.setattr(signups, "check_signup_rules", lambda *args, **kwargs: None)
    if not row_seen:
        monkeypatch.setattr(signups, "_signup_row", lambda *args: None)
    with pytest.raises(DomainError) as error:
        signups.sign_up(shift, person)
    assert set(error.value.errors) == {"_"}
    db.session.commit()
    assert _taken(shift) == 1
    assert _signups(shift) == {"confirmed": 1}


def test_a_cancelled_row_is_reused(client, auth, world):
    shift = su_make_shift(world.a)
    person = world.a.volunteer.person
    old = su_hold(shift, person, "cancelled", cancelled_at=now_utc())
    auth.login("volunteer_a")
    assert client.post(f"/shifts/{shift.id}/signup").status_code == 303
    signup = su_signup_of(shift, person)
    assert signup.id == old.id
    assert signup.status == "confirmed" and signup.cancelled_at is None
    assert _taken(shift) == 1


# --- refusals --------------------------------------------------------------------------------


def test_resident_who_is_not_a_volunteer_is_told_why(client, auth, world, su_english):
    shift = su_make_shift(world.a)
    auth.login("resident_a")
    page = client.get(f"/shifts/{shift.id}").get_data(as_text=True)
    assert "Only approved volunteers of this community can sign up." in page
    assert 'href="/volunteers/mine"' in page
    assert f'action="/shifts/{shift.id}/signup"' not in page
    page = _follow_flash(client, client.post(f"/shifts/{shift.id}/signup"))
    assert "Only approved volunteers of this community can sign up." in page
    assert _signups(shift) == {}
    assert _taken(shift) == 0


def test_pending_volunteer_cannot_sign_up(client, auth, world, su_english):
    shift = su_make_shift(world.a)
    auth.login("pending_a")
    body = client.post(f"/shifts/{shift.id}/signup", headers=SU_HX).get_data(as_text=True)
    assert "Only approved volunteers of this community can sign up." in body
    assert _signups(shift) == {}


def test_staff_without_a_registration_cannot_sign_up(client, auth, world, su_english):
    shift = su_make_shift(world.a)
    auth.login("secretary_a")
    page = _follow_flash(client, client.post(f"/shifts/{shift.id}/signup"))
    assert "Only approved volunteers of this community can sign up." in page
    assert _signups(shift) == {}


def test_types_that_exclude_you_are_named(client, auth, world, su_english):
    shift = su_make_shift(world.a, allowed_types="party_member,five_elders")
    auth.login("volunteer_a")  # red armband only
    page = client.get(f"/shifts/{shift.id}").get_data(as_text=True)
    assert "This shift is only for: Party member (reporting)、Five elders." in page
    body = client.post(f"/shifts/{shift.id}/signup", headers=SU_HX).get_data(as_text=True)
    assert "This shift is only for: Party member (reporting)、Five elders." in body
    assert _signups(shift) == {}


def test_one_matching_type_is_enough(client, auth, world):
    shift = su_make_shift(world.a, allowed_types="party_member,red_armband")
    auth.login("volunteer_a")
    client.post(f"/shifts/{shift.id}/signup")
    assert _signups(shift) == {"confirmed": 1}


def test_overlapping_shift_is_refused(client, auth, world, su_english):
    start = now_utc() + timedelta(days=3)
    first = su_make_shift(world.a, title="东区巡逻", starts_at=start, hours=2)
    second = su_make_shift(world.a, title="西区巡逻", starts_at=start + timedelta(hours=1))
    after = su_make_shift(world.a, title="夜巡", starts_at=start + timedelta(hours=2))
    su_hold(first, world.a.volunteer.person)
    auth.login("volunteer_a")
    body = client.post(f"/shifts/{second.id}/signup", headers=SU_HX).get_data(as_text=True)
    assert "You already have a place on “东区巡逻” at that time (" in body
    assert _signups(second) == {}
    # Back to back is not an overlap.
    client.post(f"/shifts/{after.id}/signup")
    assert _signups(after) == {"confirmed": 1}


def test_a_waitlist_entry_does_not_block_another_shift(client, auth, world):
    start = now_utc() + timedelta(days=3)
    full = su_make_shift(world.a, starts_at=start, capacity=1)
    su_hold(full, su_make_volunteer(world.a).person)
    su_hold(full, world.a.volunteer.person, "waitlisted")
    other = su_make_shift(world.a, starts_at=start)
    auth.login("volunteer_a")
    client.post(f"/shifts/{other.id}/signup")
    assert _signups(other) == {"confirmed": 1}


def test_started_shift_is_closed(client, auth, world, su_english):
    shift = su_make_shift(world.a, starts_in=timedelta(minutes=-5))
    auth.login("volunteer_a")
    page = _follow_flash(client, client.post(f"/shifts/{shift.id}/signup"))
    assert "This shift has already started; sign-up is closed." in page
    assert _signups(shift) == {}


def test_cancelled_shift_is_closed(client, auth, world, su_english):
    shift = su_make_shift(world.a, status="cancelled", cancel_reason="暴雨")
    auth.login("volunteer_a")
    page = client.get(f"/shifts/{shift.id}").get_data(as_text=True)
    assert "This shift was cancelled." in page and "暴雨" in page
    body = client.post(f"/shifts/{shift.id}/signup", headers=SU_HX).get_data(as_text=True)
    assert "This shift was cancelled." in body
    assert _signups(shift) == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": "cancelled"}, "This shift was cancelled."),
        (
            {"starts_in": timedelta(minutes=-5)},
            "This shift has already started; sign-up is closed.",
        ),
    ],
)
def test_the_write_itself_refuses_a_shift_closed_since_it_was_read(
    su_request, world, monkeypatch, change, message
):
    """The place is taken by an UPDATE that checks the shift as it is then, whatever the rules
    saw when they read it (here: not at all)."""
    monkeypatch.setattr(signups, "check_signup_rules", lambda *args, **kwargs: None)
    for full in (False, True):  # a free place, or the waitlist
        shift = su_make_shift(world.a, capacity=1, **change)
        if full:
            su_hold(shift, su_make_volunteer(world.a).person)
        before = (_taken(shift), _signups(shift))
        with pytest.raises(DomainError) as error:
            signups.sign_up(shift, world.a.volunteer.person)
        assert error.value.errors == {"_": gettext(message)}
        db.session.rollback()
        assert (_taken(shift), _signups(shift)) == before


def test_waitlist_place_and_length_come_back_with_the_sign_up(su_request, world):
    """Read with the refused take, they agree with waitlist_position() and waiting_counts(),
    also when the entries share one instant and a reused row (an older id) joins last."""
    shift = su_make_shift(world.a, capacity=1)
    su_hold(shift, su_make_volunteer(world.a).person)
    now = now_utc()
    people = [su_make_volunteer(world.a).person for _ in range(2)]
    reused = su_hold(shift, world.a.volunteer.person, "cancelled", cancelled_at=now)
    for n, person in enumerate([*people, world.a.volunteer.person], start=1):
        outcome = signups.sign_up(shift, person, now)
        db.session.commit()
        assert outcome.status == "waitlisted" and outcome.waiting == n
        assert outcome.position == signups.waitlist_position(outcome.signup_id)
        assert outcome.waiting == signups.waiting_counts([shift.id])[shift.id]
    # At one instant the older id goes first: the reused row, though it joined last.
    assert outcome.signup_id == reused.id and outcome.position == 1


def test_volunteer_of_another_community_is_refused_by_the_rules(su_request, world):
    shift = su_make_shift(world.a)
    with pytest.raises(DomainError):
        signups.check_signup_rules(shift, world.b.volunteer.person, now_utc())


def test_rules_take_the_time_as_a_parameter(su_request, world):
    shift = su_make_shift(world.a, starts_in=timedelta(hours=5))
    person = world.a.volunteer.person
    signups.check_signup_rules(shift, person, now_utc())  # allowed now
    with pytest.raises(DomainError):
        signups.check_signup_rules(shift, person, now_utc() + timedelta(hours=6))


# --- cancelling and promotion ----------------------------------------------------------------


def test_cancel_gives_the_place_back_without_js(client, auth, world, su_english):
    shift = su_make_shift(world.a)
    su_hold(shift, world.a.volunteer.person)
    auth.login("volunteer_a")
    response = client.post(f"/shifts/{shift.id}/cancel")
    page = _follow_flash(client, response)
    assert "Your place was given back." in page
    assert "Sign up" in page
    signup = su_signup_of(shift, world.a.volunteer.person)
    assert signup.status == "cancelled" and signup.cancelled_at is not None
    assert _taken(shift) == 0


def test_cancel_promotes_the_first_waiting_and_notifies_them(client, auth, world, su_english):
    shift = su_make_shift(world.a, capacity=1, title="周末巡逻")
    su_hold(shift, world.a.volunteer.person)
    early = now_utc() - timedelta(hours=3)
    first = su_make_volunteer(world.a, name="候补甲")
    second = su_make_volunteer(world.a, name="候补乙")
    # The second one joined later: inserted first to prove the order is by time, not by id.
    su_hold(shift, second.person, "waitlisted", waitlisted_at=early + timedelta(minutes=5))
    su_hold(shift, first.person, "waitlisted", waitlisted_at=early)
    auth.login("volunteer_a")
    response = client.post(f"/shifts/{shift.id}/cancel", headers=SU_HX)
    body = response.get_data(as_text=True)
    assert "Your place was given back." in body
    assert "1 of 1 places taken" in body and "1 on the waitlist" in body
    assert response.headers["HX-Trigger"] == "signup-changed"
    assert su_signup_of(shift, first.person).status == "confirmed"
    assert su_signup_of(shift, second.person).status == "waitlisted"
    assert _taken(shift) == 1
    notes = db.session.scalars(select(Notification)).all()
    assert [(n.user_id, n.kind) for n in notes] == [(first.id, "waitlist_promoted")]
    assert notes[0].params["title"] == "周末巡逻"
    assert notes[0].link == f"/shifts/{shift.id}"
    assert notes[0].community_id == world.a.community.id


def test_promotion_skips_someone_who_now_has_an_overlapping_place(su_request, world):
    start = now_utc() + timedelta(days=2)
    shift = su_make_shift(world.a, capacity=1, starts_at=start)
    elsewhere = su_make_shift(world.a, starts_at=start + timedelta(minutes=30))
    holder = su_make_volunteer(world.a)
    busy = su_make_volunteer(world.a)
    free = su_make_volunteer(world.a)
    su_hold(shift, holder.person)
    su_hold(shift, busy.person, "waitlisted", waitlisted_at=now_utc() - timedelta(hours=2))
    su_hold(shift, free.person, "waitlisted", waitlisted_at=now_utc() - timedelta(hours=1))
    su_hold(elsewhere, busy.person)
    outcome = signups.cancel_signup(shift, holder.person)
    db.session.commit()
    assert outcome.previous == "confirmed"
    assert su_signup_of(shift, free.person).status == "confirmed"
    assert su_signup_of(shift, busy.person).status == "waitlisted"
    assert _taken(shift) == 1


def test_second_promotion_later_notifies_again(su_request, world, su_outbox):
    shift = su_make_shift(world.a, capacity=1)
    holder = su_make_volunteer(world.a)
    waiting = su_make_volunteer(world.a)
    su_hold(shift, holder.person)
    su_hold(shift, waiting.person, "waitlisted")
    signups.cancel_signup(shift, holder.person)
    db.session.commit()
    # The promoted one leaves, joins the waitlist again behind the first holder, is promoted again.
    signups.cancel_signup(shift, waiting.person, now=now_utc() + timedelta(seconds=1))
    db.session.commit()
    signups.sign_up(shift, holder.person)
    signups.sign_up(shift, waiting.person)
    db.session.commit()
    signups.cancel_signup(shift, holder.person, now=now_utc() + timedelta(seconds=2))
    db.session.commit()
    kinds = db.session.scalars(
        select(Notification.kind).where(Notification.user_id == waiting.id)
    ).all()
    assert kinds == ["waitlist_promoted", "waitlist_promoted"]
    assert [m["kind"] for m in su_outbox if m["user_id"] == waiting.id] == [
        "waitlist_promoted",
        "waitlist_promoted",
    ]


def test_leaving_the_waitlist(client, auth, world, su_english):
    shift = su_make_shift(world.a, capacity=1, starts_in=timedelta(minutes=30))
    su_hold(shift, su_make_volunteer(world.a).person)
    su_hold(shift, world.a.volunteer.person, "waitlisted")
    auth.login("volunteer_a")
    body = client.post(f"/shifts/{shift.id}/cancel", headers=SU_HX).get_data(as_text=True)
    assert "You left the waitlist." in body
    assert su_signup_of(shift, world.a.volunteer.person).status == "cancelled"
    assert _taken(shift) == 1


def test_cancel_after_the_cutoff_is_refused(client, auth, world, su_english):
    shift = su_make_shift(world.a, starts_in=timedelta(minutes=90))
    su_hold(shift, world.a.volunteer.person)
    auth.login("volunteer_a")
    page = client.get(f"/shifts/{shift.id}").get_data(as_text=True)
    assert "It is too late to cancel here (less than 2 hours before the start)." in page
    assert "Cancel my place" not in page
    page = _follow_flash(client, client.post(f"/shifts/{shift.id}/cancel"))
    assert "Please tell the shift leader." in page
    assert su_signup_of(shift, world.a.volunteer.person).status == "confirmed"
    assert _taken(shift) == 1


def test_cutoff_comes_from_the_config(app, client, auth, world, su_english):
    app.config["SHIFT_CANCEL_CUTOFF_HOURS"] = 1
    shift = su_make_shift(world.a, starts_in=timedelta(minutes=90))
    su_hold(shift, world.a.volunteer.person)
    auth.login("volunteer_a")
    page = _follow_flash(client, client.post(f"/shifts/{shift.id}/cancel"))
    assert "Your place was given back." in page
    assert _taken(shift) == 0


def test_cutoff_boundary_in_the_service(su_request, world):
    shift = su_make_shift(world.a, starts_in=timedelta(days=1))
    su_hold(shift, world.a.volunteer.person)
    just_in_time = shift.starts_at - timedelta(hours=2)
    too_late = just_in_time + timedelta(seconds=1)
    with pytest.raises(DomainError):
        signups.cancel_signup(shift, world.a.volunteer.person, now=too_late)
    db.session.rollback()
    signups.cancel_signup(shift, world.a.volunteer.person, now=just_in_time)
    db.session.commit()
    assert _taken(shift) == 0


def test_cancel_after_the_start_is_refused(client, auth, world, su_english):
    shift = su_make_shift(world.a, starts_in=timedelta(minutes=-1))
    su_hold(shift, world.a.volunteer.person)
    auth.login("volunteer_a")
    body = client.post(f"/shifts/{shift.id}/cancel", headers=SU_HX).get_data(as_text=True)
    assert "The shift has already started. If you cannot stay, tell the shift leader." in body
    assert su_signup_of(shift, world.a.volunteer.person).status == "confirmed"


def test_cancel_without_a_place(client, auth, world, su_english):
    shift = su_make_shift(world.a)
    auth.login("volunteer_a")
    page = _follow_flash(client, client.post(f"/shifts/{shift.id}/cancel"))
    assert "You have no place or waitlist entry on this shift." in page
    assert _taken(shift) == 0


def test_no_js_cancel_from_my_shifts_goes_back_there(client, auth, world, su_english):
    shift = su_make_shift(world.a)
    su_hold(shift, world.a.volunteer.person)
    auth.login("volunteer_a")
    response = client.post(f"/shifts/{shift.id}/cancel", data={"next": "/my/shifts"})
    assert response.headers["Location"] == "/my/shifts"
    response = client.post(f"/shifts/{shift.id}/signup", data={"next": "https://evil.example/"})
    assert response.headers["Location"] == f"/shifts/{shift.id}"


def test_newcomer_does_not_jump_the_waitlist(su_request, world):
    """A place that came free without a promotion (capacity raised) goes to the first waiting."""
    shift = su_make_shift(world.a, capacity=1)
    su_hold(shift, su_make_volunteer(world.a).person)
    waiting = su_make_volunteer(world.a)
    su_hold(shift, waiting.person, "waitlisted")
    shift.capacity = 2
    db.session.commit()
    outcome = signups.sign_up(shift, world.a.volunteer.person)
    db.session.commit()
    assert su_signup_of(shift, waiting.person).status == "confirmed"
    assert outcome.status == "waitlisted" and outcome.position == 1
    assert _taken(shift) == 2


def test_csrf_is_required(client, auth, world):
    shift = su_make_shift(world.a)
    auth.login("volunteer_a")
    response = client.post(f"/shifts/{shift.id}/signup", csrf=False)
    assert response.status_code == 400
    assert _signups(shift) == {}


def test_leaving_the_waitlist_just_after_a_promotion_gives_the_place_back(
    su_request, world, monkeypatch
):
    """A parallel cancel promoted the person between their read and their UPDATE (seen under load
    on PostgreSQL): the cancel reads again and gives back the place they now hold."""
    shift = su_make_shift(world.a, capacity=1)
    holder = su_make_volunteer(world.a)
    waiting = su_make_volunteer(world.a)
    su_hold(shift, holder.person)
    su_hold(shift, waiting.person, "waitlisted", waitlisted_at=now_utc() - timedelta(hours=1))
    signups.cancel_signup(shift, holder.person)  # promotes ``waiting``
    db.session.commit()
    stale = su_signup_of(shift, waiting.person)
    real = signups._held_row
    reads = []

    def first_read_is_stale(*args):
        row = real(*args)
        reads.append(row.status)
        return SimpleNamespace(id=stale.id, status="waitlisted") if len(reads) == 1 else row

    monkeypatch.setattr(signups, "_held_row", first_read_is_stale)
    outcome = signups.cancel_signup(shift, waiting.person)
    db.session.commit()
    assert outcome.previous == "confirmed" and len(reads) == 2
    assert su_signup_of(shift, waiting.person).status == "cancelled"
    assert _taken(shift) == 0
