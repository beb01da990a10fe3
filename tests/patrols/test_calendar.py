"""iCalendar: the secret personal feed (parsed back with icalendar), its reset, and the .ics file
of one shift."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import select

from portal.auth.models import User
from portal.core.timeutil import LOCAL_TZ, now_utc
from portal.extensions import db
from portal.notifications.services import notify
from tests.patrols.conftest import su_hold, su_make_shift, su_make_volunteer


def _token(user_id: int) -> str | None:
    db.session.commit()
    return db.session.scalar(select(User.calendar_token).where(User.id == user_id))


def _feed_path(page: str) -> str:
    url = re.search(r'id="feed-url" value="([^"]+)"', page).group(1)
    assert url.startswith("http://localhost/calendar/") and url.endswith(".ics")
    return url[len("http://localhost") :]


def _parse(response) -> Calendar:
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    return Calendar.from_ical(response.get_data())


@pytest.fixture
def su_held(world):
    """volunteer_a's shifts: two ahead (one cancelled with the place still held), one 10 and one
    40 days ago, one the community cancelled while they held it, and some that are not theirs to
    show (waitlisted, given back, given back before it was cancelled, someone else's)."""
    a, person = world.a, world.a.volunteer.person
    shifts = {
        "ahead": su_make_shift(
            a,
            title="周五夜巡",
            meeting_point="小区东门",
            route=[
                {"building_id": a.building.id, "label": ""},
                {"building_id": None, "label": "北门"},
            ],
            notes="穿好反光背心",
            starts_in=timedelta(days=3),
        ),
        "called_off": su_make_shift(
            a, title="暴雨取消", status="cancelled", starts_in=timedelta(days=4)
        ),
        "recent": su_make_shift(a, title="十天前", starts_in=timedelta(days=-10)),
        "old": su_make_shift(a, title="四十天前", starts_in=timedelta(days=-40)),
        "waiting": su_make_shift(a, title="候补的班", capacity=1, starts_in=timedelta(days=5)),
        "given_back": su_make_shift(a, title="退掉的班"),
        "others": su_make_shift(a, title="别人的班"),
        "cancelled_while_held": su_make_shift(a, title="社区取消", status="cancelled"),
        "left_then_cancelled": su_make_shift(a, title="先退后取消", status="cancelled"),
    }
    for key in ("ahead", "called_off", "recent", "old"):
        su_hold(shifts[key], person)
    su_hold(shifts["waiting"], su_make_volunteer(a).person)
    su_hold(shifts["waiting"], person, "waitlisted")
    su_hold(shifts["given_back"], person, "cancelled")
    su_hold(shifts["others"], su_make_volunteer(a).person)
    # Cancelled by the community while held: the place was released and the holder told.
    su_hold(shifts["cancelled_while_held"], person, "cancelled", cancelled_at=now_utc())
    _told_cancelled(world.a.volunteer, shifts["cancelled_while_held"])
    # Given back first, and the community cancelled it later: nothing to show.
    su_hold(shifts["left_then_cancelled"], person, "cancelled", cancelled_at=now_utc())
    _told_cancelled(su_make_volunteer(a), shifts["left_then_cancelled"])
    return shifts


def _told_cancelled(user, shift) -> None:
    notify(
        user.id,
        "shift_cancelled",
        dedupe_key=f"shift_cancelled:shift:{shift.id}",
        params={"title": shift.title, "when": "2026-12-01 19:00"},
    )
    db.session.commit()


def test_feed_lists_the_shifts_held(app, client, auth, world, su_held):
    auth.login("volunteer_a")
    page = client.get("/my/shifts").get_data(as_text=True)
    path = _feed_path(page)
    auth.logout()  # the feed is read by a calendar app, without a session
    response = client.get(path)
    calendar = _parse(response)
    raw = response.get_data(as_text=True)
    assert "\r\n" in raw
    assert calendar["VERSION"] == "2.0" and calendar["PRODID"]

    zones = calendar.walk("VTIMEZONE")
    assert [str(z["TZID"]) for z in zones] == ["Asia/Shanghai"]

    events = {str(e["UID"]): e for e in calendar.walk("VEVENT")}
    ids = {key: shift.id for key, shift in su_held.items()}
    shown = ("ahead", "called_off", "recent", "cancelled_while_held")
    assert set(events) == {f"shift-{ids[k]}@tongxin" for k in shown}

    ahead = events[f"shift-{ids['ahead']}@tongxin"]
    shift = su_held["ahead"]
    assert ahead["DTSTART"].params["TZID"] == "Asia/Shanghai"
    assert ahead["DTEND"].params["TZID"] == "Asia/Shanghai"
    start, end = ahead.decoded("DTSTART"), ahead.decoded("DTEND")
    assert start == shift.starts_at.replace(microsecond=0)
    assert end == shift.ends_at.replace(microsecond=0)
    assert start.utcoffset() == timedelta(hours=8)
    local = shift.starts_at.astimezone(LOCAL_TZ)
    assert f"DTSTART;TZID=Asia/Shanghai:{local.strftime('%Y%m%dT%H%M%S')}" in raw
    assert ahead.decoded("DTSTAMP").utcoffset() == timedelta(0)
    assert str(ahead["SUMMARY"]) == "周五夜巡"
    assert str(ahead["LOCATION"]) == "小区东门"
    assert str(ahead["URL"]) == f"http://localhost/shifts/{shift.id}"
    assert str(ahead["STATUS"]) == "CONFIRMED"
    description = str(ahead["DESCRIPTION"])
    assert "1号楼 → 北门" in description and "穿好反光背心" in description
    assert world.a.grid.name in description

    assert str(events[f"shift-{ids['called_off']}@tongxin"]["STATUS"]) == "CANCELLED"
    assert str(events[f"shift-{ids['cancelled_while_held']}@tongxin"]["STATUS"]) == "CANCELLED"


def test_feed_is_not_cached_publicly_and_not_indexed(client, auth, world, su_held):
    auth.login("volunteer_a")
    path = _feed_path(client.get("/my/shifts").get_data(as_text=True))
    auth.logout()
    response = client.get(path)
    assert "public" not in response.headers.get("Cache-Control", "")
    assert response.headers["X-Robots-Tag"] == "noindex"


def test_token_is_made_on_the_first_visit_and_kept(client, auth, world):
    user = world.a.volunteer
    assert _token(user.id) is None
    auth.login("volunteer_a")
    first = _feed_path(client.get("/my/shifts").get_data(as_text=True))
    token = _token(user.id)
    assert token and len(token) >= 32 and first == f"/calendar/{token}.ics"
    again = _feed_path(client.get("/my/shifts").get_data(as_text=True))
    assert again == first and _token(user.id) == token


def test_reset_makes_a_new_address_and_the_old_one_stops(client, auth, world, su_held, su_english):
    auth.login("volunteer_a")
    old = _feed_path(client.get("/my/shifts").get_data(as_text=True))
    assert client.get(old).status_code == 200
    response = client.post("/my/calendar/reset")
    assert response.status_code == 303
    assert response.headers["Location"] == "/my/shifts#calendar"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Your calendar has a new address." in page
    new = _feed_path(page)
    assert new != old
    assert client.get(old).status_code == 404
    assert len(_parse(client.get(new)).walk("VEVENT")) == 4


@pytest.mark.parametrize("token", ["nonsense", "x" * 32, "%00"])
def test_unknown_token_is_not_found(client, world, token):
    assert client.get(f"/calendar/{token}.ics").status_code == 404


def test_an_inactive_account_has_no_feed(client, auth, world):
    auth.login("volunteer_a")
    path = _feed_path(client.get("/my/shifts").get_data(as_text=True))
    world.a.volunteer.active = False
    db.session.commit()
    assert client.get(path).status_code == 404


def test_single_shift_download(client, auth, world, su_held):
    shift = su_held["ahead"]
    auth.login("resident_a")  # anyone who may see the shift
    response = client.get(f"/shifts/{shift.id}.ics")
    calendar = _parse(response)
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="shift-{shift.id}.ics"'
    )
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert [str(z["TZID"]) for z in calendar.walk("VTIMEZONE")] == ["Asia/Shanghai"]
    (event,) = calendar.walk("VEVENT")
    assert str(event["UID"]) == f"shift-{shift.id}@tongxin"
    assert event.decoded("DTSTART") == shift.starts_at.replace(microsecond=0)
    assert event["DTSTART"].params["TZID"] == "Asia/Shanghai"


def test_single_cancelled_shift_download_says_so(client, auth, world, su_held):
    auth.login("volunteer_a")
    calendar = _parse(client.get(f"/shifts/{su_held['called_off'].id}.ics"))
    (event,) = calendar.walk("VEVENT")
    assert str(event["STATUS"]) == "CANCELLED"
