from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import EqualTo, InputRequired, Length, Regexp

from portal.auth.passwords import not_common
from portal.core.forms import PortalForm, PortalSubForm
from portal.core.validators import phone_number

USERNAME_RE = r"^[A-Za-z0-9_.-]+$"


class LoginForm(PortalForm):
    identifier = StringField(_l("Username or phone"), validators=[InputRequired(), Length(max=40)])
    password = PasswordField(_l("Password"), validators=[InputRequired(), Length(max=128)])
    remember = BooleanField(_l("Keep me signed in on this device"))
    next = HiddenField()


class SignupForm(PortalForm):
    community_id = SelectField(_l("Community"), coerce=int, validators=[InputRequired()])
    name = StringField(_l("Name"), validators=[InputRequired(), Length(max=40)])
    phone = StringField(_l("Mobile phone"), validators=[InputRequired(), phone_number])
    username = StringField(
        _l("Username"),
        validators=[
            InputRequired(),
            Length(min=3, max=40),
            Regexp(USERNAME_RE, message=_l("Use letters, digits, dot, dash or underscore.")),
        ],
    )
    password = PasswordField(
        _l("Password"), validators=[InputRequired(), Length(min=8, max=128), not_common]
    )
    confirm = PasswordField(
        _l("Repeat password"),
        validators=[InputRequired(), EqualTo("password", message=_l("The passwords differ."))],
    )


class PasswordChangeForm(PortalForm):
    current = PasswordField(_l("Current password"), validators=[InputRequired()])
    password = PasswordField(
        _l("New password"), validators=[InputRequired(), Length(min=8, max=128), not_common]
    )
    confirm = PasswordField(
        _l("Repeat new password"),
        validators=[InputRequired(), EqualTo("password", message=_l("The passwords differ."))],
    )


class AccountFilterForm(PortalSubForm):
    """The accounts list's search, read from the query string (no CSRF: a GET)."""

    q = StringField(
        _l("Name or username"),
        filters=[lambda v: v.strip() if v else v],
        validators=[Length(max=40)],
    )


class RoleForm(PortalForm):
    role = SelectField(_l("Role"), validators=[InputRequired()])
