"""The templates' ``_``/``gettext``/``ngettext`` (portal/i18n.py, one call instead of Jinja's
three) give exactly what Jinja's own newstyle callables give, in both languages."""

from __future__ import annotations

import pytest
from flask import session
from jinja2 import Environment

from portal.extensions import babel

SOURCES = [
    '{{ _("Where") }}',
    '{{ _("No. %(number)d", number=42) }}',
    '{{ gettext("Escalated (level %(level)d)", level=2) }}',
    '{{ _("Page %(page)d of %(pages)d", page=3, pages=9) }}',
    '{{ _("<b>not a message</b> & 100%% sure") }}',
    '{{ _("50%% & <i>%(who)s</i>", who="<script>") }}',
    '{{ _("%(a)s") }}{{ _("Overdue") }}',
    '{{ ngettext("%(num)d open request", "%(num)d open requests", 1) }}',
    '{{ ngettext("%(num)d open request", "%(num)d open requests", 7) }}',
    '{{ ngettext("%(num)d party member in %(year)d.", "%(num)d party members in %(year)d.",'
    " 3, year=2026) }}",
]


def _jinja_own(app, autoescape: bool) -> Environment:
    """An environment with Jinja's own newstyle callables over the same catalogue."""
    env = Environment(extensions=["jinja2.ext.i18n"], autoescape=autoescape)
    env.install_gettext_callables(
        gettext=lambda s: babel.domain_instance.get_translations().ugettext(s),
        ngettext=lambda s, p, n: babel.domain_instance.get_translations().ungettext(s, p, n),
        newstyle=True,
    )
    return env


@pytest.mark.parametrize("lang", ["zh_Hans_CN", "en"])
@pytest.mark.parametrize("autoescape", [True, False])
def test_same_output_as_jinjas_newstyle_gettext(app, lang, autoescape):
    ours = app.jinja_env.overlay(autoescape=autoescape)
    theirs = _jinja_own(app, autoescape)
    with app.test_request_context("/"):
        session["lang"] = lang
        for source in SOURCES:
            try:
                expected = theirs.from_string(source).render()
            except KeyError:  # a placeholder without its variable fails in both
                with pytest.raises(KeyError):
                    ours.from_string(source).render()
                continue
            assert ours.from_string(source).render() == expected, source
        where = ours.from_string(SOURCES[0]).render()
        assert (where == "Where") == (lang == "en")  # the catalogue is in use
    assert app.jinja_env.globals["_"] is app.jinja_env.globals["gettext"]
