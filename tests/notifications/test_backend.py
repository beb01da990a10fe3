"""The outbound message adapter: the log backend by default, any backend by dotted path."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from portal.extensions import db
from portal.notifications import services
from portal.notifications.services import LogBackend, backend, notify, send_reminders
from tests.notifications.conftest import NOW, make_shift, sign_up


class RecordingBackend:
    """A gateway stand-in: remembers every message it was asked to send."""

    sent: list[dict] = []

    def send(self, *, user_id, kind, params, link):
        RecordingBackend.sent.append(
            {"user_id": user_id, "kind": kind, "params": params, "link": link}
        )


@pytest.fixture
def recording(app):
    RecordingBackend.sent = []
    app.config["MESSAGE_BACKEND"] = "tests.notifications.test_backend:RecordingBackend"
    return RecordingBackend.sent


def test_the_default_backend_logs_once_per_new_notification(app, world, caplog):
    assert isinstance(backend(), LogBackend)
    user = world.a.volunteer
    params = {"title": "夜间巡逻", "when": "2026-12-01 19:00"}
    with caplog.at_level(logging.INFO, logger="tongxin.notifications"):
        assert notify(user.id, "shift_cancelled", dedupe_key="k:1", params=params, link="/s/1")
        assert not notify(user.id, "shift_cancelled", dedupe_key="k:1", params=params)
        assert notify(user.id, "shift_changed", dedupe_key="k:2", params=params)
    db.session.commit()
    messages = [r.getMessage() for r in caplog.records if r.name == "tongxin.notifications"]
    assert len(messages) == 2
    assert f"message to user {user.id}: shift_cancelled" in messages[0]
    assert "/s/1" in messages[0]
    assert "shift_changed" in messages[1]


def test_a_configured_backend_receives_each_new_notification(world, recording):
    user = world.a.volunteer
    params = {"title": "夜间巡逻", "when": "2026-12-01 19:00"}
    assert notify(user.id, "waitlist_promoted", dedupe_key="p:1", params=params, link="/shifts/3")
    assert not notify(user.id, "waitlist_promoted", dedupe_key="p:1", params=params)
    assert notify(world.a.resident.id, "shift_changed", dedupe_key="p:1", params=params)
    db.session.commit()
    assert recording == [
        {"user_id": user.id, "kind": "waitlist_promoted", "params": params, "link": "/shifts/3"},
        {"user_id": world.a.resident.id, "kind": "shift_changed", "params": params, "link": ""},
    ]


def test_the_backend_is_resolved_once(app, recording):
    first = backend()
    assert isinstance(first, RecordingBackend)
    assert backend() is first
    app.config["MESSAGE_BACKEND"] = "portal.notifications.services.LogBackend"  # dotted form
    assert isinstance(backend(), LogBackend)


def test_an_object_can_be_configured_directly(app, world):
    instance = RecordingBackend()
    RecordingBackend.sent = []
    app.config["MESSAGE_BACKEND"] = instance
    assert backend() is instance
    notify(world.a.volunteer.id, "shift_cancelled", dedupe_key="o:1")
    assert [m["kind"] for m in RecordingBackend.sent] == ["shift_cancelled"]


def test_a_wrong_path_fails_loudly(app):
    app.config["MESSAGE_BACKEND"] = "portal.notifications.services:NoSuchBackend"
    with pytest.raises(AttributeError):
        backend()
    app.config["MESSAGE_BACKEND"] = "portal.no_such_module:Backend"
    with pytest.raises(ImportError):
        services.backend()


def test_reminders_go_through_the_backend(world, recording):
    shift = make_shift(world.a, NOW + timedelta(hours=3), title="挨户防")
    sign_up(shift, world.a.volunteer.person)
    send_reminders(NOW)
    send_reminders(NOW)
    assert [(m["kind"], m["params"]["title"]) for m in recording] == [
        ("shift_reminder_24h", "挨户防")
    ]
