"""The demo requests: every state of the loop in both communities, reachable through the table."""

from __future__ import annotations

from collections import defaultdict

import pytest
from sqlalchemy import select

from portal.auth.models import User
from portal.extensions import db
from portal.help.intake import is_overdue
from portal.help.models import STATUSES, Category, HelpRequest, RequestEvent
from portal.help.workflow import TRANSITIONS
from portal.places.models import Community
from portal.volunteers.models import Volunteer
from tests.conftest import seed_demo


@pytest.fixture
def seeded(runner):
    seed_demo(runner)


def _requests() -> list[HelpRequest]:
    return db.session.scalars(select(HelpRequest).order_by(HelpRequest.id)).all()


def _events() -> dict[int, list[RequestEvent]]:
    by_request: dict[int, list[RequestEvent]] = defaultdict(list)
    for event in db.session.scalars(select(RequestEvent).order_by(RequestEvent.id)):
        by_request[event.request_id].append(event)
    return by_request


def test_every_status_in_both_communities(seeded):
    communities = db.session.scalars(select(Community).order_by(Community.id)).all()
    assert len(communities) == 2
    for community in communities:
        statuses = {r.status for r in _requests() if r.community_id == community.id}
        assert statuses == set(STATUSES), community.name


def test_some_open_requests_are_overdue_and_escalated(seeded):
    overdue = [r for r in _requests() if is_overdue(r)]
    assert len(overdue) >= 3
    assert {r.community_id for r in overdue} == {
        c.id for c in db.session.scalars(select(Community))
    }
    assert all(r.escalation_level >= 1 for r in overdue)


def test_timelines_follow_the_transition_table(seeded):
    events = _events()
    for req in _requests():
        timeline = events[req.id]
        assert timeline[0].action == "submit" and timeline[0].to_status == "submitted"
        assert [e.at for e in timeline] == sorted(e.at for e in timeline), req.id
        status = "submitted"
        for event in timeline[1:]:
            assert event.from_status == status, (req.id, event.action)
            rule = TRANSITIONS.get(event.action)
            if rule is not None:
                assert status in rule.sources, (req.id, event.action)
                assert event.to_status == (rule.target or status)
            else:
                assert event.action in ("route", "escalate") and event.to_status == status
            status = event.to_status
        assert status == req.status, req.id


def test_closed_loop_details(seeded):
    requests = _requests()
    rated = [r for r in requests if r.status == "rated"]
    assert rated and all(1 <= r.rating <= 5 for r in rated)
    held_and_verified = [
        r for r in requests if r.status in ("verified", "rated") and r.volunteer_id
    ]
    assert held_and_verified
    assert all(r.hours is not None and r.hours_recorded_at is not None for r in held_and_verified)
    assert all(r.reject_reason for r in requests if r.status == "rejected")
    assert all(r.closed_at is not None for r in requests if r.status in ("rejected", "cancelled"))


def test_demo_accounts_have_their_requests(seeded):
    volunteer_user = db.session.scalar(select(User).where(User.username == "volunteer"))
    volunteer = db.session.scalar(
        select(Volunteer).where(Volunteer.person_id == volunteer_user.person_id)
    )
    requests = _requests()
    board = [
        r
        for r in requests
        if r.grid_id == volunteer.grid_id
        and r.status in ("submitted", "accepted")
        and r.volunteer_id is None
        and db.session.get(Category, r.category_id).kind == "neighbour_help"
    ]
    assert len(board) >= 2
    assert any(
        r.volunteer_id == volunteer_user.person_id and r.status == "dispatched" for r in requests
    )
    resident = db.session.scalar(select(User).where(User.username == "resident"))
    mine = [r for r in requests if r.requester_id == resident.person_id]
    assert len(mine) >= 3
    assert "done" in {r.status for r in mine}


def test_open311_flags_of_the_demo(seeded, client):
    """Public-space categories are public, some of their requests ticked "may be shown
    publicly"; the keyless Open311 list shows those and nothing of neighbour help or care."""
    public = {c.code for c in db.session.scalars(select(Category).where(Category.public))}
    assert {"repair.lighting", "env.rubbish", "safety.fire_exit"} <= public
    assert not any(
        code.split(".")[0] in ("help", "elderly", "health", "dispute") for code in public
    )
    ticked = [r for r in _requests() if r.show_publicly]
    assert len(ticked) >= 4 and all(r.category.public for r in ticked)
    community = db.session.scalars(select(Community).order_by(Community.id)).first()
    rows = client.get(f"/open311/v2/requests.json?jurisdiction_id={community.id}").json
    assert rows and {r["service_code"] for r in rows} <= public
    shown = [r for r in rows if r["description"]]
    assert shown and "楼道灯不亮" in " ".join(r["description"] for r in shown)
