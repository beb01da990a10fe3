"""Fast date and number filters for templates.

Flask-Babel's filters look up the locale and the time zone and parse the pattern on every call;
a list page calls them a hundred times. Numeric patterns (``yyyy-MM-dd HH:mm``, ``HH:mm``...)
read the same in every language the portal speaks, so they are compiled once to a ``strftime``
format and applied to the time converted to the portal's zone. Anything locale-dependent
(``EEE``, ``MMM``, ``long``...) still goes through Babel. Numbers: both languages group
thousands with "," and use "." for decimals, as Babel's default decimal pattern ``#,##0.###``.
tests/test_formatting.py checks both paths against Babel for every pattern the templates use.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import lru_cache
from zoneinfo import ZoneInfo

import flask_babel
from flask import Flask

_TOKENS = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
_TOKEN_RE = re.compile(r"yyyy|MM|dd|HH|mm|ss|[^A-Za-z']")
_THOUSANDTH = Decimal("0.001")


@lru_cache(maxsize=128)
def strftime_pattern(pattern: str | None) -> str | None:
    """The ``strftime`` equivalent of a purely numeric CLDR pattern, or None."""
    if not pattern:
        return None
    out: list[str] = []
    position = 0
    for match in _TOKEN_RE.finditer(pattern):
        if match.start() != position:
            return None
        token = match.group()
        out.append(_TOKENS.get(token, token.replace("%", "%%")))
        position = match.end()
    return "".join(out) if position == len(pattern) else None


class Formatter:
    """The template filters, bound to the portal's display time zone."""

    def __init__(self, zone: str) -> None:
        self.zone = ZoneInfo(zone)

    def _local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:  # stored times are UTC (SQLite returns them naive)
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self.zone)

    def datetimeformat(self, value: datetime | None = None, format: str | None = None) -> str:
        fmt = strftime_pattern(format)
        if fmt is None or not isinstance(value, datetime):
            return flask_babel.format_datetime(value, format)
        return self._local(value).strftime(fmt)

    def dateformat(self, value: date | datetime | None = None, format: str | None = None) -> str:
        fmt = strftime_pattern(format)
        if fmt is None or value is None:
            return flask_babel.format_date(value, format)
        if isinstance(value, datetime):
            value = self._local(value)
        return value.strftime(fmt)

    def timeformat(self, value: time | datetime | None = None, format: str | None = None) -> str:
        fmt = strftime_pattern(format)
        if fmt is None or value is None:
            return flask_babel.format_time(value, format)
        if isinstance(value, datetime):
            value = self._local(value)
        return value.strftime(fmt)


def decimalformat(value: int | float | Decimal | None) -> str:
    """Babel's ``#,##0.###`` (half-even rounding) for zh and en, without the locale lookup."""
    if value is None or isinstance(value, bool):
        return flask_babel.format_decimal(value)
    try:
        number = Decimal(value) if not isinstance(value, float) else Decimal(repr(value))
        number = number.quantize(_THOUSANDTH, rounding=ROUND_HALF_EVEN)
    except (InvalidOperation, ValueError, TypeError):
        return flask_babel.format_decimal(value)
    text = f"{number:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def init_app(app: Flask) -> None:
    formatter = Formatter(app.config.get("BABEL_DEFAULT_TIMEZONE", "UTC"))
    app.jinja_env.filters.update(
        datetimeformat=formatter.datetimeformat,
        dateformat=formatter.dateformat,
        timeformat=formatter.timeformat,
        decimalformat=decimalformat,
    )
