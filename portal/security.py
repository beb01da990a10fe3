"""Response headers that every answer carries, and the safe-redirect check."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, abort, request
from flask_login import current_user

from portal.htmx import add_vary

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'self'; "
    "object-src 'none'; frame-ancestors 'none'"
)


def is_safe_next(target: str | None) -> bool:
    """Only a path on this site: no scheme, no host, no protocol-relative or backslash trick."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ord(c) < 32 for c in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


MAX_PAGE = 100_000


def _no_store(response: Response) -> str:
    """``no-store``, keeping a view's stricter wording (``private, no-store``) as it is."""
    current = response.headers.get("Cache-Control", "")
    return current if "no-store" in current else "no-store"


def init_app(app: Flask) -> None:
    @app.before_request
    def _sane_page_numbers():
        # A page number past any real list (or past a 64-bit OFFSET) is simply not found.
        for name, value in request.args.items(multi=True):
            paged = name.endswith("page") or name == "past"
            if paged and value.isdigit() and int(value) > MAX_PAGE:
                abort(404)

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        if app.config.get("SESSION_COOKIE_SECURE") or app.config.get("PRODUCTION"):
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        add_vary(response)
        if request.endpoint == "static":
            # The app's own CSS, script and icons: the same for everyone, revalidated by ETag.
            return response
        if current_user and current_user.is_authenticated:
            response.headers["Cache-Control"] = _no_store(response)
        else:
            # Anonymous pages carry the session's CSRF token: never for a shared cache either.
            # A view that chose its own caching (the secret calendar feed) keeps it.
            response.headers.setdefault("Cache-Control", "no-store")
        return response
