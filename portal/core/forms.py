"""The project's base forms: every free-text field refuses text that cannot be shown as typed.

Each form of the portal subclasses ``PortalForm`` (Flask-WTF, with CSRF) or, for a subform
(a FormField's rows) and the plain GET filters, ``PortalSubForm`` (WTForms, without CSRF). When
a field is bound, ``plain_text`` (core/validators.py: no control characters other than tab and
newline, no bidirectional overrides, not only invisible characters) is added to every
StringField and TextAreaField and their kin, so no form has to remember it:

- PasswordField is left alone: a password is never shown, and any character may be in one.
- HiddenField is left alone: it carries what the page wrote (a ``next`` path, an id), which the
  view checks itself; a message on a field nobody sees would only make the form fail silently.
- Search and filter fields get it too: a search for ``\\x01`` shows the message where the view
  shows filter errors, and nothing about it is kept.

tests/test_forms_plain_text.py walks every form class of the portal to keep it so.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import Form, HiddenField, PasswordField, StringField
from wtforms.meta import DefaultMeta

from portal.core.validators import plain_text


def checks_text(field: object) -> bool:
    """Whether a bound field is free text that ``plain_text`` must check."""
    return isinstance(field, StringField) and not isinstance(field, PasswordField | HiddenField)


class _PlainTextMeta:
    """A Meta mixin: binding a free-text field appends ``plain_text`` to its validators."""

    def bind_field(self, form, unbound_field, options):  # noqa: ANN001, ANN201
        field = super().bind_field(form, unbound_field, options)
        if checks_text(field) and plain_text not in field.validators:
            # A new list: the bound field may share its validators with the class's definition.
            field.validators = [*field.validators, plain_text]
        return field


class PortalForm(FlaskForm):
    """A Flask-WTF form (CSRF on unless its Meta says ``csrf = False``) whose free-text fields
    refuse control characters, bidirectional overrides and invisible-only text."""

    class Meta(_PlainTextMeta, FlaskForm.Meta):
        pass


class PortalSubForm(Form):
    """A plain WTForms form (no CSRF: a FormField's rows, a GET filter) with the same check."""

    class Meta(_PlainTextMeta, DefaultMeta):
        pass
