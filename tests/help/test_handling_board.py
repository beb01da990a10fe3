"""The help board: who sees it, what it lists, claiming (first claim wins, also under
concurrency), and marking a held request done."""

from __future__ import annotations

import io
import threading

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.help.models import HelpRequest, RequestEvent, RequestPhoto
from tests import factories
from tests.help.conftest import HD_HX, hd_make_request, hd_reload, in_image
from tests.helpers import forged_jpeg

THREADS = 8


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("anonymous", 302),
        ("resident_a", 403),
        ("pending_a", 403),  # registered, not yet approved
        ("volunteer_a", 200),
        ("gridworker_a", 403),
        ("secretary_a", 403),
        ("admin_a", 403),
    ],
)
def test_board_access(client, auth, hd_world, who, status):
    if who != "anonymous":
        auth.login(who)
    assert client.get("/board").status_code == status
    fragment = client.get("/board/mine", headers=HD_HX)
    if status == 403:  # htmx does not swap errors: the message goes to the flash area
        assert fragment.headers.get("HX-Retarget") == "#flash"
    elif status == 302:
        assert fragment.headers.get("HX-Redirect", "").startswith("/login")
    else:
        assert 'id="board-mine"' in fragment.get_data(as_text=True)


def test_board_lists_open_neighbour_help_of_my_grid_with_masked_phone(client, auth, hd_world):
    a, b = hd_world.a, hd_world.b
    shown = hd_make_request(a, a.hd.shopping, "submitted", description="帮忙买菜")
    accepted = hd_make_request(a, a.hd.shopping, "accepted", description="帮忙取药")
    hd_make_request(a, a.hd.light, "submitted", description="楼道灯坏了")  # a report
    hd_make_request(a, a.hd.shopping, "submitted", grid_id=a.grid2.id, description="二网格")
    hd_make_request(
        a, a.hd.shopping, "dispatched", description="已有人接", volunteer_id=a.pending.person.id
    )
    hd_make_request(b, b.hd.shopping, "submitted", description="B社区买菜")
    auth.login("volunteer_a")
    body = client.get("/board").get_data(as_text=True)
    assert f'id="board-{shown.id}"' in body and f'id="board-{accepted.id}"' in body
    for hidden in ("楼道灯坏了", "二网格", "已有人接", "B社区买菜"):
        assert hidden not in body
    phone = a.resident.person.phone
    assert phone not in body
    assert phone[:3] + "****" + phone[-4:] in body


