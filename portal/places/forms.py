"""Forms for the places tree.

Select fields never trust their choices: the view fills them from the secretary's community and
the service checks membership again, so a forged id gets a field message, not a row elsewhere.
No form has a community field: the community always comes from the signed-in user.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from portal.core.forms import PortalForm
from portal.core.labels import choices


def strip(value):
    return value.strip() if isinstance(value, str) else value


MAX_ID = 2**31 - 1


def optional_id(value) -> int | None:
    """A posted id: blank is None; anything not a number is 0 (no row has it), so it is refused."""
    if value is None or value == "":
        return None
    try:
        number = value if isinstance(value, int) else int(value)
    except (TypeError, ValueError):
        return 0
    # Ids are 32-bit columns: a larger number would make PostgreSQL fail the query (a 500).
    return number if 0 < number <= MAX_ID else 0


class MultiCheckboxField(SelectMultipleField):
    """A multiple choice shown as a list of big checkboxes (templates/macros.html knows it)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class GridForm(PortalForm):
    name = StringField(_l("Name"), filters=[strip], validators=[DataRequired(), Length(max=80)])
    description = TextAreaField(_l("Description"), filters=[strip], validators=[Length(max=500)])
    worker_ids = MultiCheckboxField(_l("Grid workers"), coerce=optional_id, validate_choice=False)


class EstateForm(PortalForm):
    name = StringField(_l("Name"), filters=[strip], validators=[DataRequired(), Length(max=80)])
    kind = SelectField(
        _l("Kind"),
        choices=[SelectChoice(value, label) for value, label in choices("estate_kind")],
        default="ordinary",
        validators=[InputRequired()],
    )
    address = StringField(_l("Address"), filters=[strip], validators=[Length(max=200)])


class BuildingForm(PortalForm):
    estate_id = SelectField(
        _l("Estate"), coerce=optional_id, validate_choice=False, validators=[InputRequired()]
    )
    grid_id = SelectField(
        _l("Grid"), coerce=optional_id, validate_choice=False, validators=[InputRequired()]
    )
    name = StringField(_l("Name"), filters=[strip], validators=[DataRequired(), Length(max=40)])
    floors = IntegerField(
        _l("Floors"),
        validators=[
            Optional(),
            NumberRange(min=1, max=200, message=_l("Enter a number from 1 to 200.")),
        ],
    )
    captain_id = SelectField(_l("Building captain"), coerce=optional_id, validate_choice=False)


class EntranceForm(PortalForm):
    name = StringField(
        _l("Entrance name"), filters=[strip], validators=[DataRequired(), Length(max=40)]
    )


class HouseholdForm(PortalForm):
    room = StringField(
        _l("Room number"), filters=[strip], validators=[DataRequired(), Length(max=20)]
    )
    entrance_id = SelectField(_l("Entrance"), coerce=optional_id, validate_choice=False)
    notes = TextAreaField(_l("Notes"), filters=[strip], validators=[Length(max=500)])
