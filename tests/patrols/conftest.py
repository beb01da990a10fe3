"""Fixtures shared by the patrols tests. Each helper's fixtures carry its prefix (duty_, ...)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.patrols.codes import new_checkin_code
from portal.patrols.models import Shift, Signup
from tests import factories, helpers

# --- duty (on the day: check-in, attendance, door watch, report) ------------------------------

DUTY_HX = {"HX-Request": "true"}


def duty_make_shift(side, *, starts_in=timedelta(minutes=-10), hours=2, **kw) -> Shift:
    """A shift in ``side`` (world.a / world.b) starting ``starts_in`` from now."""
    start = kw.pop("starts_at", None) or now_utc() + starts_in
    shift = Shift(
        community_id=side.community.id,
        grid_id=kw.pop("grid_id", side.grid.id),
        kind=kw.pop("kind", "patrol"),
        title=kw.pop("title", "夜间巡逻"),
        meeting_point=kw.pop("meeting_point", "东门岗亭"),
        route=kw.pop("route", []),
        starts_at=start,
        ends_at=kw.pop("ends_at", None) or start + timedelta(hours=hours),
        capacity=kw.pop("capacity", 10),
        minimum=kw.pop("minimum", 1),
        checkin_code=kw.pop("checkin_code", None) or new_checkin_code(),
        **kw,
    )
    db.session.add(shift)
    db.session.commit()
    return shift


def duty_make_signup(shift: Shift, person, status: str = "confirmed", **kw) -> Signup:
    signup = Signup(
        community_id=shift.community_id,
        shift_id=shift.id,
        person_id=person.id,
        status=status,
        **kw,
    )
    if status == "confirmed":
        shift.taken += 1
    db.session.add(signup)
    db.session.commit()
    return signup


duty_reload = helpers.reload


duty_count_queries = helpers.count_queries


@pytest.fixture
def duty_english(client):
    """Show English messages (the default is Chinese)."""
    assert client.post("/language", data={"lang": "en"}).status_code == 303


@pytest.fixture
def duty_request_en(app):
    """A request context in English, for calling services that write translated messages."""
    from flask import session
    from flask_babel import get_locale

    with app.test_request_context():
        session["lang"] = "en"
        assert get_locale().language == "en"
        yield


@pytest.fixture
def duty_uploads(app, tmp_path):
    """Photos go to a throw-away instance folder."""
    previous = app.instance_path
    app.instance_path = str(tmp_path)
    yield tmp_path / "uploads"
    app.instance_path = previous


@pytest.fixture
def duty_scene(world):
    """World A with a shift on now (grid 1) led by ``leader_a``; volunteer_a holds a place."""
    leader = factories.make_user("volunteer", world.a.community, username="leader_a")
    factories.make_volunteer(leader.person, grid_id=world.a.grid.id)
    shift = duty_make_shift(world.a, leader_id=leader.person.id)
    signup = duty_make_signup(shift, world.a.volunteer.person)
    b_shift = duty_make_shift(world.b)
    b_signup = duty_make_signup(b_shift, world.b.volunteer.person)
    return SimpleNamespace(
        world=world,
        a=world.a,
        b=world.b,
        leader=leader,
        shift=shift,
        signup=signup,
        b_shift=b_shift,
        b_signup=b_signup,
    )


# --- su_ (sign-ups: list, detail, sign-up and cancel, my shifts, calendar) ---------------------

SU_HX = {"HX-Request": "true"}


def su_make_shift(side, *, starts_in=timedelta(days=2), hours=2, **kw) -> Shift:
    """A scheduled shift in ``side`` (world.a / world.b) starting ``starts_in`` from now."""
    start = kw.pop("starts_at", None) or now_utc() + starts_in
    shift = Shift(
        community_id=side.community.id,
        grid_id=kw.pop("grid_id", side.grid.id),
        kind=kw.pop("kind", "patrol"),
        title=kw.pop("title", "晚间巡逻"),
        meeting_point=kw.pop("meeting_point", "小区东门"),
        route=kw.pop("route", []),
        starts_at=start,
        ends_at=kw.pop("ends_at", None) or start + timedelta(hours=hours),
        capacity=kw.pop("capacity", 5),
        minimum=kw.pop("minimum", 1),
        checkin_code=kw.pop("checkin_code", None) or new_checkin_code(),
        **kw,
    )
    db.session.add(shift)
    db.session.commit()
    return shift


def su_make_volunteer(side, types=("red_armband",), *, name=None, status="approved", **kw):
    """A new account in ``side`` with a volunteer registration (approved by default)."""
    role = "volunteer" if status == "approved" else "resident"
    extra = {"name": name} if name else {}
    user = factories.make_user(role, side.community, household=side.household, **extra, **kw)
    factories.make_volunteer(user.person, types, status=status, grid_id=side.grid.id)
    return user


def su_hold(shift: Shift, person, status: str = "confirmed", **kw) -> Signup:
    """Put a sign-up row in directly (keeping ``taken`` right for a confirmed one)."""
    signup = Signup(
        community_id=shift.community_id,
        shift_id=shift.id,
        person_id=person.id,
        status=status,
        **kw,
    )
    if status == "confirmed":
        shift.taken += 1
    elif status == "waitlisted":
        signup.waitlisted_at = kw.get("waitlisted_at") or now_utc()
    db.session.add(signup)
    db.session.commit()
    return signup


su_reload = helpers.reload


def su_signup_of(shift: Shift, person) -> Signup | None:
    db.session.commit()  # ends the read snapshot and expires what was loaded
    return db.session.scalar(
        select(Signup).where(Signup.shift_id == shift.id, Signup.person_id == person.id)
    )


su_count_queries = helpers.count_queries


@pytest.fixture
def su_english(client):
    """Show English messages (the default is Chinese)."""
    assert client.post("/language", data={"lang": "en"}).status_code == 303


@pytest.fixture
def su_outbox(app):
    """Outbound messages (SMS/WeChat adapter) collected instead of logged."""
    sent: list[dict] = []

    class Backend:
        def send(self, **message):
            sent.append(message)

    app.config["MESSAGE_BACKEND"] = Backend()
    yield sent
    app.config.pop("MESSAGE_BACKEND", None)


@pytest.fixture
def su_request(app):
    """A request context for calling services directly (messages are translated per request)."""
    with app.test_request_context("/"):
        yield


# --- sched_ (scheduling: shifts, weekly series, cancellation, coverage) -------------------------

SCHED_HX = {"HX-Request": "true"}


def sched_plan(side, **kw):
    """A valid ShiftPlan in ``side``'s first grid: 19:00–21:00 local, 5 places, minimum 2."""
    from datetime import time

    from portal.patrols.scheduling import ShiftPlan

    values = {
        "kind": "patrol",
        "title": "晚间巡逻",
        "grid_id": side.grid.id,
        "start_time": time(19, 0),
        "end_time": time(21, 0),
        "capacity": 5,
        "minimum": 2,
        "meeting_point": "东门岗亭",
        "route": [{"building_id": side.building.id, "label": ""}],
    }
    values.update(kw)
    return ShiftPlan(**values)