def test_claim_by_htmx_then_mark_done_with_photo(client, auth, hd_world, in_uploads):
    a = hd_world.a
    req = hd_make_request(a, a.hd.shopping, "submitted")
    auth.login("volunteer_a")
    response = client.post(f"/handling/{req.id}/claim", data={"view": "board"}, headers=HD_HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body
    assert f'id="board-{req.id}"' in body
    assert "request-changed" in response.headers["HX-Trigger"]
    assert "request-claimed" in response.headers["HX-Trigger"]
    assert "HX-Request" in response.headers["Vary"]
    assert hd_reload(HelpRequest, req.id).volunteer_id == a.volunteer.person.id
    # "My requests to do" now holds it, with the full phone number.
    mine = client.get("/board/mine", headers=HD_HX).get_data(as_text=True)
    assert 'id="board-mine"' in mine and f'id="mine-{req.id}"' in mine
    assert a.resident.person.phone in mine
    response = client.post(
        f"/handling/{req.id}/complete",
        data={"view": "mine", "note": "买好了", "photo": (io.BytesIO(in_image()), "p.png")},
        headers=HD_HX,
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert f'id="mine-{req.id}"' in response.get_data(as_text=True)
    req = hd_reload(HelpRequest, req.id)
    assert (req.status, req.done_note) == ("done", "买好了")
    assert db.session.scalar(select(func.count(RequestPhoto.id))) == 1


def test_done_with_a_photo_over_the_pixel_limit_is_refused(client, auth, hd_world, in_uploads):
    a = hd_world.a
    req = hd_make_request(a, a.hd.shopping, "dispatched")
    auth.login("volunteer_a")
    client.post("/language", data={"lang": "en"})
    response = client.post(
        f"/handling/{req.id}/complete",
        data={
            "view": "mine",
            "note": "买好了",
            "photo": (io.BytesIO(forged_jpeg(7000, 7000)), "p.jpg"),
        },
        headers=HD_HX,
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert "The photo has too many pixels" in response.get_data(as_text=True)
    assert hd_reload(HelpRequest, req.id).status == "dispatched"
    assert db.session.scalar(select(func.count(RequestPhoto.id))) == 0


def test_claim_without_js_redirects_and_a_taken_request_is_gone(client, auth, hd_world):
    a = hd_world.a
    req = hd_make_request(a, a.hd.shopping, "submitted")
    other = factories.make_user("volunteer", a.community, username="volunteer_a2")
    factories.make_volunteer(other.person, grid_id=a.grid.id)
    auth.login("volunteer_a")
    response = client.post(f"/handling/{req.id}/claim", data={"view": "board"})
    assert response.status_code == 303 and response.headers["Location"] == "/board"
    auth.logout()
    client.post("/language", data={"lang": "en"})
    auth.login("volunteer_a2")
    # The request is no longer on the board, so the second volunteer cannot even see it ...
    assert client.post(f"/handling/{req.id}/claim").status_code == 404
    assert hd_reload(HelpRequest, req.id).volunteer_id == a.volunteer.person.id


def test_claim_lost_on_the_board_shows_someone_else_took_it(client, auth, hd_world, monkeypatch):
    """The board item of a loser: the state changed between the check and the UPDATE."""
    from portal.help import workflow

    a = hd_world.a
    req = hd_make_request(a, a.hd.shopping, "submitted")
    real_apply = workflow.apply

    def apply_after_someone_else(request, action, **kw):
        db.session.execute(
            HelpRequest.__table__.update()
            .where(HelpRequest.id == request.id)
            .values(status="dispatched", volunteer_id=a.resident.person.id)
        )
        return real_apply(request, action, **kw)

    monkeypatch.setattr("portal.help.actions.apply", apply_after_someone_else)
    client.post("/language", data={"lang": "en"})
    auth.login("volunteer_a")
    response = client.post(f"/handling/{req.id}/claim", data={"view": "board"}, headers=HD_HX)
    assert response.status_code == 200
    assert "Someone else took it" in response.get_data(as_text=True)
    response = client.post(f"/handling/{req.id}/claim", data={"view": "board"})
    assert response.status_code == 409
    assert "Someone else took it" in response.get_data(as_text=True)
    assert hd_reload(HelpRequest, req.id).status == "submitted"


def _volunteer_clients(app, side) -> list:
    clients = []
    for n in range(THREADS):
        user = factories.make_user("volunteer", side.community, username=f"hd_claimer_{n}")
        factories.make_volunteer(user.person, grid_id=side.grid.id)
        client = app.test_client()
        response = client.post(
            "/login", data={"identifier": user.username, "password": factories.PASSWORD}
        )
        assert response.status_code == 303
        clients.append(client)
    return clients


def test_concurrent_claims_give_one_holder(app, hd_world):
    a = hd_world.a
    req = hd_make_request(a, a.hd.shopping, "submitted")
    clients = _volunteer_clients(app, a)
    barrier = threading.Barrier(THREADS)
    statuses: list[int | None] = [None] * THREADS
    errors: list[BaseException] = []
    headers = [{"X-CSRFToken": c.csrf_token()} for c in clients]
    url = f"/handling/{req.id}/claim"

    def work(n: int) -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                statuses[n] = clients[n].post(url, headers=headers[n]).status_code
        except BaseException as exc:  # reported in the test's own thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sorted(statuses).count(303) == 1, statuses
    # Losers either lost the UPDATE (409) or no longer saw an unheld request (404).
    assert all(s in (303, 404, 409) for s in statuses), statuses
    req = hd_reload(HelpRequest, req.id)
    assert req.status == "dispatched" and req.volunteer_id is not None
    claims = db.session.scalar(
        select(func.count(RequestEvent.id)).where(
            RequestEvent.request_id == req.id, RequestEvent.action == "claim"
        )
    )
    assert claims == 1
