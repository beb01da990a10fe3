"""Session loading: a user is found by their current session token, never by id alone."""

from __future__ import annotations

from flask import Flask, redirect, request, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.extensions import db, login_manager
from portal.htmx import hx_redirect, is_htmx

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in to continue.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(token: str):
        from sqlalchemy.orm import joinedload

        from portal.auth.models import User

        # Most pages read current_user.person: load it with the user (one query, not two).
        return db.session.scalar(
            select(User)
            .options(joinedload(User.person))
            .where(User.session_token == token, User.active.is_(True))
        )

    @login_manager.unauthorized_handler
    def unauthorized():
        from flask import flash

        flash(str(login_manager.login_message), "info")
        target = url_for("auth.login", next=request.full_path.rstrip("?"))
        if is_htmx():
            # The page that made the request, not the widget's URL, is where to come back to.
            current = request.headers.get("HX-Current-URL", "")
            from urllib.parse import urlsplit

            parts = urlsplit(current)
            back = parts.path + (f"?{parts.query}" if parts.query else "")
            return hx_redirect(url_for("auth.login", next=back or "/"))
        return redirect(target)

    @app.before_request
    def _write_transactions_take_the_lock():
        # On SQLite a unit of work that writes must start with BEGIN IMMEDIATE (see database.py).
        if request.method not in SAFE_METHODS and db.engine.dialect.name == "sqlite":
            db.session.connection(execution_options={"sqlite_immediate": True})
