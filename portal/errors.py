"""Friendly error pages; a crash rolls back so nothing half-written stays. A signed-in user's
refusals (403, and 404 on a real route: an id of another community, or one that does not exist)
are written to the audit log."""

from __future__ import annotations

from flask import Flask, current_app, render_template, request
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import SQLAlchemyError

from portal.extensions import db
from portal.htmx import is_htmx


def _record_refusal(status: int) -> None:
    """Audit a refusal answered to a signed-in user; 404s on unknown URLs (bots probing paths)
    are not recorded, so that the log stays readable."""
    if not current_user.is_authenticated:
        return
    if status == 404 and (request.url_rule is None or request.endpoint == "static"):
        return
    from portal.trust.audit import record_now

    ids = [v for v in (request.view_args or {}).values() if isinstance(v, int)]
    # Nothing of a refused request is kept; and on SQLite the request's write lock must go
    # before the audit row is written through a connection of its own.
    db.session.rollback()
    try:
        record_now(
            "permission_refused",
            "refused",
            target_type=(request.endpoint or "")[:30] or None,
            target_id=ids[0] if ids and 0 < ids[0] < 2**31 else None,
            # The path only: a query string may carry what was searched for.
            detail=f"{status} {request.method} {request.path}",
        )
    except SQLAlchemyError:
        # The refusal is answered even if the log cannot be written (the database is down).
        current_app.logger.exception("audit row for a refusal not written")


def init_app(app: Flask) -> None:
    def page(status: int, title: str, message: str):
        if is_htmx():
            response = app.make_response(
                (render_template("errors/_flash_error.html", message=message), 200)
            )
            # htmx ignores 4xx/5xx bodies: show the message in the flash area instead.
            response.headers["HX-Retarget"] = "#flash"
            response.headers["HX-Reswap"] = "innerHTML"
            response.vary.add("HX-Request")
            return response
        return render_template("errors/error.html", title=title, message=message), status

    @app.errorhandler(403)
    def forbidden(_e):
        _record_refusal(403)
        if current_user.is_authenticated and not current_user.verified:
            return page(
                403,
                _("Waiting to be matched"),
                _(
                    "Your account waits for a grid worker or the community office to match it"
                    " to your household. Until then you can submit and follow your own requests."
                ),
            )
        return page(403, _("Not allowed"), _("Your role does not allow this page."))

    @app.errorhandler(404)
    def not_found(_e):
        _record_refusal(404)
        return page(404, _("Not found"), _("We could not find that page or record."))

    @app.errorhandler(405)
    def not_allowed(_e):
        return page(405, _("Not allowed"), _("That action is not available here."))

    @app.errorhandler(409)
    def conflict(_e):
        return page(
            409,
            _("Not possible now"),
            _("This step is not possible in the request's current state. Please reload the page."),
        )

    @app.errorhandler(413)
    def too_large(_e):
        return page(
            413,
            _("Too large to send"),
            _(
                "What you sent is too large: at most 10 MB per photo, and text only as long as "
                "the form allows. Nothing was saved."
            ),
        )

    @app.errorhandler(CSRFError)
    def csrf_error(_e):
        return page(
            400,
            _("Form expired"),
            _("The form expired or came from elsewhere. Please reload the page and try again."),
        )

    @app.errorhandler(500)
    def server_error(_e):
        db.session.rollback()
        return page(
            500,
            _("Something went wrong"),
            _("Nothing was saved. Please try again in a moment."),
        )
