"""Forms of scheduling: a shift, a weekly series, a series edit from a date, cancellations, and
the coverage page's community choice.

Selects of grids, buildings and leaders never trust their choices: the view fills them from the
user's community and the service checks every id again, with its own message.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    DateField,
    FieldList,
    FormField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import Length, NumberRange, Optional

from portal.core.forms import PortalForm, PortalSubForm
from portal.core.labels import choices
from portal.patrols.models import SHIFT_KINDS
from portal.patrols.scheduling import (
    MAX_CAPACITY,
    MAX_LABEL,
    MAX_NOTES,
    MAX_POINTS_PER_HOUR,
    MAX_REASON,
    MAX_STOPS,
    ShiftPlan,
)
from portal.places.forms import MultiCheckboxField, optional_id, strip

WEEKDAY_LABELS = {
    "MO": _l("Monday"),
    "TU": _l("Tuesday"),
    "WE": _l("Wednesday"),
    "TH": _l("Thursday"),
    "FR": _l("Friday"),
    "SA": _l("Saturday"),
    "SU": _l("Sunday"),
}
TIME_FORMATS = ["%H:%M", "%H:%M:%S"]


def _options(group: str) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in choices(group)]


def _kinds() -> list[SelectChoice]:
    """The kinds a scheduler may choose: help visits are made by household help tasks only."""
    return [choice for choice in _options("shift_kind") if choice.value in SHIFT_KINDS]


class StopForm(PortalSubForm):
    """One stop of a route: a building of the shift's grid, or a free-text checkpoint."""

    building_id = SelectField(_l("Building"), coerce=optional_id, validate_choice=False)
    checkpoint = StringField(
        _l("Checkpoint or note"), filters=[strip], validators=[Length(max=MAX_LABEL)]
    )


class _PlanForm(PortalForm):
    """The fields every shift and series share."""

    title = StringField(_l("Title"), filters=[strip], validators=[Length(max=100)])
    meeting_point = StringField(_l("Meeting point"), filters=[strip], validators=[Length(max=200)])
    route = FieldList(FormField(StopForm), max_entries=MAX_STOPS)
    start_time = TimeField(_l("Start time"), format=TIME_FORMATS, validators=[Optional()])
    end_time = TimeField(_l("End time"), format=TIME_FORMATS, validators=[Optional()])
    capacity = IntegerField(
        _l("Number of places"),
        default=5,
        validators=[
            Optional(),
            NumberRange(min=1, message=_l("Offer at least 1 place.")),
            NumberRange(max=MAX_CAPACITY, message=_l("At most %(n)d places.", n=MAX_CAPACITY)),
        ],
    )
    minimum = IntegerField(
        _l("Minimum needed"),
        default=1,
        validators=[
            Optional(),
            NumberRange(min=0, message=_l("The minimum cannot be below 0.")),
        ],
    )
    allowed_types = MultiCheckboxField(_l("Open to"), choices=_options("volunteer_type"))
    leader_id = SelectField(_l("Leader"), coerce=optional_id, validate_choice=False)
    notes = TextAreaField(_l("Notes"), filters=[strip], validators=[Length(max=MAX_NOTES)])
    points_per_hour = IntegerField(
        _l("Points per hour"),
        default=None,
        validators=[
            Optional(),
            NumberRange(
                min=0,
                max=MAX_POINTS_PER_HOUR,
                message=_l("Enter a number from 0 to %(max)d.", max=MAX_POINTS_PER_HOUR),
            ),
        ],
    )

    def plan(self, *, kind: str, grid_id: int | None) -> ShiftPlan:
        """The typed values as a ShiftPlan for the services."""
        return ShiftPlan(
            kind=kind,
            title=self.title.data or "",
            grid_id=grid_id,
            start_time=self.start_time.data,
            end_time=self.end_time.data,
            capacity=self.capacity.data,
            minimum=self.minimum.data,
            meeting_point=self.meeting_point.data or "",
            route=[
                {"building_id": entry.building_id.data, "label": entry.checkpoint.data or ""}
                for entry in self.route
            ],
            allowed_types=list(self.allowed_types.data or []),
            leader_id=self.leader_id.data,
            notes=self.notes.data or "",
            points_per_hour=self.points_per_hour.data,
        )


class ShiftForm(_PlanForm):
    kind = SelectField(_l("Kind of duty"), choices=_kinds(), default="patrol")
    grid_id = SelectField(_l("Grid"), coerce=optional_id, validate_choice=False)
    day = DateField(_l("Date"), validators=[Optional()])


class SeriesForm(_PlanForm):
    kind = SelectField(_l("Kind of duty"), choices=_kinds(), default="patrol")
    grid_id = SelectField(_l("Grid"), coerce=optional_id, validate_choice=False)
    weekdays = MultiCheckboxField(
        _l("Every week on"),
        choices=[SelectChoice(code, label) for code, label in WEEKDAY_LABELS.items()],
    )
    starts_on = DateField(_l("First date"), validators=[Optional()])
    ends_on = DateField(_l("Last date"), validators=[Optional()])


class SeriesEditForm(_PlanForm):
    from_date = DateField(_l("Apply from"), name="from", validators=[Optional()])


class ShiftCancelForm(PortalForm):
    reason = TextAreaField(
        _l("Reason (sent to the volunteers)"),
        filters=[strip],
        validators=[Length(max=MAX_REASON)],
    )


class SeriesCancelForm(PortalForm):
    from_date = DateField(_l("Cancel from"), name="from", validators=[Optional()])
    reason = TextAreaField(
        _l("Reason (sent to the volunteers)"),
        filters=[strip],
        validators=[Length(max=MAX_REASON)],
    )


class RouteForm(PortalForm):
    """The route alone, read from the query string when the grid changes (htmx)."""

    class Meta:
        csrf = False

    grid_id = SelectField(_l("Grid"), coerce=optional_id, validate_choice=False)
    route = FieldList(FormField(StopForm), max_entries=MAX_STOPS)


class CoverageFilterForm(PortalForm):
    """Read from the query string: the community a subdistrict admin looks at."""

    class Meta:
        csrf = False

    community = SelectField(_l("Community"), coerce=optional_id, validate_choice=False)
