"""Language choice: Chinese first, English on request; kept in the session."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, has_request_context, session
from flask_babel import get_locale
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from portal.core import formatting
from portal.extensions import babel


def select_locale() -> str:
    # Outside a request (CLI, cron jobs) there is no session: use the default language.
    chosen = session.get("lang") if has_request_context() else None
    if chosen in current_app.config["LANGUAGES"]:
        return chosen
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def _template_gettext() -> dict:
    """``_``, ``gettext`` and ``ngettext`` for templates, giving exactly what Jinja's newstyle
    ones give (the translation, Markup under autoescape, %-formatted with the variables) in one
    call instead of three (``_`` -> ``gettext`` -> the catalogue, each through Context.call):
    a list page makes 50 to 250 of them."""

    def translations():  # noqa: ANN202
        return babel.domain_instance.get_translations()

    @pass_context
    def gettext(__context: Context, __string: str, **variables: Any) -> str:
        rv = translations().ugettext(__string)
        if __context.eval_ctx.autoescape:
            rv = Markup(rv)
        # Without a "%" the formatting gives back the same string: skip it.
        return rv % variables if variables or "%" in rv else rv

    @pass_context
    def ngettext(
        __context: Context, __singular: str, __plural: str, __num: int, **variables: Any
    ) -> str:
        variables.setdefault("num", __num)
        rv = translations().ungettext(__singular, __plural, __num)
        if __context.eval_ctx.autoescape:
            rv = Markup(rv)
        return rv % variables

    return {"_": gettext, "gettext": gettext, "ngettext": ngettext}


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
    app.jinja_env.globals.update(_template_gettext())
    # Faster date and number filters in place of Flask-Babel's (same output; see the module).
    formatting.init_app(app)

    @app.context_processor
    def _locale_context() -> dict:
        locale = get_locale()
        lang = "en" if locale and locale.language == "en" else "zh-CN"
        return {"current_lang": lang}
