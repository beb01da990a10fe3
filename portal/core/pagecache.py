"""Rendered pages kept per worker, invalidated by the database's data stamps.

The most used pages (issue 6) cost 3-9 ms of rendering each; most views of them show exactly
what the last view showed. ``@cached_page`` keeps a page's rendered answer in the worker's memory
under a key made of everything the answer depends on:

- the URL with its query string, and the htmx headers that choose page or fragment;
- the signed-in user (a page is never shared between two people: roles, masking, "you" rows)
  and the language of the answer;
- the **data stamp** of the page's community (portal/core/stamps.py): a counter that database
  triggers move, in the writing transaction, on every write of a row of that community. The
  stamp is read in the request's first query (with the user), before any of the page's data,
  so a page stored under a stamp never shows less than that stamp's data, and any committed
  write makes every earlier page of its community unreachable;
- the current minute: pages say "in 20 minutes" and show buttons by the clock (check-in opens,
  sign-up closes), so nothing is served for longer than a minute even when nothing was written.

An answer is stored only when it is a plain 200, set no cookie, wrote nothing to the database,
and changed nothing in the session but the CSRF token; a request with a flash message waiting
is never answered from the cache (the message must show and go). The page's CSRF token is
swapped for a placeholder when stored and for the asking session's own token when served.
An answer of at least GZIP_MIN_BYTES without a token (Open311's JSON and XML lists) is also
kept gzipped, compressed once when stored, and served so to clients that accept gzip.

``X-Page-Cache`` says ``hit`` or ``miss`` (stored) on the views that use the cache; the load
benchmark counts it. ``PAGE_CACHE_BYTES`` bounds the memory per worker (least recently used
pages go first); 0 turns the cache off.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from cachetools import LRUCache
from flask import Flask, Response, current_app, g, has_request_context, make_response, request
from flask import session as flask_session
from flask_babel import get_locale
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from sqlalchemy import event

from portal.htmx import HX_HEADERS

HEADER = "X-Page-Cache"
# Answers at least this large and without a CSRF token are also kept gzipped.
GZIP_MIN_BYTES = 4096
PLACEHOLDER = "\x1ftongxin-csrf-token\x1f"
# Response headers never kept: the cookie is the asker's own, the length is recomputed.
_NOT_KEPT = frozenset({"set-cookie", "content-length"})
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")

# (community id, data stamp) of a page, or None: do not cache this answer.
Scope = tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class _Page:
    body: bytes
    mimetype: str
    headers: tuple[tuple[str, str], ...]
    csrf: bool
    vary: frozenset[str]
    gzipped: bytes | None = None  # the body compressed once, for clients that accept gzip

    def answer(self) -> Response:
        body = self.body
        if self.csrf:
            body = body.replace(PLACEHOLDER.encode(), generate_csrf().encode())
        compressed = self.gzipped is not None and request.accept_encodings["gzip"] > 0
        response = Response(self.gzipped if compressed else body, mimetype=self.mimetype)
        for name, value in self.headers:
            response.headers.add(name, value)
        if compressed:
            response.headers["Content-Encoding"] = "gzip"
        if self.gzipped is not None:
            response.vary.add("Accept-Encoding")
        g.setdefault("_hx_vary", set()).update(self.vary)
        return response

    @property
    def size(self) -> int:
        return len(self.body) + len(self.gzipped or b"")


class PageCache:
    """A byte-bounded LRU of rendered pages, safe for threaded workers."""

    def __init__(self, max_bytes: int) -> None:
        self._pages: LRUCache = LRUCache(maxsize=max_bytes, getsizeof=lambda page: page.size)
        self._lock = threading.Lock()
        self.max_bytes = max_bytes

    def get(self, key: tuple) -> _Page | None:
        with self._lock:
            return self._pages.get(key)

    def put(self, key: tuple, page: _Page) -> None:
        if page.size > self.max_bytes // 8:
            return  # one huge answer must not push out hundreds of pages
        with self._lock:
            self._pages[key] = page

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()

    def __len__(self) -> int:
        return len(self._pages)


def user_scope() -> Scope:
    """The signed-in user's community and the stamp read with the user (portal/auth/session.py).
    Accounts above one community (a subdistrict's) are not cached."""
    if not current_user.is_authenticated or current_user.community_id is None:
        return None
    stamp = g.get("community_stamp")
    if stamp is None or stamp[0] != current_user.community_id:
        return None
    return stamp


def _session_state() -> dict:
    return {k: v for k, v in flask_session.items() if k != "csrf_token"}


def current_minute() -> int:
    """The minute a page is kept for (minutes since the epoch)."""
    return int(time.time() // 60)


def _key(scope: tuple[int, int]) -> tuple:
    user_id = current_user.id if current_user.is_authenticated else None
    return (
        request.full_path,
        *(request.headers.get(name) for name in HX_HEADERS),
        user_id,
        str(get_locale()),
        scope,
        current_minute(),
    )


def _storable(response: Response, session_before: dict) -> bool:
    return (
        response.status_code == 200
        and not response.is_streamed
        and not response.direct_passthrough
        and "Set-Cookie" not in response.headers
        and not g.get("_page_cache_wrote")
        and "_flashes" not in flask_session
        and _session_state() == session_before
    )


def _page_of(response: Response) -> _Page:
    body = response.get_data()
    token = g.get(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"))
    csrf = False
    if token and token.encode() in body:
        body = body.replace(token.encode(), PLACEHOLDER.encode())
        csrf = True
    headers = tuple(
        (name, value) for name, value in response.headers.items() if name.lower() not in _NOT_KEPT
    )
    # A large answer without a CSRF token (an Open311 list: up to 1,000 requests, ~300 KB) is
    # also kept compressed: compressing it once per render, not per answer, is what makes
    # serving it gzipped cheap (an HTML page carries the session's token and is sent as it is).
    gzipped = None
    if not csrf and len(body) >= GZIP_MIN_BYTES:
        gzipped = gzip.compress(body, compresslevel=6, mtime=0)
    return _Page(body, response.mimetype, headers, csrf, frozenset(g.get("_hx_vary", ())), gzipped)


def cached_page(scope: Callable[[], Scope] = user_scope) -> Callable:
    """Answer a GET view from the page cache when its key is there; store the answer if it may be.

    ``scope`` gives the page's (community id, data stamp), or None when this answer must not be
    cached (default: the signed-in user's community)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            cache: PageCache | None = current_app.extensions.get("page_cache")
            if cache is None or request.method != "GET" or "_flashes" in flask_session:
                return view(*args, **kwargs)
            where = scope()
            if where is None:
                return view(*args, **kwargs)
            key = _key(where)
            page = cache.get(key)
            if page is not None:
                response = page.answer()
                response.headers[HEADER] = "hit"
                return response
            session_before = _session_state()
            g._page_cache_wrote = False
            response = make_response(view(*args, **kwargs))
            if _storable(response, session_before):
                page = _page_of(response)
                cache.put(key, page)
                response.headers[HEADER] = "miss"
                if page.gzipped is not None:
                    response.vary.add("Accept-Encoding")
            return response

        return wrapper

    return decorator


def _note_writes(conn, cursor, statement: str, parameters, context, executemany) -> None:  # noqa: ANN001
    if has_request_context() and statement.lstrip()[:6].upper() in _WRITES:
        g._page_cache_wrote = True


def init_app(app: Flask) -> None:
    """The worker's page cache (``PAGE_CACHE_BYTES``; 0: none) and the write detector."""
    max_bytes = int(app.config.get("PAGE_CACHE_BYTES", 0))
    if max_bytes <= 0:
        return
    app.extensions["page_cache"] = PageCache(max_bytes)
    from portal.extensions import db

    with app.app_context():
        # On this app's engine only (a test process holds many apps).
        event.listen(db.engine, "before_cursor_execute", _note_writes)
