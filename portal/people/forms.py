from __future__ import annotations

from datetime import date

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import (
    DataRequired,
    EqualTo,
    InputRequired,
    Length,
    Optional,
    Regexp,
    ValidationError,
)
from wtforms.widgets import HiddenInput

from portal.auth.forms import USERNAME_RE
from portal.core.forms import PortalForm, PortalSubForm
from portal.core.labels import LABELS
from portal.core.validators import phone_number, strong_password

FIRST_BIRTH_YEAR = 1900


def options(pairs) -> list[SelectChoice]:
    """WTForms choices from (value, label) pairs."""
    return [SelectChoice(value, label) for value, label in pairs]


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def _optional_int(value: object) -> int | None:
    if value in (None, ""):
        return None
    return int(value)  # a ValueError becomes the field's "could not coerce" message


def birth_year_range(form, field) -> None:
    """1900 up to the current year (checked at request time, so it follows the calendar)."""
    if field.data is not None:
        last = date.today().year
        if not FIRST_BIRTH_YEAR <= field.data <= last:
            raise ValidationError(
                _("Enter a year between %(first)d and %(last)d.", first=FIRST_BIRTH_YEAR, last=last)
            )


class PersonForm(PortalForm):
    """A resident's record. The household comes either from ``household_id`` (fixed by the
    household page) or from a building plus a room number."""

    household_id = IntegerField(widget=HiddenInput(), validators=[Optional()])
    building_id = SelectField(_l("Building"), coerce=_optional_int, validate_choice=False)
    room = StringField(_l("Room number"), filters=[_strip], validators=[Length(max=20)])
    name = StringField(
        _l("Name"),
        filters=[_strip],
        validators=[DataRequired(message=_l("Enter the resident's name.")), Length(max=40)],
    )
    phone = StringField(_l("Mobile phone"), filters=[_strip], validators=[phone_number])
    sex = RadioField(
        _l("Sex"),
        choices=options([("", _l("Not stated")), *LABELS["sex"].items()]),
        default="",
        validators=[Optional()],
    )
    birth_year = IntegerField(_l("Year of birth"), validators=[Optional(), birth_year_range])
    lives_alone = BooleanField(LABELS["care_flag"]["lives_alone"])
    empty_nest = BooleanField(LABELS["care_flag"]["empty_nest"])
    disabled = BooleanField(LABELS["care_flag"]["disabled"])
    care_consent = BooleanField(
        _l("The resident (or guardian) agreed that these care needs are recorded")
    )
    guardian = StringField(
        _l("Guardian (phone or name of an adult of this community)"),
        filters=[_strip],
        validators=[Length(max=40)],
    )

    @property
    def care_flags(self) -> set[str]:
        return {name for name in LABELS["care_flag"] if getattr(self, name).data}


class MatchForm(PortalForm):
    """Match a self-registered account to a household: a building and a room number."""

    building_id = SelectField(_l("Building"), coerce=_optional_int, validate_choice=False)
    room = StringField(
        _l("Room number"), filters=[_strip], validators=[InputRequired(), Length(max=20)]
    )


class AccountForm(PortalForm):
    username = StringField(
        _l("Username"),
        filters=[_strip],
        validators=[
            InputRequired(),
            Length(min=3, max=40),
            Regexp(USERNAME_RE, message=_l("Use letters, digits, dot, dash or underscore.")),
        ],
    )
    password = PasswordField(
        _l("Initial password"),
        validators=[InputRequired(), Length(min=8, max=128), strong_password],
    )
    confirm = PasswordField(
        _l("Repeat password"),
        validators=[InputRequired(), EqualTo("password", message=_l("The passwords differ."))],
    )


class ResidentFilterForm(PortalSubForm):
    """The residents list's search and filters, read from the query string (no CSRF: a GET)."""

    q = StringField(_l("Name or phone"), filters=[_strip], validators=[Length(max=40)])
    community = SelectField(_l("Community"), coerce=_optional_int, validate_choice=False)
    grid = SelectField(_l("Grid"), coerce=_optional_int, validate_choice=False)
    care = SelectField(
        _l("Care need"),
        choices=options([("", _l("Any")), *LABELS["care_flag"].items()]),
        validate_choice=False,
    )
    household = SelectField(
        _l("Household"),
        choices=options(
            [
                ("", _l("Any")),
                ("with", _l("Registered to a household")),
                ("without", _l("Without a household")),
            ]
        ),
        validate_choice=False,
    )
