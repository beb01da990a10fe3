"""Escalation of overdue requests (督办): once per level, however often the job runs."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.help.actions import escalate_overdue
from portal.help.models import HelpRequest, RequestEvent
from portal.notifications.models import Notification
from tests.help.conftest import hd_make_request, hd_reload


def _escalations(req) -> list[str]:
    db.session.commit()
    return list(
        db.session.scalars(
            select(RequestEvent.note)
            .where(RequestEvent.request_id == req.id, RequestEvent.action == "escalate")
            .order_by(RequestEvent.id)
        )
    )


def _notified(user) -> list[str]:
    db.session.commit()
    return list(
        db.session.scalars(
            select(Notification.dedupe_key)
            .where(Notification.user_id == user.id, Notification.kind == "request_escalated")
            .order_by(Notification.id)
        )
    )


def test_escalation_levels_run_twice_repeat_nothing(hd_world):
    a, b = hd_world.a, hd_world.b
    now = now_utc()
    # The light category has a 24-hour limit.
    fresh = hd_make_request(a, a.hd.light, "submitted", due_at=now + timedelta(hours=1))
    late = hd_make_request(a, a.hd.light, "accepted", due_at=now - timedelta(hours=1))
    very_late = hd_make_request(a, a.hd.light, "dispatched", due_at=now - timedelta(hours=25))
    closed = hd_make_request(a, a.hd.light, "verified", due_at=now - timedelta(hours=30))
    b_late = hd_make_request(b, b.hd.light, "submitted", due_at=now - timedelta(hours=2))

    assert escalate_overdue(now) == 4  # late: 1, very_late: 1 and 2, b_late: 1
    db.session.commit()
    assert escalate_overdue(now) == 0
    assert escalate_overdue(now + timedelta(minutes=5)) == 0
    db.session.commit()

    assert [
        hd_reload(HelpRequest, r.id).escalation_level for r in (fresh, late, very_late, closed)
    ] == [0, 1, 2, 0]
    assert _escalations(late) == ["1"]
    assert _escalations(very_late) == ["1", "2"]
    assert _escalations(fresh) == [] and _escalations(closed) == []
    assert sorted(_notified(a.secretary)) == sorted(
        [f"request_escalated:request:{late.id}:1", f"request_escalated:request:{very_late.id}:1"]
    )
    assert _notified(a.admin) == [f"request_escalated:request:{very_late.id}:2"]
    assert _notified(b.secretary) == [f"request_escalated:request:{b_late.id}:1"]
    assert _notified(b.admin) == []
    # A day later: the late ones reach level 2, the fresh one level 1, each once.
    assert escalate_overdue(now + timedelta(hours=24)) == 3  # fresh: 1, late: 2, b_late: 2
    assert escalate_overdue(now + timedelta(hours=24)) == 0
    db.session.commit()
    assert _escalations(late) == ["1", "2"]
    assert hd_reload(HelpRequest, b_late.id).escalation_level == 2


def test_cli_command_is_cron_safe(runner, hd_world):
    a = hd_world.a
    late = hd_make_request(a, a.hd.light, "submitted", due_at=now_utc() - timedelta(hours=1))
    first = runner.invoke(args=["escalate-overdue"])
    assert first.exit_code == 0 and "1 escalation(s) made." in first.output
    second = runner.invoke(args=["escalate-overdue"])
    assert second.exit_code == 0 and "0 escalation(s) made." in second.output
    assert _escalations(late) == ["1"]
    assert len(_notified(a.secretary)) == 1


def test_escalation_message_reads_in_english(client, auth, hd_world):
    a = hd_world.a
    late = hd_make_request(a, a.hd.light, "submitted", due_at=now_utc() - timedelta(hours=1))
    escalate_overdue()
    db.session.commit()
    client.post("/language", data={"lang": "en"})
    auth.login("secretary_a")
    body = client.get("/notifications").get_data(as_text=True)
    assert f"Request no. {late.id}" in body and "Stair light broken" in body
