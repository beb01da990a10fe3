"""Fixtures of the certificates tests (prefix cert_): a volunteer with a year of ledger history
of every sort, and certificates put in directly."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from portal.certificates.models import Certificate
from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.help.models import Category, HelpRequest
from portal.patrols.codes import new_checkin_code
from portal.patrols.models import Shift, Signup
from portal.points import ledger
from tests import helpers

CERT_HX = {"HX-Request": "true"}
# A valid identity number (GB 11643-1999 check character X) and its masked form.
CERT_ID = "11010519491231002X"
CERT_ID_MASKED = "110105********002X"
CERT_PERIOD = {"period_start": "2025-01-01", "period_end": "2025-12-31"}

cert_count_queries = helpers.count_queries
cert_reload = helpers.reload


def cert_signup(side, person, title: str = "夜间巡逻", kind: str = "patrol") -> Signup:
    """A past shift of ``side`` with ``person``'s confirmed sign-up."""
    start = now_utc() - timedelta(days=30)
    shift = Shift(
        community_id=side.community.id, grid_id=side.grid.id, kind=kind, title=title,
        starts_at=start, ends_at=start + timedelta(hours=2), capacity=5, taken=1,
        checkin_code=new_checkin_code(),
    )  # fmt: skip
    db.session.add(shift)
    db.session.flush()
    signup = Signup(
        community_id=side.community.id, shift_id=shift.id, person_id=person.id, status="confirmed"
    )
    db.session.add(signup)
    db.session.commit()
    return signup


def cert_request(side, volunteer_person) -> HelpRequest:
    """A verified request of ``side`` (category 水管漏水 / Water leak) done by the volunteer."""
    major = Category(
        community_id=side.community.id, code="repair", name_zh="物业报修", name_en="Repair"
    )
    db.session.add(major)
    db.session.flush()
    minor = Category(
        community_id=side.community.id, parent_id=major.id, code="repair.water",
        name_zh="水管漏水", name_en="Water leak", handler="grid_worker", time_limit_hours=24,
    )  # fmt: skip
    db.session.add(minor)
    db.session.flush()
    req = HelpRequest(
        community_id=side.community.id, grid_id=side.grid.id, category_id=minor.id,
        requester_id=side.resident.person.id, created_by_id=side.resident.id,
        description="漏水", status="verified", volunteer_id=volunteer_person.id,
    )  # fmt: skip
    db.session.add(req)
    db.session.commit()
    return req


def cert_entry(person, *, kind: str, source_type: str, source_id, points: int, hours, day: date,
               note: str = "", ranked=None):  # fmt: skip
    entry = ledger.post_entry(
        person.id, kind=kind, source_type=source_type, source_id=source_id, points=points,
        hours=Decimal(str(hours)), occurred_on=day, note=note, ranked=ranked,
    )  # fmt: skip
    db.session.commit()
    return entry


def cert_history(side, person) -> SimpleNamespace:
    """A 2025 of ledger rows for ``person``: three that a certificate of 2025 states (a patrol,
    a request, hours added by the secretary) and everything it must leave out."""
    patrol = cert_signup(side, person)
    door = cert_signup(side, person, title="挨户走访", kind="door_watch")
    late = cert_signup(side, person, title="跨年巡逻")
    req = cert_request(side, person)
    kept = [
        cert_entry(person, kind="patrol", source_type="signup", source_id=patrol.id, points=25,
                   hours="2.5", day=date(2025, 3, 5), note="note of the patrol"),
        cert_entry(person, kind="help", source_type="request", source_id=req.id, points=10,
                   hours="1.25", day=date(2025, 4, 10)),
        cert_entry(person, kind="adjustment", source_type="adjustment", source_id=None, points=0,
                   hours="3", day=date(2025, 12, 31), note="补录社区清扫"),
    ]  # fmt: skip
    # Left out: a reversed door watch, a row of the year before, one without hours (party
    # report), a redemption, a negative correction.
    reversed_entry = cert_entry(
        person, kind="door_watch", source_type="signup", source_id=door.id, points=40, hours="4",
        day=date(2025, 5, 1),
    )  # fmt: skip
    ledger.reverse(reversed_entry, reason="没有到场", actor_id=side.secretary.id)
    db.session.commit()
    cert_entry(person, kind="patrol", source_type="signup", source_id=late.id, points=20,
               hours="2", day=date(2024, 12, 31))  # fmt: skip
    cert_entry(person, kind="party_report", source_type="volunteer", source_id=1, points=20,
               hours="0", day=date(2025, 2, 1))  # fmt: skip
    cert_entry(person, kind="redemption", source_type="redemption", source_id=1, points=-30,
               hours="0", day=date(2025, 6, 1))  # fmt: skip
    cert_entry(person, kind="adjustment", source_type="adjustment", source_id=None, points=0,
               hours="-1", day=date(2025, 7, 1), note="多记了一小时")  # fmt: skip
    return SimpleNamespace(patrol=patrol, request=req, kept=kept)


def cert_make(person, number: str, *, community=None, **kw) -> Certificate:
    """A certificate row put in directly (two activities, 3.50 hours)."""
    cert = Certificate(
        number=number,
        person_id=person.id,
        community_id=kw.pop("community_id", person.community_id),
        holder_name=kw.pop("holder_name", person.name),
        id_number_masked=kw.pop("id_number_masked", CERT_ID_MASKED),
        community_name=kw.pop("community_name", community.name if community else "社区"),
        period_start=kw.pop("period_start", date(2025, 1, 1)),
        period_end=kw.pop("period_end", date(2025, 12, 31)),
        total_hours=kw.pop("total_hours", Decimal("3.50")),
        activity_count=kw.pop("activity_count", 2),
        activities=kw.pop(
            "activities",
            [
                {"date": "2025-03-05", "kind": "patrol", "title": "夜间巡逻", "hours": "2.50"},
                {"date": "2025-04-10", "kind": "help", "title": "水管漏水 #1", "hours": "1.00"},
            ],
        ),
        issued_at=kw.pop("issued_at", datetime(2026, 1, 5, 2, 0, tzinfo=now_utc().tzinfo)),
        **kw,
    )
    db.session.add(cert)
    db.session.commit()
    return cert


@pytest.fixture
def cert_english(client):
    """Show English messages (the default is Chinese)."""
    assert client.post("/language", data={"lang": "en"}).status_code == 303


@pytest.fixture
def cert_scene(world):
    """volunteer_a with the 2025 history; world.b's volunteer with one patrol."""
    history = cert_history(world.a, world.a.volunteer.person)
    b_signup = cert_signup(world.b, world.b.volunteer.person)
    cert_entry(world.b.volunteer.person, kind="patrol", source_type="signup",
               source_id=b_signup.id, points=10, hours="1", day=date(2025, 8, 8))  # fmt: skip
    return SimpleNamespace(world=world, a=world.a, b=world.b, history=history)


@pytest.fixture
def cert_request_ctx(app):
    """A request context (Chinese, the default) for calling the services directly."""
    with app.test_request_context("/"):
        yield
