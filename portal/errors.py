"""Friendly error pages; a crash rolls back so nothing half-written stays."""

from __future__ import annotations

from flask import Flask, render_template
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError

from portal.extensions import db
from portal.htmx import is_htmx


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
        return page(403, _("Not allowed"), _("Your role does not allow this page."))

    @app.errorhandler(404)
    def not_found(_e):
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
            413, _("File too large"), _("The upload is too large: at most 10 MB per photo.")
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