def sched_form(side, on, **kw) -> dict:
    """Form data of a valid shift in ``side`` on local date ``on`` (19:00–21:00)."""
    data = {
        "kind": "patrol",
        "title": "晚间巡逻",
        "grid_id": str(side.grid.id),
        "day": on.isoformat(),
        "start_time": "19:00",
        "end_time": "21:00",
        "meeting_point": "东门岗亭",
        "route-0-building_id": str(side.building.id),
        "route-0-checkpoint": "",
        "route-1-building_id": "",
        "route-1-checkpoint": "东门",
        "capacity": "5",
        "minimum": "2",
        "leader_id": "",
        "notes": "",
        "points_per_hour": "10",
    }
    data.update(kw)
    return {k: v for k, v in data.items() if v is not None}


def sched_hold(shift: Shift, person, status: str = "confirmed") -> Signup:
    """A sign-up row put in directly (``taken`` kept right for a confirmed one)."""
    signup = Signup(
        community_id=shift.community_id,
        shift_id=shift.id,
        person_id=person.id,
        status=status,
        waitlisted_at=now_utc() if status == "waitlisted" else None,
    )
    if status == "confirmed":
        db.session.execute(
            Shift.__table__.update().where(Shift.id == shift.id).values(taken=Shift.taken + 1)
        )
    db.session.add(signup)
    db.session.commit()
    return signup


def sched_volunteer(side, name=None, types=("red_armband",)):
    """A new approved volunteer (with an account) in ``side``."""
    extra = {"name": name} if name else {}
    user = factories.make_user("volunteer", side.community, **extra)
    factories.make_volunteer(user.person, types, grid_id=side.grid.id)
    return user


sched_count_queries = helpers.count_queries


@pytest.fixture
def sched_english(client):
    """Show English messages (the default is Chinese)."""
    assert client.post("/language", data={"lang": "en"}).status_code == 303


@pytest.fixture
def sched_request(app):
    """A request context (English), for calling the services directly."""
    from flask import session

    with app.test_request_context():
        session["lang"] = "en"
        yield
