"""``url_for_id``: the links of a list's rows, built once per request and endpoint instead of
once per row (url_for costs about 7 us; the grid worker's queue makes 100 of them).

``external_url``: every absolute URL of the portal (QR codes, calendar feeds, Open311, the
certificate's verification link), built on the configured ``PUBLIC_URL`` and never on the
request's Host header, which a client chooses: pages are shared through the page cache, and one
forged Host must not put its address into what others are shown."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from flask import Flask, current_app, has_request_context, request, url_for
from flask.globals import _cv_request
from werkzeug.exceptions import SecurityError
from werkzeug.routing import MapAdapter

# Two numbers that no other part of a URL of this app holds; the second one, short, shows a
# converter that pads or otherwise rewrites a number (such a URL is then built by url_for).
_MARKS = (918_273_645, 7)


def _pattern(endpoint: str, key: str, values: dict[str, Any]) -> tuple[str, str] | None:
    """(head, tail) such that url_for(endpoint, **{key: n}, **values) == head + str(n) + tail
    for both marks, or None when the URL is not built that way or may not be (a relative
    endpoint, url_for's own options such as ``_external``, values other than str and int)."""
    if endpoint.startswith(".") or any(
        name.startswith("_") or type(value) not in (str, int) for name, value in values.items()
    ):
        return None
    first = url_for(endpoint, **{key: _MARKS[0]}, **values)
    head, found, tail = first.partition(str(_MARKS[0]))
    if not found or str(_MARKS[0]) in tail:
        return None
    if url_for(endpoint, **{key: _MARKS[1]}, **values) != f"{head}{_MARKS[1]}{tail}":
        return None
    return head, tail


def url_for_id(endpoint: str, key: str, ident: int, **values: Any) -> str:
    """``url_for(endpoint, **{key: ident}, **values)`` for a row's id: the same URL, built by
    url_for once per request for the endpoint and values, with the id put in its place per row.
    Anything else goes to url_for: an id that is not a positive int, a relative endpoint,
    url_for's own options (``_external``...) or values other than str and int, no request,
    and a URL that url_for does not build by writing the number as it is (checked with two
    numbers)."""
    # The patterns live on the request's own context (read without the LocalProxy): a
    # relative URL depends on the request (its script root), and g may outlive one request.
    ctx = _cv_request.get(None)
    if ctx is None or type(ident) is not int or ident < 1:
        return url_for(endpoint, **{key: ident}, **values)
    patterns = ctx.__dict__.setdefault("tongxin_url_patterns", {})
    cache_key = (endpoint, key, *sorted(values.items())) if values else (endpoint, key)
    try:
        pattern = patterns[cache_key]
    except KeyError:
        pattern = patterns[cache_key] = _pattern(endpoint, key, values)
    except TypeError:  # a value that cannot be a dictionary key (a list...)
        pattern = None
    if pattern is None:
        return url_for(endpoint, **{key: ident}, **values)
    return f"{pattern[0]}{ident}{pattern[1]}"


def _public_adapter(app: Flask) -> MapAdapter:
    """The URL map bound to PUBLIC_URL's scheme, host and path (kept while PUBLIC_URL is)."""
    public = app.config["PUBLIC_URL"]
    cached = app.extensions.get("tongxin_public_adapter")
    if cached is None or cached[0] != public:
        parts = urlsplit(public)
        adapter = app.url_map.bind(
            parts.netloc, script_name=parts.path.rstrip("/") or "/", url_scheme=parts.scheme
        )
        cached = app.extensions["tongxin_public_adapter"] = (public, adapter)
    return cached[1]


def external_url(endpoint: str, **values: Any) -> str:
    """``url_for(endpoint, **values, _external=True)``, but on PUBLIC_URL (its scheme, host and
    path prefix) whatever Host, X-Forwarded-Host or script root the request came with; works
    outside a request too. ``_anchor`` is kept; url_for's other options are refused."""
    app = current_app._get_current_object()
    if endpoint.startswith("."):
        blueprint = request.blueprint if has_request_context() else None
        endpoint = f"{blueprint}{endpoint}" if blueprint else endpoint[1:]
    anchor = values.pop("_anchor", None)
    options = [name for name in values if name.startswith("_")]
    if options:
        raise TypeError(f"external_url does not take {', '.join(options)}")
    app.inject_url_defaults(endpoint, values)
    url = _public_adapter(app).build(endpoint, values, force_external=True)
    if anchor is not None:
        url += "#" + quote(anchor, safe="%!#$&'()*+,/:;=?@")
    return url


def _refuse_untrusted_host() -> None:
    # Flask checks TRUSTED_HOSTS while routing but leaves the error for the view: raise it before
    # any other hook reads the session, the user or the database for such a request.
    if isinstance(request.routing_exception, SecurityError):
        raise request.routing_exception


def init_app(app: Flask) -> None:
    app.jinja_env.globals["url_for_id"] = url_for_id
    app.jinja_env.globals["external_url"] = external_url
    app.before_request_funcs.setdefault(None, []).insert(0, _refuse_untrusted_host)
