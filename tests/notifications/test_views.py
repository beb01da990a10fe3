"""The bell and the notification list: own notifications only, open, mark all read, htmx."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from portal.database import utcnow
from portal.notifications.models import Notification
from tests import factories
from tests.notifications.conftest import (
    HX,
    count_queries,
    make_notification,
    notifications_of,
)

ROLES = factories.ROLES


def unread_badge(page: str) -> str | None:
    """The number on the bell, or None when the bell shows no badge."""
    assert 'id="bell-count"' in page, "the bell is on every signed-in page"
    bell = page.split('id="bell-count"', 1)[1].split("</a>", 1)[0]
    found = re.search(r'class="badge badge-pending" aria-hidden="true">(\d+)<', bell)
    return found.group(1) if found else None


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_only_their_own_notifications(client, auth, world, english, role):
    user = world.a.users[role]
    mine = make_notification(user, params={"title": "我的巡逻", "when": "2026-12-01 19:00"})
    make_notification(
        world.a.secretary if role != "secretary" else world.a.volunteer,
        params={"title": "别人的巡逻", "when": "2026-12-02 19:00"},
    )
    make_notification(world.b.users[role], params={"title": "西城巡逻", "when": "2026-12-03 19:00"})
    auth.login(user.username)
    response = client.get("/notifications")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "The shift “我的巡逻” on 2026-12-01 19:00 was cancelled." in page
    assert "别人的巡逻" not in page and "西城巡逻" not in page
    assert f'action="/notifications/{mine.id}/open"' in page
    assert unread_badge(page) == "1"


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get("/notifications")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    response = client.get("/notifications/bell", headers=HX)
    assert response.headers["HX-Redirect"].startswith("/login")
    response = client.post("/notifications/read-all")
    assert response.status_code == 302


def test_newest_first_unread_marked_and_paginated(client, auth, world, english):
    user = world.a.volunteer
    now = utcnow()
    for n in range(25):
        make_notification(
            user,
            kind="shift_reminder_24h",
            params={"title": f"巡逻{n:02d}", "when": "2026-12-01 19:00"},
            created_at=now - timedelta(minutes=100 - n),
            read_at=now if n < 10 else None,
        )
    auth.login(user.username)
    page = client.get("/notifications").get_data(as_text=True)
    titles = re.findall(r"“(巡逻\d\d)”", page)
    assert titles == [f"巡逻{n:02d}" for n in range(24, 4, -1)]  # 20 a page, newest first
    assert page.count('<span class="badge badge-pending">New</span>') == 15
    assert "Reminder: your shift “巡逻24” starts at 2026-12-01 19:00." in page
    assert unread_badge(page) == "15"
    assert "Page 1 of 2" in page
    page2 = client.get("/notifications?page=2").get_data(as_text=True)
    assert re.findall(r"“(巡逻\d\d)”", page2) == ["巡逻04", "巡逻03", "巡逻02", "巡逻01", "巡逻00"]
    assert "New</span>" not in page2.split('id="notification-list"')[1]


def test_no_notifications(client, auth, world, english):
    auth.login("resident_a")
    page = client.get("/notifications").get_data(as_text=True)
    assert "No notifications yet." in page
    assert unread_badge(page) is None
    assert "Mark all as read" not in page


def test_list_runs_a_fixed_number_of_queries(client, auth, world):
    user = world.a.volunteer
    make_notification(user)
    auth.login(user.username)
    client.get("/notifications")  # warm up: the session user, translations
    with count_queries() as few:
        assert client.get("/notifications").status_code == 200
    for _n in range(15):
        make_notification(user)
    with count_queries() as many:
        assert client.get("/notifications").status_code == 200
    assert len(many) == len(few)
    # The bell's number and the list's "mark all" share one COUNT of unread notifications.
    unread_counts = [
        s for s in many if "count(notification.id)" in s.lower() and "read_at is null" in s.lower()
    ]
    assert len(unread_counts) == 1


def test_open_marks_read_and_goes_to_the_link(client, auth, world):
    user = world.a.volunteer
    notification = make_notification(user, link="/shifts/42")
    other = make_notification(user, link="/shifts/43")
    auth.login(user.username)
    response = client.post(f"/notifications/{notification.id}/open")
    assert response.status_code == 303
    assert response.headers["Location"] == "/shifts/42"
    rows = {n.id: n for n in notifications_of(user)}
    first_read = rows[notification.id].read_at
    assert first_read is not None
    assert rows[other.id].read_at is None
    # Opening again keeps the first reading time.
    assert client.post(f"/notifications/{notification.id}/open").status_code == 303
    assert {n.id: n.read_at for n in notifications_of(user)}[notification.id] == first_read


@pytest.mark.parametrize(
    "link", ["https://evil.example/", "//evil.example/x", "", "javascript:alert(1)"]
)
def test_open_never_leaves_the_site(client, auth, world, link):
    notification = make_notification(world.a.volunteer, link=link)
    auth.login("volunteer_a")
    response = client.post(f"/notifications/{notification.id}/open")
    assert response.status_code == 303
    assert response.headers["Location"] == "/notifications"


@pytest.mark.parametrize("htmx", [False, True])
def test_other_users_notifications_answer_404(client, auth, world, htmx):
    neighbour = make_notification(world.a.secretary)  # same community, another user
    outsider = make_notification(world.b.volunteer)
    auth.login("volunteer_a")
    for notification in (neighbour, outsider):
        response = client.post(f"/notifications/{notification.id}/open", headers=HX if htmx else {})
        if htmx:
            assert response.headers["HX-Retarget"] == "#flash"
        else:
            assert response.status_code == 404
    assert client.post("/notifications/999999/open").status_code == 404
    assert all(n.read_at is None for n in notifications_of(world.a.secretary))
    assert all(n.read_at is None for n in notifications_of(world.b.volunteer))


def test_read_all_marks_only_ones_own(client, auth, world, english):
    user = world.a.volunteer
    for _n in range(3):
        make_notification(user)
    make_notification(world.a.secretary)
    auth.login(user.username)
    response = client.post("/notifications/read-all")
    assert response.status_code == 303
    assert response.headers["Location"] == "/notifications"
    assert all(n.read_at is not None for n in notifications_of(user))
    assert all(n.read_at is None for n in notifications_of(world.a.secretary))
    page = client.get("/notifications").get_data(as_text=True)
    assert "All notifications are marked as read." in page
    assert unread_badge(page) is None


def test_read_all_with_htmx_swaps_the_list_and_tells_the_bell(client, auth, world, english):
    user = world.a.volunteer
    make_notification(user)
    make_notification(user)
    auth.login(user.username)
    response = client.post("/notifications/read-all", headers=HX)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "<html" not in body
    assert 'id="notification-list"' in body
    assert "New</span>" not in body and "Mark all as read" not in body
    assert response.headers["HX-Trigger"] == "notifications-read"
    assert "HX-Request" in response.headers["Vary"]
    assert all(n.read_at is not None for n in notifications_of(user))


def test_read_all_needs_csrf(client, auth, world):
    make_notification(world.a.volunteer)
    auth.login("volunteer_a")
    assert client.post("/notifications/read-all", csrf=False).status_code == 400
    assert all(n.read_at is None for n in notifications_of(world.a.volunteer))


def test_bell_fragment(client, auth, world, english):
    user = world.a.volunteer
    auth.login(user.username)
    response = client.get("/notifications/bell", headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in body
    assert 'id="bell-count"' in body
    assert 'hx-trigger="signup-changed from:body, notifications-read from:body, every 60s"' in body
    assert "badge" not in body
    for _n in range(3):
        make_notification(user)
    make_notification(user, read_at=utcnow())
    body = client.get("/notifications/bell", headers=HX).get_data(as_text=True)
    assert 'aria-hidden="true">3</span>' in body
    assert "3 unread" in body
    # Without htmx the bell is just the way to the list.
    response = client.get("/notifications/bell")
    assert response.status_code == 303
    assert response.headers["Location"] == "/notifications"


def test_bell_shows_on_every_page_with_one_count_query(client, auth, world):
    make_notification(world.a.secretary)
    auth.login("secretary_a")
    with count_queries() as statements:
        page = client.get("/").get_data(as_text=True)
    assert unread_badge(page) == "1"
    counts = [s for s in statements if "FROM notification" in s]
    assert len(counts) == 1 and "count(" in counts[0].lower()


def test_notification_model_unique_per_user_and_key(world):
    from sqlalchemy.exc import IntegrityError

    from portal.extensions import db

    make_notification(world.a.volunteer, dedupe_key="same")
    make_notification(world.a.secretary, dedupe_key="same")  # another user: allowed
    db.session.add(
        Notification(user_id=world.a.volunteer.id, kind="x", params={}, dedupe_key="same")
    )
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
