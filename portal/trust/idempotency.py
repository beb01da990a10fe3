"""Idempotent writes: a signed-in user's POST with an ``Idempotency-Key`` header happens once.

The key row is inserted before the view runs, in the request's own transaction, so it commits
with the write or not at all (views commit once). After the view the answer (status, Location
or HX-Redirect) is recorded; a retry with the same key gets that answer back and writes nothing,
or 409 "already done" when the first answer was never recorded (the worker died in between).
The same key on another path answers 422. Keys expire after 24 hours.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Flask, Response, g, has_request_context, make_response, render_template, request
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import delete, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.database import utcnow
from portal.extensions import db
from portal.htmx import is_htmx
from portal.trust.models import IdempotencyKey

HEADER = "Idempotency-Key"
KEY_RE = re.compile(r"^[\x21-\x7e]{1,64}$")  # 1-64 visible ASCII characters
LIFETIME = timedelta(hours=24)
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
_STATE = "_idempotency"


class _Pending:
    """What this request knows of its key: the row, and whether a commit carried it."""

    def __init__(self, key: str, method: str, path: str, user_id: int):
        self.key = key
        self.method = method
        self.path = path
        self.user_id = user_id
        self.row: IdempotencyKey | None = None
        self.committed = False

    def new_row(self) -> IdempotencyKey:
        self.row = IdempotencyKey(
            user_id=self.user_id, key=self.key, method=self.method, path=self.path
        )
        return self.row


def prune_expired(now=None) -> int:
    """Delete keys older than 24 hours; the number deleted. Safe to run from cron at any time."""
    cutoff = (now or utcnow()) - LIFETIME
    result = db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
    return result.rowcount or 0


def _message(status: int, title: str, message: str) -> Response:
    if is_htmx():
        # htmx ignores 4xx bodies: show the message in the flash area instead.
        response = make_response(render_template("errors/_flash_error.html", message=message), 200)
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
    else:
        response = make_response(
            render_template("errors/error.html", title=title, message=message), status
        )
    response.vary.add("HX-Request")
    return response


def _already_done() -> Response:
    return _message(
        409,
        _("Already done"),
        _("This was already done. Please reload the page to see the result."),
    )


def _replay(row: IdempotencyKey) -> Response:
    """The first answer again: its redirect, or an HX-Redirect to the page it left."""
    status, location = row.status_code, row.location
    if status is None:
        return _already_done()
    if location and 300 <= status < 400:
        response = make_response("", status)
        response.headers["Location"] = location
        return response
    if location and 200 <= status < 300:
        if is_htmx():
            response = make_response("", 200)
            response.headers["HX-Redirect"] = location
            return response
        response = make_response("", 303)
        response.headers["Location"] = location
        return response
    if 400 <= status < 500:
        return _message(status, _("Not possible now"), _("This request was already answered."))
    return _already_done()


def _same_site_path(url: str) -> str | None:
    """The path (and query) of a URL on this site, for an htmx answer's replay."""
    parts = urlsplit(url)
    if parts.netloc and parts.netloc != request.host:
        return None
    if not parts.path.startswith("/") or parts.path.startswith("//"):
        return None
    return (parts.path + (f"?{parts.query}" if parts.query else ""))[:300]


def _answer_location(response: Response) -> str | None:
    if 300 <= response.status_code < 400:
        return (response.headers.get("Location") or "")[:300] or None
    if 200 <= response.status_code < 300:
        if response.headers.get("HX-Redirect"):
            return response.headers["HX-Redirect"][:300]
        if is_htmx() and request.headers.get("HX-Current-URL"):
            # A swapped fragment cannot be replayed: the retry reloads the page it came from.
            return _same_site_path(request.headers["HX-Current-URL"])
    return None


def _before_request() -> Response | None:
    raw = request.headers.get(HEADER)
    if raw is None or request.method not in WRITE_METHODS:
        return None
    if not current_user.is_authenticated:
        return None
    if not KEY_RE.match(raw):
        return _message(
            400, _("Bad request"), _("The Idempotency-Key header must be 1-64 visible characters.")
        )
    pending = _Pending(raw, request.method, request.path[:200], current_user.id)

    def lookup() -> IdempotencyKey | None:
        return db.session.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.user_id == pending.user_id, IdempotencyKey.key == pending.key
            )
        )

    row = lookup()
    if row is not None and row.created_at < utcnow() - LIFETIME:
        db.session.delete(row)  # expired: the key may be used afresh
        db.session.flush()
        row = None
    if row is None:
        db.session.add(pending.new_row())
        try:
            db.session.flush()
        except IntegrityError:
            # A parallel request with the same key committed first: answer as its retry.
            db.session.rollback()
            row = lookup()
            if row is None:  # it was rolled back meanwhile; the client may retry
                return _already_done()
        else:
            g.setdefault(_STATE, pending)
            return None
    if row.method != pending.method or row.path != pending.path:
        db.session.rollback()
        return _message(
            422,
            _("Not possible"),
            _("This Idempotency-Key was already used for another action."),
        )
    response = _replay(row)
    db.session.rollback()
    return response


def _after_request(response: Response) -> Response:
    pending: _Pending | None = g.get(_STATE)
    if pending is None or not pending.committed or pending.row is None:
        return response  # not committed: the key goes with the rolled-back work
    if response.status_code >= 500:
        return response  # the write is done but the answer is not: a retry hears "already done"
    location = _answer_location(response)
    # Its own short transaction: the request's session may hold other unsaved state.
    connection = db.engine.connect().execution_options(sqlite_immediate=True)
    with connection, connection.begin():
        connection.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.user_id == pending.user_id, IdempotencyKey.key == pending.key)
            .values(status_code=response.status_code, location=location)
        )
    return response


def _request_session(session: Session) -> _Pending | None:
    if not has_request_context():
        return None
    pending: _Pending | None = g.get(_STATE)
    if pending is None or session is not db.session():
        return None
    return pending


def _before_commit(session: Session) -> None:
    pending = _request_session(session)
    if pending is None or pending.committed:
        return
    row = pending.row
    if row is None or row not in session:
        # The view rolled back (the key with it) and then wrote again: the key goes along.
        session.add(pending.new_row())


def _after_commit(session: Session) -> None:
    pending = _request_session(session)
    if pending is not None:
        pending.committed = True


def init_app(app: Flask) -> None:
    """Install the hooks; they must run after the session hook that takes SQLite's write lock."""
    app.before_request(_before_request)
    app.after_request(_after_request)
    if not event.contains(Session, "before_commit", _before_commit):
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_commit", _after_commit)
