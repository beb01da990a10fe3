"""Local time (Asia/Shanghai) for input and display; the database keeps UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
# How far ahead a person may schedule something (a shift, a series, household help, a reward's
# availability): far enough for any real plan, near enough that a typo (2062, 9999) is caught.
SCHEDULE_YEARS_AHEAD = 2


def now_utc() -> datetime:
    return datetime.now(UTC)


def local_today() -> date:
    return datetime.now(LOCAL_TZ).date()


def to_local(moment: datetime) -> datetime:
    """An aware UTC datetime as Asia/Shanghai wall-clock time."""
    return moment.astimezone(LOCAL_TZ)


def local_to_utc(day: date, at: time) -> datetime:
    """A local date and wall-clock time as an aware UTC datetime."""
    return datetime.combine(day, at, tzinfo=LOCAL_TZ).astimezone(UTC)


def latest_schedulable(today: date) -> date:
    """The last date anything may be scheduled on: two years after ``today`` (a 29 February
    gives 28 February)."""
    year = today.year + SCHEDULE_YEARS_AHEAD
    try:
        return today.replace(year=year)
    except ValueError:
        return today.replace(year=year, day=28)
