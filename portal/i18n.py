"""Language choice: Chinese first, English on request; kept in the session."""

from __future__ import annotations

from flask import Flask, current_app, has_request_context, session
from flask_babel import get_locale

from portal.core import formatting
from portal.extensions import babel


def select_locale() -> str:
    # Outside a request (CLI, cron jobs) there is no session: use the default language.
    chosen = session.get("lang") if has_request_context() else None
    if chosen in current_app.config["LANGUAGES"]:
        return chosen
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale)
    # Templates reach the (cached) catalogue directly, not through Flask-Babel's get_domain().
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: babel.domain_instance.get_translations().ugettext(s),
        ngettext=lambda s, p, n: babel.domain_instance.get_translations().ungettext(s, p, n),
        pgettext=lambda c, s: babel.domain_instance.get_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: babel.domain_instance.get_translations().unpgettext(
            c, s, p, n
        ),
        newstyle=True,
    )
    # Faster date and number filters in place of Flask-Babel's (same output; see the module).
    formatting.init_app(app)

    @app.context_processor
    def _locale_context() -> dict:
        locale = get_locale()
        lang = "en" if locale and locale.language == "en" else "zh-CN"
        return {"current_lang": lang}
