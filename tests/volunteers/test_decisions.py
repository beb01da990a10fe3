"""The approval queue: approve / reject with and without htmx, and what each decision writes."""

from __future__ import annotations

from datetime import UTC, datetime

from portal.core.timeutil import local_today
from tests.volunteers.conftest import (
    HX,
    armband_seq,
    make_applicant,
    reload,
    role_of,
    snapshot,
)


def test_approve_red_armband_without_js(client, auth, world, english):
    applicant = make_applicant(world.a, name="张秀英")
    auth.login("secretary_a")
    response = client.post(f"/volunteers/{applicant.id}/approve")
    assert response.status_code == 303
    assert response.headers["Location"] == "/volunteers/queue"

    volunteer = reload(applicant)
    number = f"{world.a.community.id:03d}-00001"
    assert volunteer.status == "approved"
    assert volunteer.decided_by_id == world.a.secretary.id
    assert volunteer.decided_at is not None
    assert volunteer.armband_no == number
    assert volunteer.party_reported_on is None
    assert armband_seq(world.a.community) == 1
    assert role_of(applicant.person.user) == "volunteer"

    page = client.get("/volunteers/queue").get_data(as_text=True)
    assert f"张秀英: Approved — armband No. {number}" in page
    assert f'id="volunteer-{applicant.id}"' not in page  # no longer waiting


def test_armband_numbers_are_sequential_per_community(client, auth, world):
    first, second = make_applicant(world.a), make_applicant(world.a)
    other = make_applicant(world.b)
    auth.login("secretary_a")
    client.post(f"/volunteers/{first.id}/approve")
    client.post(f"/volunteers/{second.id}/approve")
    auth.logout()
    auth.login("secretary_b")
    client.post(f"/volunteers/{other.id}/approve")
    a, b = world.a.community.id, world.b.community.id
    assert reload(first).armband_no == f"{a:03d}-00001"
    assert reload(second).armband_no == f"{a:03d}-00002"
    assert reload(other).armband_no == f"{b:03d}-00001"
    assert (armband_seq(world.a.community), armband_seq(world.b.community)) == (2, 1)


def test_approve_party_member_dates_the_report(client, auth, world):
    auth.login("secretary_a")
    pending = world.a.pending_volunteer  # a party member reporting to grid 2
    assert client.post(f"/volunteers/{pending.id}/approve").status_code == 303
    volunteer = reload(pending)
    assert volunteer.status == "approved"
    assert volunteer.party_reported_on == local_today()
    assert volunteer.armband_no is None  # not a red armband
    assert armband_seq(world.a.community) == 0
    assert role_of(world.a.pending) == "volunteer"


def test_staff_role_is_kept_on_approval(client, auth, world):
    auth.login("gridworker_a")
    client.post("/volunteers/mine", data={"types": ["mediator"]})
    auth.logout()
    auth.login("secretary_a")
    volunteer = world.a.gridworker.person.volunteer
    assert client.post(f"/volunteers/{volunteer.id}/approve").status_code == 303
    assert reload(volunteer).status == "approved"
    assert role_of(world.a.gridworker) == "grid_worker"


def test_nobody_decides_on_their_own_registration(client, auth, world, english):
    auth.login("secretary_a")
    client.post("/volunteers/mine", data={"types": ["red_armband"]})
    volunteer = world.a.secretary.person.volunteer
    response = client.post(f"/volunteers/{volunteer.id}/approve", headers=HX)
    assert "You cannot decide on your own registration." in response.get_data(as_text=True)
    assert "HX-Trigger" not in response.headers
    client.post(f"/volunteers/{volunteer.id}/reject", data={"reason": "x"})
    assert reload(volunteer).status == "pending"
    assert armband_seq(world.a.community) == 0


def test_approve_twice_is_refused_and_changes_nothing(client, auth, world, english):
    applicant = make_applicant(world.a)
    auth.login("secretary_a")
    client.post(f"/volunteers/{applicant.id}/approve")
    before = snapshot(applicant)

    response = client.post(f"/volunteers/{applicant.id}/approve")
    assert response.status_code == 303
    assert snapshot(applicant) == before
    assert armband_seq(world.a.community) == 1
    page = client.get("/volunteers/queue").get_data(as_text=True)
    assert "Already decided (Approved); nothing was changed." in page

    response = client.post(f"/volunteers/{applicant.id}/reject", data={"reason": "晚了"})
    assert snapshot(applicant) == before

    response = client.post(f"/volunteers/{applicant.id}/approve", headers=HX)
    assert response.status_code == 200
    assert "HX-Trigger" not in response.headers
    assert "Already decided (Approved); nothing was changed." in response.get_data(as_text=True)
    assert snapshot(applicant) == before


def test_htmx_approve_returns_the_row(client, auth, world, english):
    applicant = make_applicant(world.a)
    auth.login("secretary_a")
    response = client.post(f"/volunteers/{applicant.id}/approve", headers=HX)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<html" not in page
    assert page.lstrip().startswith(
        f'<article class="card queue-row" id="volunteer-{applicant.id}"'
    )
    assert f"Approved — armband No. {world.a.community.id:03d}-00001" in page
    assert "HX-Request" in response.headers["Vary"]
    assert response.headers["HX-Trigger"] == "volunteer-decided"
    assert 'name="reason"' not in page  # decided: no more buttons
    assert reload(applicant).status == "approved"


