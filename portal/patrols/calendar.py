"""iCalendar (RFC 5545): a volunteer's secret feed of their shifts, and one shift as a file.

Times are written as Asia/Shanghai wall-clock time (DTSTART;TZID=Asia/Shanghai) with the
matching VTIMEZONE, so that calendars show the same time as the portal wherever the phone is.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from flask_babel import gettext as _
from icalendar import Calendar, Event, Timezone
from sqlalchemy import String, and_, cast, exists, literal, or_, select, update
from sqlalchemy.orm import joinedload

from portal.auth.models import User
from portal.core.labels import label
from portal.core.timeutil import LOCAL_TZ, now_utc, to_local
from portal.core.urls import external_url
from portal.extensions import db
from portal.notifications.models import Notification
from portal.patrols.models import Shift, Signup
from portal.patrols.signups import Stop, routes_of

PRODID = "-//Tongxin//Shifts//ZH"
PAST_DAYS = 30  # the feed keeps a month of past shifts, then lets them go
FEED_LIMIT = 500
# China has kept UTC+8 without summer time since 1992: one STANDARD block describes it.
TZ_FIRST = date(1992, 1, 1)
TZ_LAST = date(2100, 1, 1)


def new_calendar_token() -> str:
    return secrets.token_urlsafe(24)


def ensure_calendar_token(user_id: int) -> str:
    """The user's feed token, made on first use (only if none was made meanwhile)."""
    db.session.execute(
        update(User)
        .where(User.id == user_id, User.calendar_token.is_(None))
        .values(calendar_token=new_calendar_token())
        .execution_options(synchronize_session=False)
    )
    return db.session.scalar(select(User.calendar_token).where(User.id == user_id))


def reset_calendar_token(user_id: int) -> str:
    """A new feed token: the old feed address stops working at once."""
    token = new_calendar_token()
    db.session.execute(
        update(User)
        .where(User.id == user_id)
        .values(calendar_token=token)
        .execution_options(synchronize_session=False)
    )
    return token


def user_by_token(token: str) -> User | None:
    """The active account whose feed this is; None for an unknown or reset token."""
    if not token or len(token) < 16:
        return None
    return db.session.scalar(
        select(User).where(User.calendar_token == token, User.active.is_(True))
    )


def feed_shifts(user: User, now: datetime | None = None) -> list[Shift]:
    """Shifts the user holds a place on, the last month and everything ahead; and shifts the
    community cancelled while they held a place (they were told so), to show as cancelled."""
    now = now or now_utc()
    told_cancelled = exists().where(
        Notification.user_id == user.id,
        Notification.kind == "shift_cancelled",
        Notification.dedupe_key == literal("shift_cancelled:shift:") + cast(Shift.id, String),
    )
    return list(
        db.session.scalars(
            select(Shift)
            .join(Signup, Signup.shift_id == Shift.id)
            .options(joinedload(Shift.grid))
            .where(
                Signup.person_id == user.person_id,
                Shift.starts_at >= now - timedelta(days=PAST_DAYS),
                or_(
                    Signup.status == "confirmed",
                    and_(Shift.status == "cancelled", told_cancelled),
                ),
            )
            .order_by(Shift.starts_at, Shift.id)
            .limit(FEED_LIMIT)
        )
    )


def _description(shift: Shift, stops: list[Stop]) -> str:
    lines = [label("shift_kind", shift.kind), _("Grid: %(grid)s", grid=shift.grid.name)]
    if stops:
        lines.append(_("Route: %(stops)s", stops=" → ".join(stop.name for stop in stops)))
    if shift.notes:
        lines.append(shift.notes)
    if shift.status == "cancelled":
        lines.insert(0, _("This shift was cancelled."))
    return "\n".join(lines)


def shift_event(shift: Shift, now: datetime, stops: list[Stop]) -> Event:
    """One VEVENT: stable UID, local times with TZID, and a link back to the shift's page."""
    event = Event()
    event.add("uid", f"shift-{shift.id}@tongxin")
    event.add("dtstamp", now)
    event.add("dtstart", to_local(shift.starts_at))
    event.add("dtend", to_local(shift.ends_at))
    event.add("last-modified", shift.updated_at)
    event.add("summary", shift.title)
    if shift.meeting_point:
        event.add("location", shift.meeting_point)
    event.add("description", _description(shift, stops))
    event.add("url", external_url("shifts.detail", shift_id=shift.id))
    event.add("status", "CANCELLED" if shift.status == "cancelled" else "CONFIRMED")
    return event


def build_calendar(shifts: Iterable[Shift], *, name: str, method: str | None = None) -> bytes:
    """A VCALENDAR with the Asia/Shanghai VTIMEZONE and one VEVENT per shift."""
    now = now_utc()
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if method:
        calendar.add("method", method)
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", LOCAL_TZ.key)
    calendar.add_component(
        Timezone.from_tzinfo(LOCAL_TZ, tzid=LOCAL_TZ.key, first_date=TZ_FIRST, last_date=TZ_LAST)
    )
    shifts = list(shifts)
    routes = routes_of(shifts)
    for shift in shifts:
        calendar.add_component(shift_event(shift, now, routes[shift.id]))
    return calendar.to_ical()
