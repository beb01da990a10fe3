"""Every action of the workflow table, for every party, in every state, through handling.act:
what the table allows answers 303 and moves the request; anything else answers 409 (or 404 when
the request is not visible at all) and changes nothing. Community B's requests answer 404."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from portal.extensions import db
from portal.help.models import STATUSES, HelpRequest, RequestEvent
from portal.help.workflow import BOARD, HOLDER, REQUESTER, STAFF, TRANSITIONS, allowed
from portal.notifications.models import Notification
from tests.help.conftest import hd_make_request, hd_reload

# Who acts, how they stand towards the request, and which category the request has.
CONFIGS = {
    "requester": ("resident", {REQUESTER}),
    "secretary": ("secretary", {STAFF}),
    "grid_worker": ("grid_worker", {STAFF}),
    "holder": ("volunteer", {HOLDER}),
    "board": ("volunteer", {BOARD}),
    "subdistrict_admin": ("subdistrict_admin", set()),
}
OPEN = {"submitted", "accepted", "dispatched", "done"}


def _data(side, action: str) -> dict:
    return {
        "reject": {"reason": "不属于社区事务"},
        "reopen": {"reason": "灯还是不亮"},
        "dispatch": {"volunteer_id": str(side.volunteer.person.volunteer.id)},
        "complete": {"note": "已更换灯泡"},
        "rate": {"rating": "5", "comment": "很及时"},
        "comment": {"text": "请尽快处理"},
    }.get(action, {})


def _make(side, config: str, status: str) -> HelpRequest:
    if config == "board":
        return hd_make_request(side, side.hd.shopping, status, volunteer_id=None)
    if config == "holder":
        return hd_make_request(side, side.hd.light, status, volunteer_id=side.volunteer.person.id)
    return hd_make_request(side, side.hd.light, status)


def _row(request_id: int) -> tuple:
    db.session.commit()
    return tuple(
        db.session.execute(
            text("SELECT * FROM help_request WHERE id = :id"), {"id": request_id}
        ).one()
    )


def _counts() -> tuple[int, int]:
    db.session.commit()
    return (
        db.session.scalar(select(func.count(RequestEvent.id))),
        db.session.scalar(select(func.count(Notification.id))),
    )


@pytest.mark.parametrize("config", list(CONFIGS))
def test_every_action_for_every_party_in_every_state(client, auth, hd_world, config):
    side = hd_world.a
    role, parties = CONFIGS[config]
    auth.login(side.users[role].username)
    for action, rule in TRANSITIONS.items():
        for status in STATUSES:
            _check(client, side, config, role, parties, action, rule, status)


def _check(client, side, config, role, parties, action, rule, status) -> None:
    req = _make(side, config, status)
    before, counts = _row(req.id), _counts()
    response = client.post(f"/handling/{req.id}/{action}", data=_data(side, action))
    visible = config != "board" or status in OPEN
    if not visible:
        expected = 404
    elif allowed(action, parties, status):
        expected = 303
    else:
        expected = 409
    assert response.status_code == expected, (config, action, status)
    after = hd_reload(HelpRequest, req.id)
    if expected == 303:
        assert after.status == (rule.target or status), (config, action, status)
        event = db.session.scalars(
            select(RequestEvent)
            .where(RequestEvent.request_id == req.id)
            .order_by(RequestEvent.id.desc())
        ).first()
        assert (event.action, event.from_status) == (action, status)
        assert event.actor_id == side.users[role].id
    else:
        assert _row(req.id) == before, (config, action, status)
        assert _counts() == counts, (config, action, status)


def test_the_table_is_what_the_issue_asks(hd_world):
    """Spot checks written out by hand, so the table itself cannot drift unnoticed."""
    assert allowed("accept", {STAFF}, "submitted")
    assert not allowed("accept", {REQUESTER}, "submitted")
    assert not allowed("accept", {STAFF}, "accepted")
    assert allowed("claim", {BOARD}, "accepted")
    assert not allowed("claim", {BOARD}, "dispatched")
    assert allowed("confirm", {REQUESTER}, "done")
    assert not allowed("verify", {REQUESTER}, "done")
    assert allowed("rate", {REQUESTER}, "verified")
    assert not allowed("rate", {REQUESTER}, "rated")
    assert not allowed("cancel", {REQUESTER}, "done")
    assert allowed("reopen", {STAFF}, "done")


@pytest.mark.parametrize("role", ["resident", "volunteer", "grid_worker", "secretary",
                                  "subdistrict_admin"])  # fmt: skip
def test_community_b_requests_answer_404_for_every_action(client, auth, hd_world, role):
    auth.login(hd_world.a.users[role].username)
    b = hd_world.b
    requests = {status: hd_make_request(b, b.hd.light, status) for status in OPEN}
    board = hd_make_request(b, b.hd.shopping, "submitted")
    before = {r.id: _row(r.id) for r in [*requests.values(), board]}
    counts = _counts()
    for action in TRANSITIONS:
        for req in [*requests.values(), board]:
            for headers in ({}, {"HX-Request": "true"}):
                response = client.post(
                    f"/handling/{req.id}/{action}", data=_data(b, action), headers=headers
                )
                if headers:
                    assert response.headers.get("HX-Retarget") == "#flash", (action, req.status)
                else:
                    assert response.status_code == 404, (action, req.status)
    assert {rid: _row(rid) for rid in before} == before
    assert _counts() == counts


def test_unknown_action_is_404(client, auth, hd_world):
    auth.login("secretary_a")
    req = hd_make_request(hd_world.a, hd_world.a.hd.light)
    assert client.post(f"/handling/{req.id}/explode").status_code == 404
    assert hd_reload(HelpRequest, req.id).status == "submitted"


def test_anonymous_is_sent_to_sign_in(client, hd_world):
    req = hd_make_request(hd_world.a, hd_world.a.hd.light)
    response = client.post(f"/handling/{req.id}/accept")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    assert hd_reload(HelpRequest, req.id).status == "submitted"


def test_post_without_csrf_token_is_refused(client, auth, hd_world):
    auth.login("secretary_a")
    req = hd_make_request(hd_world.a, hd_world.a.hd.light)
    response = client.post(f"/handling/{req.id}/accept", csrf=False)
    assert response.status_code == 400
    assert hd_reload(HelpRequest, req.id).status == "submitted"
