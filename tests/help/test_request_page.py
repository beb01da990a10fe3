"""The request page: who may see it, what they see (phones), the live timeline, my requests, the
photos, the requester's buttons, and isolation between communities."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from portal.core.photos import prepare_photo, store_photo
from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.help.models import HelpRequest, RequestEvent, RequestPhoto
from tests.help.conftest import IN_HX, in_image, in_make_request

ROLES = ("anonymous", "resident", "volunteer", "grid_worker", "secretary", "subdistrict_admin")


def _login(auth, world, role) -> None:
    if role != "anonymous":
        auth.login(world.a.users[role].username)


def _body(response) -> str:
    return response.get_data(as_text=True)


def _add_photo(req, in_uploads) -> RequestPhoto:
    from werkzeug.datastructures import FileStorage

    name = store_photo(prepare_photo(FileStorage(stream=io.BytesIO(in_image()), filename="x.png")))
    photo = RequestPhoto(community_id=req.community_id, request_id=req.id, file=name)
    db.session.add(photo)
    db.session.commit()
    return photo


# --- access -----------------------------------------------------------------------------------

# A report request of resident_a in grid 1: volunteer_a is no party to it.
REPORT_ACCESS = {
    "anonymous": 302,
    "resident": 200,
    "volunteer": 404,
    "grid_worker": 200,
    "secretary": 200,
    "subdistrict_admin": 200,
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("path", ["/requests/{id}", "/requests/{id}/timeline"])
def test_who_sees_a_report(client, auth, in_world, role, path):
    req = in_make_request(in_world.a, in_world.a.cat.water)
    _login(auth, in_world, role)
    response = client.get(path.format(id=req.id))
    assert response.status_code == REPORT_ACCESS[role]
    if response.status_code == 302:
        assert response.headers["Location"].startswith("/login")


def test_a_grid_worker_of_another_grid_and_an_outsider_get_404(client, auth, in_world):
    req = in_make_request(in_world.a, in_world.a.cat.water, grid_id=in_world.a.grid2.id)
    auth.login("gridworker_a")
    assert client.get(f"/requests/{req.id}").status_code == 404
    auth.logout()
    auth.login("pending_a")  # a resident who is no party
    assert client.get(f"/requests/{req.id}").status_code == 404


def test_the_board_volunteer_sees_open_neighbour_help_only(client, auth, in_world):
    world = in_world
    req = in_make_request(world.a, world.a.cat.shopping)
    auth.login("volunteer_a")
    response = client.get(f"/requests/{req.id}")
    assert response.status_code == 200
    body = _body(response)
    phone = world.a.resident.person.phone
    assert phone not in body and phone[:3] + "****" + phone[-4:] in body
    assert world.a.resident.person.name not in body
    assert "/act/claim" in body
    req.status = "cancelled"
    db.session.commit()
    assert client.get(f"/requests/{req.id}").status_code == 404


@pytest.mark.parametrize(
    ("username", "full"),
    [
        ("resident_a", False),
        ("volunteer_a", True),
        ("gridworker_a", True),
        ("secretary_a", True),
        ("admin_a", True),
    ],
)
def test_the_requesters_phone_full_only_for_staff_and_the_holder(
    client, auth, in_world, username, full
):
    world = in_world
    req = in_make_request(
        world.a, world.a.cat.shopping, status="dispatched", volunteer_id=world.a.volunteer.person.id
    )
    auth.login(username)
    body = _body(client.get(f"/requests/{req.id}"))
    phone = world.a.resident.person.phone
    assert (phone in body) == full
    assert phone[:3] + "****" + phone[-4:] in body or full
    # The volunteer holding it is named to the requester (and everyone who may see it).
    assert world.a.volunteer.person.name in body


# --- the page and the timeline -----------------------------------------------------------------


def test_the_page_shows_the_loop_the_deadline_and_overdue(client, auth, in_world):
    world = in_world
    req = in_make_request(
        world.a, world.a.cat.water, status="accepted", due_at=now_utc() - timedelta(hours=1)
    )
    auth.login("resident_a")
    client.post("/language", data={"lang": "en"})
    body = _body(client.get(f"/requests/{req.id}"))
    assert 'aria-current="step"' in body
    current = body.split('aria-current="step"')[1][:80]
    assert "Accepted" in current
    assert "Overdue" in body and "To be handled by" in body
    assert "Water leak" in body and 'id="timeline"' in body
    assert 'hx-trigger="every 15s, request-changed from:body"' in body
    # The requester's buttons only.
    assert "/act/cancel" in body and "/act/comment" in body
    assert "/act/accept" not in body and "/act/confirm" not in body


def test_staff_buttons_and_the_dispatch_link(client, auth, in_world):
    req = in_make_request(in_world.a, in_world.a.cat.water)
    auth.login("gridworker_a")
    body = _body(client.get(f"/requests/{req.id}"))
    for action in ("accept", "reject", "cancel", "comment"):
        assert f"/act/{action}" in body
    assert f"/requests/{req.id}/dispatch" not in body
    req.status = "accepted"
    db.session.commit()
    body = _body(client.get(f"/requests/{req.id}"))
    assert f"/requests/{req.id}/dispatch" in body


def test_the_timeline_fragment(client, auth, in_world):
    world = in_world
    req = in_make_request(world.a, world.a.cat.water)
    db.session.add(
        RequestEvent(
            community_id=req.community_id, request_id=req.id, actor_id=world.a.gridworker.id,
            action="accept", from_status="submitted", to_status="accepted", note="马上到",
        )
    )  # fmt: skip
    db.session.commit()
    auth.login("resident_a")
    response = client.get(f"/requests/{req.id}/timeline", headers=IN_HX)
    body = _body(response)
    assert response.status_code == 200 and "<html" not in body
    assert 'id="timeline"' in body
    assert "HX-Request" in response.headers["Vary"]
    assert "马上到" in body and world.a.gridworker.display_name in body
    # Without htmx, the whole page.
    assert "<html" in _body(client.get(f"/requests/{req.id}/timeline"))


# --- my requests ------------------------------------------------------------------------------


def test_my_requests_lists_own_only_with_a_fixed_number_of_queries(client, auth, in_world, app):
    world = in_world
    mine = in_make_request(world.a, world.a.cat.water, description="我的第一个")
    in_make_request(world.a, world.a.cat.water, requester=world.a.pending, description="别人的")
    overdue = in_make_request(
        world.a, world.a.cat.shopping, description="过期的", due_at=now_utc() - timedelta(hours=2)
    )
    auth.login("resident_a")
    client.post("/language", data={"lang": "en"})
    body = _body(client.get("/requests/mine"))
    assert "我的第一个" in body and "过期的" in body and "别人的" not in body
    assert body.index("过期的") < body.index("我的第一个")  # newest first
    assert body.count("Overdue") == 1
    assert f"/requests/{mine.id}" in body and f"/requests/{overdue.id}" in body

    statements: list[str] = []

    def count(*_args) -> None:
        statements.append("x")

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        client.get("/requests/mine")
        first = len(statements)
        for n in range(5):
            in_make_request(world.a, world.a.cat.shopping, description=f"更多{n}")
        statements.clear()
        client.get("/requests/mine")
        assert len(statements) == first
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_my_requests_paginates(client, auth, in_world):
    for n in range(23):
        in_make_request(in_world.a, in_world.a.cat.water, description=f"第{n}号")
    auth.login("resident_a")
    first = _body(client.get("/requests/mine"))
    second = _body(client.get("/requests/mine?page=2"))
    assert first.count('class="card" id="request-') == 20
    assert second.count('class="card" id="request-') == 3


# --- photos -----------------------------------------------------------------------------------


def test_photos_are_served_to_those_who_see_the_request(client, auth, in_world, in_uploads):
    req = in_make_request(in_world.a, in_world.a.cat.water)
    photo = _add_photo(req, in_uploads)
    auth.login("resident_a")
    assert f"/request-photos/{photo.id}" in _body(client.get(f"/requests/{req.id}"))
    response = client.get(f"/request-photos/{photo.id}")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert "no-store" in response.headers["Cache-Control"]
    auth.logout()
    auth.login("volunteer_a")
    assert client.get(f"/request-photos/{photo.id}").status_code == 404


# --- the requester's steps --------------------------------------------------------------------


def _events() -> int:
    return db.session.scalar(select(func.count()).select_from(RequestEvent))


def _status(req_id: int) -> str:
    return db.session.get(HelpRequest, req_id).status


def test_requester_comments_and_cancels(client, auth, in_world):
    req = in_make_request(in_world.a, in_world.a.cat.water)
    auth.login("resident_a")
    response = client.post(f"/requests/{req.id}/act/comment", data={"text": "下午在家"})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/requests/{req.id}"
    notes = db.session.scalars(
        select(RequestEvent.note).where(RequestEvent.action == "comment")
    ).all()
    assert notes == ["下午在家"]
    response = client.post(f"/requests/{req.id}/act/cancel", data={"reason": "已自行解决"})
    assert response.status_code == 303 and _status(req.id) == "cancelled"
    # Cancelled: no further step.
    assert client.post(f"/requests/{req.id}/act/cancel", data={}).status_code == 409


def test_an_empty_comment_is_refused_with_a_message(client, auth, in_world):
    req = in_make_request(in_world.a, in_world.a.cat.water)
    auth.login("resident_a")
    client.post("/language", data={"lang": "en"})
    response = client.post(f"/requests/{req.id}/act/comment", data={"text": " "})
    assert response.status_code == 200 and "Please fill in this field." in _body(response)
    assert db.session.scalar(select(RequestEvent).where(RequestEvent.action == "comment")) is None


def test_requester_confirms_then_rates(client, auth, in_world):
    req = in_make_request(in_world.a, in_world.a.cat.water, status="done")
    auth.login("resident_a")
    assert client.post(f"/requests/{req.id}/act/rate", data={"rating": "5"}).status_code == 409
    assert client.post(f"/requests/{req.id}/act/confirm", data={}).status_code == 303
    assert _status(req.id) == "verified"
    client.post("/language", data={"lang": "en"})
    response = client.post(f"/requests/{req.id}/act/rate", data={"rating": "9"})
    assert response.status_code == 200 and "Choose from 1 to 5 stars." in _body(response)
    response = client.post(
        f"/requests/{req.id}/act/rate", data={"rating": "4", "comment": "很及时"}
    )
    assert response.status_code == 303
    req = db.session.get(HelpRequest, req.id)
    assert (req.status, req.rating, req.rating_comment) == ("rated", 4, "很及时")


def test_requester_reopens_with_a_reason(client, auth, in_world):
    req = in_make_request(
        in_world.a,
        in_world.a.cat.shopping,
        status="done",
        volunteer_id=in_world.a.volunteer.person.id,
    )
    auth.login("resident_a")
    response = client.post(f"/requests/{req.id}/act/reopen", data={"reason": ""})
    assert response.status_code == 200 and _status(req.id) == "done"
    response = client.post(f"/requests/{req.id}/act/reopen", data={"reason": "还在漏水"})
    assert response.status_code == 303 and _status(req.id) == "dispatched"


def test_an_htmx_step_answers_the_state_fragment_and_the_event(client, auth, in_world):
    req = in_make_request(in_world.a, in_world.a.cat.water)
    auth.login("resident_a")
    response = client.post(
        f"/requests/{req.id}/act/comment", data={"text": "请先打电话"}, headers=IN_HX
    )
    body = _body(response)
    assert response.status_code == 200 and "<html" not in body
    assert 'id="request-state"' in body
    assert response.headers["HX-Trigger"] == "request-changed"


@pytest.mark.parametrize(
    ("username", "action", "status"),
    [
        ("resident_a", "accept", 403),  # never the requester's step
        ("admin_a", "comment", 403),  # sees it, is no party
        ("volunteer_a", "comment", 404),  # may not even see it
        ("resident_a", "fly", 404),
    ],
)
def test_steps_that_are_not_yours(client, auth, in_world, username, action, status):
    req = in_make_request(in_world.a, in_world.a.cat.water)
    auth.login(username)
    response = client.post(f"/requests/{req.id}/act/{action}", data={"text": "x"})
    assert response.status_code == status
    assert _status(req.id) == "submitted"
    assert db.session.scalar(select(RequestEvent).where(RequestEvent.action == "comment")) is None


# --- isolation --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES[1:])
def test_community_a_gets_404_for_every_b_request_route(client, auth, in_world, in_uploads, role):
    world = in_world
    req_b = in_make_request(world.b, world.b.cat.water)
    photo_b = _add_photo(req_b, in_uploads)
    _login(auth, world, role)
    before = (db.session.get(HelpRequest, req_b.id).status, _events())
    for method, path, data in [
        ("GET", f"/requests/{req_b.id}", None),
        ("GET", f"/requests/{req_b.id}/timeline", None),
        ("GET", f"/request-photos/{photo_b.id}", None),
        ("POST", f"/requests/{req_b.id}/act/comment", {"text": "看看"}),
        ("POST", f"/requests/{req_b.id}/act/cancel", {}),
    ]:
        response = client.open(path, method=method, data=data)
        assert response.status_code == 404, (role, path)
        assert world.b.resident.person.name not in _body(response)
    db.session.expire_all()
    after = (db.session.get(HelpRequest, req_b.id).status, _events())
    assert after == before
    assert f"/requests/{req_b.id}" not in _body(client.get("/requests/mine"))
