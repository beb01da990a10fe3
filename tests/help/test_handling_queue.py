"""The grid worker's queue and the dispatch page: access, ordering, filters, query count,
quick actions with and without htmx, ranking of volunteers, isolation between communities."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.help.models import HelpRequest
from portal.notifications.models import Notification
from tests import factories
from tests.help.conftest import HD_HX, hd_count_queries, hd_make_request, hd_reload

ACCESS = [
    ("anonymous", 302),
    ("resident", 403),
    ("volunteer", 403),
    ("grid_worker", 200),
    ("secretary", 200),
    ("subdistrict_admin", 200),
]


@pytest.mark.parametrize(("role", "status"), ACCESS)
@pytest.mark.parametrize("url", ["/handling", "/handling/figures"])
def test_queue_and_figures_access(client, auth, hd_world, role, status, url):
    if role != "anonymous":
        auth.login(hd_world.a.users[role].username)
    response = client.get(url)
    assert response.status_code == status
    if status == 302:
        assert response.headers["Location"].startswith("/login")


def _ids_in(body: str, ids: list[int]) -> list[int]:
    found = [(body.index(f'id="request-{i}"'), i) for i in ids if f'id="request-{i}"' in body]
    return [i for _, i in sorted(found)]


def test_queue_shows_open_requests_overdue_first_then_by_due_time(client, auth, hd_world):
    a = hd_world.a
    now = now_utc()
    later = hd_make_request(a, a.hd.light, "submitted", due_at=now + timedelta(hours=20))
    sooner = hd_make_request(a, a.hd.light, "accepted", due_at=now + timedelta(hours=2))
    overdue_late = hd_make_request(a, a.hd.light, "dispatched", due_at=now - timedelta(hours=1))
    overdue_early = hd_make_request(a, a.hd.light, "done", due_at=now - timedelta(hours=5))
    closed = hd_make_request(a, a.hd.light, "verified", due_at=now - timedelta(hours=9))
    other_grid = hd_make_request(a, a.hd.light, "submitted", grid_id=a.grid2.id)
    b_req = hd_make_request(hd_world.b, hd_world.b.hd.light, "submitted")
    ids = [later.id, sooner.id, overdue_late.id, overdue_early.id, closed.id, other_grid.id]
    auth.login("gridworker_a")
    body = client.get("/handling").get_data(as_text=True)
    assert _ids_in(body, ids + [b_req.id]) == [
        overdue_early.id,
        overdue_late.id,
        sooner.id,
        later.id,
    ]
    auth.logout()
    auth.login("secretary_a")
    body = client.get("/handling").get_data(as_text=True)
    assert other_grid.id in _ids_in(body, ids) and b_req.id not in _ids_in(body, [b_req.id])
    # Filters
    body = client.get(f"/handling?status=submitted&grid={a.grid.id}").get_data(as_text=True)
    assert _ids_in(body, ids) == [later.id]
    body = client.get(f"/handling?category={a.hd.shopping.id}").get_data(as_text=True)
    assert _ids_in(body, ids) == []


def test_queue_pages_continue_the_order(app, client, auth, hd_world):
    a = hd_world.a
    now = now_utc()
    app.config["PAGE_SIZE"] = 3
    dues = [-5, None, 3, -1, 7, None, 1]  # hours from now; None: no deadline, listed last
    made = [
        hd_make_request(
            a, a.hd.light, "submitted", due_at=None if h is None else now + timedelta(hours=h)
        )
        for h in dues
    ]
    expected = [made[i].id for i in (0, 3, 6, 2, 4, 1, 5)]
    auth.login("gridworker_a")
    pages = [client.get(f"/handling?page={n}").get_data(as_text=True) for n in (1, 2, 3)]
    assert [_ids_in(body, expected) for body in pages] == [
        expected[:3],
        expected[3:6],
        expected[6:],
    ]
    assert "7" in pages[0].split('class="muted"')[1].split("</p>")[0]  # the total, not the page
    assert client.get("/handling?page=4").status_code == 200


def test_admin_sees_the_queue_read_only_with_masked_names(client, auth, hd_world):
    a = hd_world.a
    req = hd_make_request(a, a.hd.light, "submitted")
    auth.login("admin_a")
    body = client.get("/handling").get_data(as_text=True)
    assert f'id="request-{req.id}"' in body
    assert f"/handling/{req.id}/accept" not in body
    assert a.resident.person.name not in body


def test_queue_runs_a_fixed_number_of_queries(client, auth, hd_world):
    a = hd_world.a
    auth.login("secretary_a")
    hd_make_request(a, a.hd.light, "submitted")
    with hd_count_queries() as few:
        assert client.get("/handling").status_code == 200
    for n in range(12):
        hd_make_request(a, a.hd.light, ("submitted", "accepted", "dispatched")[n % 3],
                        grid_id=(a.grid.id, a.grid2.id)[n % 2])  # fmt: skip
    with hd_count_queries() as many:
        body = client.get("/handling").get_data(as_text=True)
    assert body.count('class="card queue-row"') == 13
    assert many["n"] == few["n"]


def test_accept_by_htmx_returns_the_row_and_the_trigger(client, auth, hd_world):
    a = hd_world.a
    req = hd_make_request(a, a.hd.light, "submitted")
    auth.login("gridworker_a")
    response = client.post(f"/handling/{req.id}/accept", data={"view": "queue"}, headers=HD_HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body
    assert body.lstrip().startswith("<article") or f'id="request-{req.id}"' in body
    assert response.headers["HX-Trigger"] == "request-changed"
    assert "HX-Request" in response.headers["Vary"]
    assert hd_reload(HelpRequest, req.id).status == "accepted"


def test_reject_without_reason_shows_the_message_in_the_row(client, auth, hd_world):
    a = hd_world.a
    req = hd_make_request(a, a.hd.light, "submitted")
    client.post("/language", data={"lang": "en"})
    auth.login("gridworker_a")
    response = client.post(
        f"/handling/{req.id}/reject", data={"view": "queue", "reason": ""}, headers=HD_HX
    )
    assert response.status_code == 200
    assert "Please fill in this field." in response.get_data(as_text=True)
    # Without JavaScript: the whole queue again, status 200, the message by the row.
    response = client.post(f"/handling/{req.id}/reject", data={"reason": "x" * 501})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in body
    assert "At most 500 characters, please." in body
    assert "x" * 501 in body  # what was typed is kept
    assert hd_reload(HelpRequest, req.id).status == "submitted"
    response = client.post(f"/handling/{req.id}/reject", data={"reason": "重复提交"})
    assert response.status_code == 303 and response.headers["Location"] == "/handling"
    assert hd_reload(HelpRequest, req.id).status == "rejected"


def test_a_refused_step_by_htmx_goes_to_the_flash_area(client, auth, hd_world):
    a = hd_world.a
    req = hd_make_request(a, a.hd.light, "accepted")
    auth.login("gridworker_a")
    response = client.post(f"/handling/{req.id}/accept", headers=HD_HX)
    assert response.headers.get("HX-Retarget") == "#flash"
    assert client.post(f"/handling/{req.id}/accept").status_code == 409


# --- dispatch -------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "status"), ACCESS[:-1] + [("subdistrict_admin", 403)])
def test_dispatch_page_access(client, auth, hd_world, role, status):
    req = hd_make_request(hd_world.a, hd_world.a.hd.light, "accepted")
    if role != "anonymous":
        auth.login(hd_world.a.users[role].username)
    assert client.get(f"/requests/{req.id}/dispatch").status_code == status


def test_dispatch_of_other_grid_or_community_is_404(client, auth, hd_world):
    a, b = hd_world.a, hd_world.b
    other_grid = hd_make_request(a, a.hd.light, "accepted", grid_id=a.grid2.id)
    b_req = hd_make_request(b, b.hd.light, "accepted")
    auth.login("gridworker_a")
    assert client.get(f"/requests/{other_grid.id}/dispatch").status_code == 404
    assert client.get(f"/requests/{b_req.id}/dispatch").status_code == 404
    data = {"unit": "property_company"}
    assert client.post(f"/requests/{b_req.id}/dispatch", data=data).status_code == 404
    assert hd_reload(HelpRequest, b_req.id).status == "accepted"


def _volunteer(side, name, skills, grid):
    user = factories.make_user("volunteer", side.community, name=name)
    return factories.make_volunteer(user.person, skills=skills, grid_id=grid.id)


def test_candidates_ranked_by_skills_grid_and_load(client, auth, hd_world):
    a = hd_world.a
    busy = _volunteer(a, "王电工", "电工, 楼道灯维修", a.grid)
    _volunteer(a, "孙电工", "电工, 楼道灯维修", a.grid)
    _volunteer(a, "李师傅", "楼道照明", a.grid2)
    _volunteer(a, "赵大姐", "陪聊", a.grid)
    _volunteer(a, "周大爷", "陪聊", a.grid2)
    factories.make_volunteer(
        factories.make_person(a.community, name="钱待批"), status="pending", skills="楼道灯"
    )
    hd_make_request(a, a.hd.light, "dispatched", volunteer_id=busy.person_id)
    req = hd_make_request(a, a.hd.light, "accepted")
    auth.login("secretary_a")
    body = client.get(f"/requests/{req.id}/dispatch").get_data(as_text=True)
    names = ["孙电工", "王电工", "李师傅", "赵大姐", "周大爷"]
    # Matching skills first (more matching words first), then the same grid, then less load.
    assert sorted(names, key=body.index) == names
    assert "钱待批" not in body


def test_dispatch_post_to_a_volunteer_notifies_them(client, auth, hd_world):
    a = hd_world.a
    req = hd_make_request(a, a.hd.light, "accepted")
    auth.login("gridworker_a")
    volunteer_id = a.volunteer.person.volunteer.id
    response = client.post(f"/requests/{req.id}/dispatch", data={"volunteer_id": volunteer_id})
    assert response.status_code == 303 and response.headers["Location"] == "/handling"
    req = hd_reload(HelpRequest, req.id)
    assert (req.status, req.volunteer_id) == ("dispatched", a.volunteer.person.id)
    kinds = db.session.scalars(
        select(Notification.kind).where(Notification.user_id == a.volunteer.id)
    ).all()
    assert kinds == ["request_dispatched"]


def test_dispatch_post_with_nothing_chosen_shows_the_error(client, auth, hd_world):
    a = hd_world.a
    req = hd_make_request(a, a.hd.light, "accepted")
    client.post("/language", data={"lang": "en"})
    auth.login("secretary_a")
    response = client.post(f"/requests/{req.id}/dispatch", data={})
    assert response.status_code == 200
    assert "Choose a volunteer or a handling unit." in response.get_data(as_text=True)
    response = client.post(f"/requests/{req.id}/dispatch", data={"unit": "community_office"})
    assert response.status_code == 303
    assert hd_reload(HelpRequest, req.id).handling_unit == "community_office"
    # Dispatching a request that is not accepted yet is refused.
    fresh = hd_make_request(a, a.hd.light, "submitted")
    response = client.post(f"/requests/{fresh.id}/dispatch", data={"unit": "community_office"})
    assert response.status_code == 409
    assert db.session.scalar(select(func.count(Notification.id))) == 0
