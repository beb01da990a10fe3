"""Session loading: a user is found by their current session token, never by id alone.

Rotating ``User.session_token`` (logout, password change, role change, disabling) therefore
ends every session and remember-me cookie of that account at its next request. Staff sessions
also end after STAFF_IDLE_TIMEOUT_SECONDS without a request.
"""

from __future__ import annotations

import time
from functools import cache
from urllib.parse import urlsplit

from flask import Flask, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, logout_user, user_loaded_from_cookie
from sqlalchemy import Select, bindparam, select

from portal.core.photos import prepared_before_write
from portal.database import begin_write, read_outside_transaction
from portal.extensions import db, login_manager
from portal.htmx import hx_redirect, is_htmx

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Unix time of the last request that refreshed it (kept in the signed session cookie).
SEEN_KEY = "seen"


def fresh_session() -> None:
    """Drop everything in the session (new CSRF token too) except the chosen language."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def mark_seen() -> None:
    session[SEEN_KEY] = int(time.time())


def _back_to_here() -> str:
    """Where to return after signing in again: the page (for htmx, the page that asked)."""
    if is_htmx():
        parts = urlsplit(request.headers.get("HX-Current-URL", ""))
        return parts.path + (f"?{parts.query}" if parts.query else "") or "/"
    if request.method in SAFE_METHODS:
        return request.full_path.rstrip("?")
    return "/"


def _to_login():
    target = url_for("auth.login", next=_back_to_here())
    if is_htmx():
        # The whole page goes to the sign-in form, never a form swapped into a widget.
        return hx_redirect(target)
    return redirect(target, code=303 if request.method not in SAFE_METHODS else 302)


def _idle_too_long() -> bool:
    """True when a staff session has been idle past the limit (or came back from a remember-me
    cookie, which carries no last-seen time); otherwise refresh the last-seen time, at most
    once a minute so that the cookie is not rewritten on every request."""
    from flask import current_app

    now = int(time.time())
    seen = session.get(SEEN_KEY)
    if not isinstance(seen, int):
        if g.pop("restored_from_cookie", False):
            return True
        mark_seen()
        return False
    if now - seen > current_app.config["STAFF_IDLE_TIMEOUT_SECONDS"]:
        return True
    if now - seen >= current_app.config["SESSION_SEEN_REFRESH_SECONDS"]:
        mark_seen()
    return False


@cache
def _user_by_token() -> Select:
    """The statement that loads the signed-in user on every request, built once: SQLAlchemy
    spends more time building a statement than running it (see bench/README.md). Most pages
    read current_user.person, so it comes in the same query."""
    from sqlalchemy import func
    from sqlalchemy.orm import joinedload

    from portal.auth.models import User
    from portal.core.stamps import CacheStamp

    # The data stamp of the user's community comes first of all the request's reads: the page
    # cache (portal/core/pagecache.py) keys pages by it.
    return (
        select(User, func.coalesce(CacheStamp.version, 0))
        .outerjoin(CacheStamp, CacheStamp.community_id == User.community_id)
        .options(joinedload(User.person))
        .where(User.session_token == bindparam("token"), User.active.is_(True))
    )


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in to continue.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(token: str):
        with read_outside_transaction():  # a cached page: this one round trip (PostgreSQL)
            row = db.session.execute(_user_by_token(), {"token": token}).first()
        if row is None:
            return None
        user, stamp = row
        if user.community_id is not None:
            g.community_stamp = (user.community_id, stamp)
        return user

    @user_loaded_from_cookie.connect_via(app)
    def _restored(sender, user) -> None:  # noqa: ANN001
        g.restored_from_cookie = True

    @login_manager.unauthorized_handler
    def unauthorized():
        flash(str(login_manager.login_message), "info")
        if is_htmx():
            return _to_login()
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))

    @app.before_request
    def _write_transactions_take_the_lock():
        # On SQLite a unit of work that writes must start with BEGIN IMMEDIATE (see database.py).
        # A view's photos decode first, with no lock held: core/photos.py begins that write.
        if (
            request.method not in SAFE_METHODS
            and db.engine.dialect.name == "sqlite"
            and not prepared_before_write()
        ):
            begin_write()

    @app.before_request
    def _staff_idle_timeout():
        # After the lock hook: loading the user must not open the transaction first.
        if request.endpoint == "static" or not current_user.is_authenticated:
            return None
        if not current_user.is_staff or not _idle_too_long():
            return None
        # This order keeps logout_user's note to delete a remember-me cookie.
        fresh_session()
        logout_user()
        minutes = app.config["STAFF_IDLE_TIMEOUT_SECONDS"] // 60
        flash(_("You were signed out after %(n)d minutes without activity.", n=minutes), "info")
        return _to_login()
