"""Forms of the volunteers domain: the registration, a decision, and the roster filters."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import RadioField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, StopValidation
from wtforms.widgets import CheckboxInput, ListWidget

from portal.core.forms import PortalForm
from portal.core.labels import choices as label_choices

# Usual availability: stored as comma-separated codes in Volunteer.availability.
AVAILABILITY = {
    "weekday_mornings": _l("Weekday mornings"),
    "weekday_afternoons": _l("Weekday afternoons"),
    "weekday_evenings": _l("Weekday evenings"),
    "weekends": _l("Weekends"),
}


def options(pairs) -> list[SelectChoice]:
    """WTForms 3.3 wants SelectChoice objects rather than (value, label) tuples."""
    return [SelectChoice(value, label) for value, label in pairs]


def choices(group: str, blank=None) -> list[SelectChoice]:
    """The translated options of a label group, after an optional blank ("any") option."""
    pairs = label_choices(group)
    return options([("", blank), *pairs] if blank is not None else pairs)


def optional_int(value) -> int | None:
    """Coerce a select's value: blank means none; anything else must be an integer."""
    if value in (None, ""):
        return None
    return int(value)


def one_type_at_least(form, field) -> None:
    """Like DataRequired, but without putting ``required`` on every single checkbox."""
    if not field.data:
        raise StopValidation(_l("Choose at least one volunteer type."))


class MultiCheckboxField(SelectMultipleField):
    """Several checkboxes; macros.field() renders it as a fieldset."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class VolunteerForm(PortalForm):
    types = MultiCheckboxField(
        _l("I want to serve as"),
        choices=choices("volunteer_type"),
        validators=[one_type_at_least],
    )
    employer = StringField(_l("Employer"), validators=[Length(max=100)])
    party_branch = StringField(_l("Party branch"), validators=[Length(max=100)])
    # Which grids exist is a business rule checked by the service, with its own message.
    grid_id = SelectField(_l("Grid"), coerce=optional_int, validate_choice=False)
    five_elder_kind = RadioField(
        _l("Which of the five elders"),
        choices=choices("five_elder_kind"),
        validators=[Optional()],
    )
    skills = StringField(_l("Skills"), validators=[Length(max=200)])
    availability = MultiCheckboxField(
        _l("Usually available"), choices=options(AVAILABILITY.items()), validate_choice=True
    )


class RejectForm(PortalForm):
    reason = TextAreaField(
        _l("Reason for rejection"),
        validators=[
            DataRequired(message=_l("Give a reason so the applicant can correct it.")),
            Length(max=500),
        ],
    )


class RosterFilterForm(PortalForm):
    """Read from the query string; a value that does not parse simply means "any"."""

    class Meta:
        csrf = False

    q = StringField(_l("Name or phone"))
    community = SelectField(_l("Community"), coerce=optional_int, validate_choice=False)
    type = SelectField(_l("Type"), choices=choices("volunteer_type", _l("All types")))
    grid = SelectField(_l("Grid"), coerce=optional_int, validate_choice=False)
    status = SelectField(_l("Status"), choices=choices("volunteer_status", _l("All statuses")))
