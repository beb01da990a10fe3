"""perform(): input checks, what each step writes, notifications, and hours recorded once."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage

from portal.core.errors import DomainError
from portal.core.photos import prepare_or_refuse
from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.help.actions import perform, quarter_hours, record_hours
from portal.help.models import HelpRequest, RequestEvent, RequestPhoto
from portal.help.workflow import TransitionRefused
from portal.notifications.models import Notification
from tests import factories
from tests.help.conftest import hd_make_request, hd_reload, in_image


def _notes(user_id: int) -> list[Notification]:
    db.session.commit()
    return list(db.session.scalars(select(Notification).where(Notification.user_id == user_id)))


def _events(req) -> int:
    return db.session.scalar(
        select(func.count(RequestEvent.id)).where(RequestEvent.request_id == req.id)
    )


@pytest.mark.parametrize(
    ("action", "data", "field"),
    [
        ("reject", {}, "reason"),
        ("reject", {"reason": "   "}, "reason"),
        ("reject", {"reason": "x" * 501}, "reason"),
        ("comment", {}, "text"),
        ("comment", {"text": "x" * 1001}, "text"),
    ],
)
def test_bad_input_is_refused_and_nothing_changes(hd_world, action, data, field):
    side = hd_world.a
    req = hd_make_request(side, side.hd.light, "submitted")
    with pytest.raises(DomainError) as caught:
        perform(req, action, side.secretary, data)
    assert field in caught.value.errors
    db.session.rollback()
    assert hd_reload(HelpRequest, req.id).status == "submitted"
    assert _events(req) == 0


@pytest.mark.parametrize(
    ("action", "data", "field"),
    [
        ("rate", {}, "rating"),
        ("rate", {"rating": "0"}, "rating"),
        ("rate", {"rating": "6"}, "rating"),
        ("rate", {"rating": "x"}, "rating"),
        ("rate", {"rating": "4", "comment": "x" * 501}, "comment"),
    ],
)
def test_rating_is_checked(hd_world, action, data, field):
    side = hd_world.a
    req = hd_make_request(side, side.hd.light, "verified")
    with pytest.raises(DomainError) as caught:
        perform(req, action, side.resident, data)
    assert field in caught.value.errors
    db.session.rollback()
    assert hd_reload(HelpRequest, req.id).rating is None


def test_reopen_needs_a_reason_and_complete_a_short_note(hd_world):
    side = hd_world.a
    req = hd_make_request(side, side.hd.light, "done")
    with pytest.raises(DomainError) as caught:
        perform(req, "reopen", side.resident, {"reason": ""})
    assert "reason" in caught.value.errors
    other = hd_make_request(side, side.hd.light, "dispatched")
    with pytest.raises(DomainError) as caught:
        perform(other, "complete", side.volunteer, {"note": "x" * 1001})
    assert "note" in caught.value.errors


def test_dispatch_checks_the_volunteer_and_the_unit(hd_world):
    side, b = hd_world.a, hd_world.b
    req = hd_make_request(side, side.hd.light, "accepted")
    cases = [
        ({}, "volunteer_id"),
        ({"volunteer_id": str(b.volunteer.person.volunteer.id)}, "volunteer_id"),  # community B
        ({"volunteer_id": str(side.pending_volunteer.id)}, "volunteer_id"),  # not approved
        ({"volunteer_id": "abc"}, "volunteer_id"),
        ({"volunteer_id": "9" * 30}, "volunteer_id"),
        ({"unit": "police"}, "unit"),
        ({"unit": "community_office", "volunteer_id": "1"}, "_"),
    ]
    for data, field in cases:
        with pytest.raises(DomainError) as caught:
            perform(req, "dispatch", side.gridworker, data)
        assert field in caught.value.errors, data
    assert hd_reload(HelpRequest, req.id).status == "accepted"


def test_dispatch_to_a_volunteer_then_to_a_unit(hd_world):
    side = hd_world.a
    req = hd_make_request(side, side.hd.light, "accepted")
    perform(
        req, "dispatch", side.gridworker, {"volunteer_id": str(side.volunteer.person.volunteer.id)}
    )
    db.session.commit()
    req = hd_reload(HelpRequest, req.id)
    assert (req.status, req.volunteer_id, req.handling_unit) == (
        "dispatched",
        side.volunteer.person.id,
        None,
    )
    assert [n.kind for n in _notes(side.volunteer.id)] == ["request_dispatched"]
    perform(req, "dispatch", side.gridworker, {"unit": "property_company"})
    db.session.commit()
    req = hd_reload(HelpRequest, req.id)
    assert (req.volunteer_id, req.handling_unit) == (None, "property_company")


def test_accept_sets_the_handler_and_tells_the_requester(hd_world):
    side = hd_world.a
    req = hd_make_request(side, side.hd.light, "submitted")
    event = perform(req, "accept", side.gridworker, {})
    db.session.commit()
    req = hd_reload(HelpRequest, req.id)
    assert req.handler_user_id == side.gridworker.id and req.accepted_at is not None
    assert (event.action, event.from_status, event.to_status) == ("accept", "submitted", "accepted")
    notes = _notes(side.resident.id)
    assert [n.kind for n in notes] == ["request_accepted"]
    assert notes[0].params == {
        "number": req.id,
        "title": "楼道灯坏",
        "category_en": "Stair light broken",
    }
    assert notes[0].link == f"/requests/{req.id}"


def test_requester_without_an_account_gets_no_notification(hd_world):
    side = hd_world.a
    elder = factories.make_person(side.community, name="张秀英", phone=None)
    req = hd_make_request(side, side.hd.light, "submitted", requester_id=elder.id,
                          created_by_id=side.gridworker.id)  # fmt: skip
    perform(req, "accept", side.gridworker, {})
    perform(req, "reject", side.gridworker, {"reason": "重复"})
    db.session.commit()
    assert db.session.scalar(select(func.count(Notification.id))) == 0


def test_reject_stores_the_reason_and_tells_the_requester(hd_world):
    side = hd_world.a
    req = hd_make_request(side, side.hd.light, "submitted")
    perform(req, "reject", side.secretary, {"reason": "  不属于社区事务 "})
    db.session.commit()
    req = hd_reload(HelpRequest, req.id)
    assert (req.status, req.reject_reason) == ("rejected", "不属于社区事务")
    assert req.closed_at is not None
    assert [n.kind for n in _notes(side.resident.id)] == ["request_rejected"]


def test_claim_and_release(hd_world):
    side = hd_world.a
    req = hd_make_request(side, side.hd.shopping, "submitted", volunteer_id=None)
    perform(req, "claim", side.volunteer, {})
    db.session.commit()
    req = hd_reload(HelpRequest, req.id)
    assert (req.status, req.volunteer_id) == ("dispatched", side.volunteer.person.id)
    perform(req, "release", side.volunteer, {})
    db.session.commit()
    req = hd_reload(HelpRequest, req.id)
    assert (req.status, req.volunteer_id) == ("accepted", None)


def test_a_report_cannot_be_claimed_from_the_board(hd_world):
    side = hd_world.a
    req = hd_make_request(side, side.hd.light, "submitted", volunteer_id=None)
    with pytest.raises(TransitionRefused):
        perform(req, "claim", side.volunteer, {})


def test_complete_with_note_and_photo(hd_world, in_uploads):
    side = hd_world.a
    req = hd_make_request(side, side.hd.light, "dispatched")
    photo = FileStorage(io.BytesIO(in_image("PNG")), filename="done.png")
    perform(req, "complete", side.volunteer, {"note": "换了灯泡"}, photo=prepare_or_refuse(photo))
    db.session.commit()
    req = hd_reload(HelpRequest, req.id)
    assert (req.status, req.done_note) == ("done", "换了灯泡")
    photos = db.session.scalars(select(RequestPhoto).where(RequestPhoto.request_id == req.id)).all()
    assert [p.stage for p in photos] == ["done"]
    assert (in_uploads / photos[0].file).is_file()
    assert [n.kind for n in _notes(side.resident.id)] == ["request_done"]


def test_complete_with_a_file_that_is_not_a_photo_changes_nothing(hd_world, in_uploads):
    side = hd_world.a
    req = hd_make_request(side, side.hd.light, "dispatched")
    fake = FileStorage(io.BytesIO(b"%PDF-1.4 not a photo"), filename="x.jpg")
    with pytest.raises(DomainError) as caught:
        perform(req, "complete", side.volunteer, {"note": "好了"}, photo=prepare_or_refuse(fake))
    assert "photo" in caught.value.errors
    db.session.rollback()
    assert hd_reload(HelpRequest, req.id).status == "dispatched"
    assert db.session.scalar(select(func.count(RequestPhoto.id))) == 0


def test_reopen_tells_the_holder_and_the_handler(hd_world):
    side = hd_world.a
    req = hd_make_request(side, side.hd.light, "done")
    perform(req, "reopen", side.resident, {"reason": "还是坏的"})
    db.session.commit()
    assert hd_reload(HelpRequest, req.id).status == "dispatched"
    assert [n.kind for n in _notes(side.volunteer.id)] == ["request_reopened"]
    assert [n.kind for n in _notes(side.gridworker.id)] == ["request_reopened"]


@pytest.mark.parametrize(
    ("minutes", "hours"),
    [(0, "0.25"), (10, "0.25"), (29, "0.25"), (30, "0.5"), (74, "1"), (75, "1.25"),
     (600, "8")],
)  # fmt: skip
def test_quarter_hours(minutes, hours):
    start = now_utc()
    assert quarter_hours(start, start + timedelta(minutes=minutes)) == Decimal(hours)


@pytest.mark.parametrize(("action", "actor"), [("verify", "gridworker"), ("confirm", "resident")])
def test_hours_are_recorded_once_on_verification(hd_world, action, actor):
    side = hd_world.a
    now = now_utc()
    req = hd_make_request(side, side.hd.light, "done")
    req.dispatched_at = now - timedelta(hours=2, minutes=50)
    req.done_at = now - timedelta(hours=1)
    db.session.commit()
    perform(req, action, getattr(side, actor), {}, now=now)
    db.session.commit()
    req = hd_reload(HelpRequest, req.id)
    assert req.status == "verified"
    assert req.hours == Decimal("1.75")
    first = req.hours_recorded_at
    assert first is not None
    # A second call (a retry, a bug) writes nothing.
    assert record_hours(req, now + timedelta(hours=1)) is False
    db.session.commit()
    req = hd_reload(HelpRequest, req.id)
    assert (req.hours, req.hours_recorded_at) == (Decimal("1.75"), first)


def test_no_hours_for_a_request_handled_by_a_unit(hd_world):
    side = hd_world.a
    req = hd_make_request(side, side.hd.light, "done", volunteer_id=None,
                          handling_unit="property_company")  # fmt: skip
    perform(req, "verify", side.secretary, {})
    db.session.commit()
    req = hd_reload(HelpRequest, req.id)
    assert req.status == "verified" and req.hours is None and req.hours_recorded_at is None


def test_rate_and_comment(hd_world):
    side = hd_world.a
    req = hd_make_request(side, side.hd.light, "verified")
    perform(req, "comment", side.resident, {"text": "谢谢"})
    perform(req, "rate", side.resident, {"rating": "4", "comment": "不错"})
    db.session.commit()
    req = hd_reload(HelpRequest, req.id)
    assert (req.status, req.rating, req.rating_comment) == ("rated", 4, "不错")
    actions = db.session.scalars(
        select(RequestEvent.action)
        .where(RequestEvent.request_id == req.id)
        .order_by(RequestEvent.id)
    ).all()
    assert actions == ["comment", "rate"]
