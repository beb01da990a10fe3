"""``url_for_id`` (portal/core/urls.py) builds exactly what url_for builds, also under a script
root, and hands anything it cannot vouch for to url_for."""

from __future__ import annotations

import pytest
from flask import url_for

from portal.core.urls import url_for_id

CASES = [
    ("help.detail", "request_id", {}),
    ("handling.act", "request_id", {"action": "accept"}),
    ("handling.act", "request_id", {"action": "reject"}),
    ("handling.dispatch", "request_id", {}),
    ("shifts.detail", "shift_id", {}),
    ("shifts.detail", "shift_id", {"next": "/a b?c=1&d=9182736450"}),  # a query string too
    ("volunteers.detail", "volunteer_id", {}),
]


@pytest.mark.parametrize("script_root", ["", "/tongxin", "/x918273645"])
def test_same_urls_as_url_for(app, script_root):
    with app.test_request_context("/", environ_overrides={"SCRIPT_NAME": script_root}):
        for endpoint, key, values in CASES:
            for ident in (1, 7, 10, 918273645, 12345678901234):
                expected = url_for(endpoint, **{key: ident}, **values)
                assert url_for_id(endpoint, key, ident, **values) == expected
                assert expected.startswith(script_root + "/")


def test_what_it_cannot_vouch_for_goes_to_url_for(app):
    with app.test_request_context("/"):
        external = url_for_id("help.detail", "request_id", 5, _external=True)
        assert external == url_for("help.detail", request_id=5, _external=True)
        assert external.startswith("http")
        anchor = url_for_id("help.detail", "request_id", 5, _anchor="top")
        assert anchor == url_for("help.detail", request_id=5, _anchor="top")
        listed = url_for_id("shifts.detail", "shift_id", 3, tag=["a", "b"])
        assert listed == url_for("shifts.detail", shift_id=3, tag=["a", "b"])
        with pytest.raises(Exception):  # noqa: B017 (whatever url_for raises for it)
            url_for_id("help.detail", "request_id", "x")
        with pytest.raises(Exception):  # noqa: B017
            url_for("help.detail", request_id="x")
    # Patterns belong to one request: the next one builds its own (a new script root).
    with app.test_request_context("/", environ_overrides={"SCRIPT_NAME": "/other"}):
        built = url_for_id("help.detail", "request_id", 5)
        assert built == url_for("help.detail", request_id=5) and built.startswith("/other/")
