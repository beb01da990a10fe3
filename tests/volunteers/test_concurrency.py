"""Parallel approvals: armband numbers never repeat, and one registration is decided once.

Each thread has its own test client signed in as the secretary, so the requests run in their own
app contexts and database sessions, as under a multi-worker server.
"""

from __future__ import annotations

from sqlalchemy import func, select

from portal.extensions import db
from portal.volunteers.models import Volunteer
from tests.helpers import post_in_parallel
from tests.volunteers.conftest import armband_seq, make_applicant, reload

THREADS = 8


def _secretary_clients(app, auth_username: str) -> list:
    clients = []
    for _ in range(THREADS):
        client = app.test_client()
        response = client.post(
            "/login", data={"identifier": auth_username, "password": "tongxin-test-pass"}
        )
        assert response.status_code == 303
        clients.append(client)
    return clients


def test_parallel_approvals_issue_distinct_sequential_numbers(app, world):
    applicants = [make_applicant(world.a) for _ in range(THREADS)]
    clients = _secretary_clients(app, "secretary_a")
    statuses = post_in_parallel(app, clients, [f"/volunteers/{a.id}/approve" for a in applicants])
    assert statuses == [303] * THREADS
    cid = world.a.community.id
    numbers = sorted(reload(a).armband_no for a in applicants)
    assert numbers == [f"{cid:03d}-{n:05d}" for n in range(1, THREADS + 1)]
    assert armband_seq(world.a.community) == THREADS
    assert all(reload(a).status == "approved" for a in applicants)


def test_parallel_approvals_of_one_volunteer_decide_it_once(app, world):
    applicant = make_applicant(world.a)
    clients = _secretary_clients(app, "secretary_a")
    statuses = post_in_parallel(app, clients, [f"/volunteers/{applicant.id}/approve"] * THREADS)
    assert statuses == [303] * THREADS
    volunteer = reload(applicant)
    assert volunteer.status == "approved"
    assert volunteer.armband_no == f"{world.a.community.id:03d}-00001"
    assert armband_seq(world.a.community) == 1
    issued = db.session.scalar(
        select(func.count(Volunteer.id)).where(
            Volunteer.community_id == world.a.community.id, Volunteer.armband_no.is_not(None)
        )
    )
    assert issued == 2  # the world's volunteer_a (a-0001) and this one
