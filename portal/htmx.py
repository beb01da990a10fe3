"""The one place that decides between a full page and an htmx fragment."""

from __future__ import annotations

from typing import Any

from flask import Response, make_response, render_template, request


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def is_boosted() -> bool:
    return request.headers.get("HX-Boosted") == "true"


def wants_fragment() -> bool:
    """A fragment only for a plain htmx request: not boosted, not a history restore."""
    return (
        is_htmx()
        and not is_boosted()
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def render(
    page: str,
    fragment: str | None = None,
    *,
    status: int = 200,
    trigger: str | None = None,
    **context: Any,
) -> Response:
    """Render ``page``, or only ``fragment`` for an htmx request; mark the answer as varying."""
    template = fragment if fragment and wants_fragment() else page
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    if trigger and is_htmx():
        response.headers["HX-Trigger"] = trigger
    return response


def hx_redirect(location: str) -> Response:
    """Tell htmx to navigate the whole page (used when a session expired mid-widget)."""
    response = make_response("", 200)
    response.headers["HX-Redirect"] = location
    return response
