"""The one place that decides between a full page and an htmx fragment."""

from __future__ import annotations

from typing import Any

from flask import Response, g, make_response, render_template, request

# Request headers an answer may depend on; any helper below that reads one marks the answer
# (``Vary``), so a cache or htmx's history never serves a fragment where a page was asked for.
HX_HEADERS = ("HX-Request", "HX-Boosted", "HX-History-Restore-Request")


def _consulted(*headers: str) -> None:
    varies = g.setdefault("_hx_vary", set())
    varies.update(headers)


def is_htmx() -> bool:
    _consulted("HX-Request")
    return request.headers.get("HX-Request") == "true"


def is_boosted() -> bool:
    _consulted("HX-Request", "HX-Boosted")
    return request.headers.get("HX-Boosted") == "true"


def wants_fragment() -> bool:
    """A fragment only for a plain htmx request: not boosted, not a history restore."""
    _consulted(*HX_HEADERS)
    return (
        is_htmx()
        and not is_boosted()
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def add_vary(response: Response) -> Response:
    """Name in ``Vary`` every htmx header this request's answer was chosen by."""
    for header in HX_HEADERS:
        if header in g.get("_hx_vary", ()):
            response.vary.add(header)
    return response


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
    response.vary.update(HX_HEADERS)
    if trigger and is_htmx():
        response.headers["HX-Trigger"] = trigger
    return response


def hx_redirect(location: str) -> Response:
    """Tell htmx to navigate the whole page (used when a session expired mid-widget)."""
    response = make_response("", 200)
    response.headers["HX-Redirect"] = location
    return response
