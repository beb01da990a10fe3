"""Local time (Asia/Shanghai) for input and display; the database keeps UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


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