def test_reject_requires_a_reason_without_js(client, auth, world, english):
    applicant = make_applicant(world.a)
    auth.login("secretary_a")
    for reason in ("", "   "):
        response = client.post(f"/volunteers/{applicant.id}/reject", data={"reason": reason})
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert "<html" in page
        assert "Give a reason so the applicant can correct it." in page
        assert reload(applicant).status == "pending"
        assert reload(applicant).decided_at is None


def test_reject_requires_a_reason_with_htmx(client, auth, world, english):
    applicant = make_applicant(world.a)
    auth.login("secretary_a")
    response = client.post(f"/volunteers/{applicant.id}/reject", data={"reason": ""}, headers=HX)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<html" not in page
    assert f'id="volunteer-{applicant.id}"' in page
    assert "Give a reason so the applicant can correct it." in page
    assert "HX-Trigger" not in response.headers
    assert reload(applicant).status == "pending"


def test_overlong_reason_is_refused(client, auth, world, english):
    applicant = make_applicant(world.a)
    auth.login("secretary_a")
    response = client.post(f"/volunteers/{applicant.id}/reject", data={"reason": "长" * 501})
    assert "Field cannot be longer than 500 characters." in response.get_data(as_text=True)
    assert reload(applicant).status == "pending"


def test_reject_without_js(client, auth, world, english):
    applicant = make_applicant(world.a, name="李建国")
    auth.login("secretary_a")
    response = client.post(
        f"/volunteers/{applicant.id}/reject", data={"reason": "请到居住地社区报名"}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/volunteers/queue"
    volunteer = reload(applicant)
    assert volunteer.status == "rejected"
    assert volunteer.rejection_reason == "请到居住地社区报名"
    assert volunteer.decided_by_id == world.a.secretary.id
    assert volunteer.armband_no is None
    assert role_of(applicant.person.user) == "resident"
    page = client.get("/volunteers/queue").get_data(as_text=True)
    assert "李建国: Rejected: 请到居住地社区报名" in page


def test_reject_with_htmx_and_the_applicant_sees_it(client, auth, world, english):
    applicant = make_applicant(world.a)
    auth.login("secretary_a")
    response = client.post(
        f"/volunteers/{applicant.id}/reject", data={"reason": "电话无法接通"}, headers=HX
    )
    page = response.get_data(as_text=True)
    assert "<html" not in page
    assert "Rejected: 电话无法接通" in page
    assert response.headers["HX-Trigger"] == "volunteer-decided"
    assert "HX-Request" in response.headers["Vary"]
    auth.logout()
    auth.login(applicant.person.user.username)
    for url in ("/volunteers/mine", "/"):
        assert "Reason: 电话无法接通" in client.get(url).get_data(as_text=True)


def test_queue_lists_pending_oldest_first_with_details(client, auth, world, english):
    newer = make_applicant(world.a, name="王新", applied_at=datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    older = make_applicant(
        world.a,
        types=("five_elders", "party_member"),
        name="赵老",
        grid=world.a.grid2,
        five_elder_kind="veteran",
        employer="安康学院",
        party_branch="机关党支部",
        skills="书法",
        availability="weekends",
        applied_at=datetime(2026, 3, 1, 16, 30, tzinfo=UTC),
    )
    make_applicant(world.a, status="approved", name="已批准")
    auth.login("secretary_a")
    response = client.get("/volunteers/queue")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert page.index("赵老") < page.index("王新")
    assert "已批准" not in page
    phone = older.person.phone  # masked: the full number only by an audited reveal
    assert phone not in page and phone[:3] + "****" + phone[-4:] in page
    assert "安康学院" in page and "机关党支部" in page and world.a.grid2.name in page
    assert "Veteran" in page and "书法" in page and "Weekends" in page
    assert "2026-03-02 00:30" in page  # 16:30 UTC is past midnight in Shanghai
    assert "3 registrations await approval." in page  # the world's own pending_a too
    assert newer.id != older.id


def test_grid_worker_queue_is_their_grids_only(client, auth, world):
    mine = make_applicant(world.a, name="一网格人", grid=world.a.grid)
    auth.login("gridworker_a")
    page = client.get("/volunteers/queue").get_data(as_text=True)
    assert "一网格人" in page
    assert world.a.pending.person.name not in page  # pending_a serves in grid 2
    assert client.post(f"/volunteers/{mine.id}/approve").status_code == 303
    assert reload(mine).decided_by_id == world.a.gridworker.id


def test_queue_is_paginated(client, auth, world, english):
    for n in range(21):
        make_applicant(
            world.a, name=f"排队{n:02d}", applied_at=datetime(2026, 1, 1, 0, n, tzinfo=UTC)
        )
    auth.login("secretary_a")
    first = client.get("/volunteers/queue").get_data(as_text=True)
    assert "排队00" in first and "排队19" in first and "排队20" not in first
    assert "Page 1 of 2" in first
    second = client.get("/volunteers/queue?page=2").get_data(as_text=True)
    assert "排队20" in second and "排队00" not in second
    # A decision made on page 2 without JS comes back to page 2.
    applicant = reload(make_applicant(world.a))
    response = client.post(f"/volunteers/{applicant.id}/approve", data={"page": "2"})
    assert response.headers["Location"] == "/volunteers/queue?page=2"


def test_pending_count_widget(client, auth, world, english):
    make_applicant(world.a)
    auth.login("secretary_a")
    response = client.get("/volunteers/queue/count", headers=HX)
    page = response.get_data(as_text=True)
    assert "<html" not in page
    assert 'id="pending-count"' in page and "2 registrations await approval." in page
    assert 'hx-trigger="volunteer-decided from:body"' in page
    assert client.get("/volunteers/queue/count").status_code == 303
