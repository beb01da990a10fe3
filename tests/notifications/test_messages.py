"""Each kind's text in the reader's language (English asserted; Chinese comes later)."""

from __future__ import annotations

import pytest
from flask_babel import force_locale

from portal.notifications.messages import message_heading, message_text
from tests.notifications.conftest import make_notification

PARAMS = {"title": "夜间巡逻", "when": "2026-12-01 19:00"}
TEXTS = {
    "shift_cancelled": (
        "Shift cancelled",
        "The shift “夜间巡逻” on 2026-12-01 19:00 was cancelled. You no longer need to come.",
    ),
    "waitlist_promoted": (
        "You have a place",
        "A place came free: you now have a place on “夜间巡逻” on 2026-12-01 19:00.",
    ),
    "shift_reminder_24h": (
        "Shift reminder",
        "Reminder: your shift “夜间巡逻” starts at 2026-12-01 19:00.",
    ),
    "shift_reminder_2h": (
        "Shift starting soon",
        "Starting soon: your shift “夜间巡逻” begins at 2026-12-01 19:00. "
        "Please check in on arrival.",
    ),
    "shift_changed": (
        "Shift changed",
        "The shift “夜间巡逻” was changed; it now starts at 2026-12-01 19:00. "
        "Please check the details.",
    ),
}
GENERIC = "You have a new notification. Open it to see the details."


@pytest.mark.parametrize("kind", sorted(TEXTS))
def test_each_kind_reads_in_english(client, auth, world, english, kind):
    make_notification(world.a.volunteer, kind=kind, params=PARAMS)
    auth.login("volunteer_a")
    page = client.get("/notifications").get_data(as_text=True)
    heading, text = TEXTS[kind]
    assert heading in page
    assert text in page


def test_unknown_kind_and_missing_params_give_a_generic_text(client, auth, world, english):
    make_notification(world.a.volunteer, kind="points_awarded", params={"points": 5})
    make_notification(world.a.volunteer, kind="shift_cancelled", params={})
    auth.login("volunteer_a")
    page = client.get("/notifications").get_data(as_text=True)
    assert page.count(GENERIC) == 2
    assert "Notification</h2>" in page  # the unknown kind's heading
    assert "Shift cancelled</h2>" in page


def test_text_follows_the_readers_language(client, auth, world):
    """The same stored row renders per request; Chinese is the default language."""
    make_notification(world.a.volunteer, kind="shift_reminder_24h", params=PARAMS)
    auth.login("volunteer_a")
    client.post("/language", data={"lang": "en"})
    english = client.get("/notifications").get_data(as_text=True)
    assert TEXTS["shift_reminder_24h"][1] in english
    client.post("/language", data={"lang": "zh_Hans_CN"})
    chinese = client.get("/notifications").get_data(as_text=True)
    assert 'lang="zh-CN"' in chinese
    assert "夜间巡逻" in chinese and "2026-12-01 19:00" in chinese


def test_message_functions(app):
    with app.test_request_context(), force_locale("en"):
        assert message_text("shift_changed", PARAMS) == TEXTS["shift_changed"][1]
        assert message_text("shift_changed", {"title": "x"}) == GENERIC
        assert message_text("nobody_knows", None) == GENERIC
        assert message_heading("nobody_knows") == "Notification"
        # Numbers and other values are shown as text, not rejected.
        assert "“7”" in message_text("shift_cancelled", {"title": 7, "when": "2026-12-01 19:00"})
