"""The fast template filters print exactly what Flask-Babel prints, in both languages."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path

import flask_babel
import pytest
from flask_babel import force_locale

from portal.core.formatting import decimalformat, strftime_pattern

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
PATTERNS = sorted(
    {
        m.group(1)
        for path in TEMPLATES.rglob("*.html")
        for m in re.finditer(
            r"\|(?:datetimeformat|dateformat|timeformat)\(['\"]([^'\"]*)['\"]\)",
            path.read_text(encoding="utf-8"),
        )
    }
)
MOMENTS = [
    datetime(2026, 11, 30, 16, 5, 9, tzinfo=UTC),  # next day in Shanghai
    datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
    datetime(2026, 6, 15, 23, 59, 59),  # naive = UTC, as SQLite returns it
]


def test_the_templates_use_patterns_that_are_checked_here():
    assert "yyyy-MM-dd HH:mm" in PATTERNS and "HH:mm" in PATTERNS
    assert strftime_pattern("yyyy-MM-dd HH:mm") == "%Y-%m-%d %H:%M"
    assert strftime_pattern("EEE M/d") is None and strftime_pattern("long") is None


@pytest.mark.parametrize("lang", ["zh_Hans_CN", "en"])
def test_date_filters_match_flask_babel(app, lang):
    env = app.jinja_env
    with app.test_request_context(), force_locale(lang):
        for pattern in PATTERNS:
            for moment in MOMENTS:
                assert env.filters["datetimeformat"](moment, pattern) == (
                    flask_babel.format_datetime(moment, pattern)
                ), pattern
                if "H" in pattern or "m" in pattern:
                    continue  # a time of day: Babel's format_date refuses it too
                assert env.filters["dateformat"](moment, pattern) == (
                    flask_babel.format_date(moment, pattern)
                ), pattern
                day = moment.date()
                assert env.filters["dateformat"](day, pattern) == (
                    flask_babel.format_date(day, pattern)
                ), pattern
            if set(pattern) <= set("Hms: "):
                for moment in MOMENTS:
                    assert env.filters["timeformat"](moment, pattern) == (
                        flask_babel.format_time(moment, pattern)
                    )
                assert env.filters["timeformat"](time(7, 5), pattern) == (
                    flask_babel.format_time(time(7, 5), pattern)
                )
        assert env.filters["dateformat"](date(2026, 3, 4), "long") == flask_babel.format_date(
            date(2026, 3, 4), "long"
        )


@pytest.mark.parametrize("lang", ["zh_Hans_CN", "en"])
def test_decimalformat_matches_flask_babel(app, lang):
    values = [0, 1, 7, 1234, 1234567, -3, Decimal("2.50"), Decimal("0.125"), Decimal("0.135"),
              Decimal("1234.5678"), Decimal("-0.0001"), 2.5, 0.1 + 0.2, Decimal("12")]  # fmt: skip
    with app.test_request_context(), force_locale(lang):
        for value in values:
            assert decimalformat(value) == flask_babel.format_decimal(value), value
