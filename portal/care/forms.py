"""Forms of scheduled household help."""

from __future__ import annotations

from datetime import time

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import Length, NumberRange, Optional

from portal.care.services import (
    MAX_COMMENT,
    MAX_NOTE,
    MAX_PRIVATE_NOTES,
    MAX_SKILL,
    TaskInput,
)
from portal.core.forms import PortalForm
from portal.core.labels import choices
from portal.patrols.schedule_forms import TIME_FORMATS, WEEKDAY_LABELS
from portal.patrols.scheduling import MAX_CAPACITY, MAX_POINTS_PER_HOUR, MAX_REASON, ShiftPlan
from portal.places.forms import MultiCheckboxField, optional_id, strip


def _sex_choices() -> list[SelectChoice]:
    return [
        SelectChoice("", _l("Any volunteer")),
        *(SelectChoice(v, label) for v, label in choices("volunteer_sex")),
    ]


def optional_sex(value) -> str | None:
    return value or None


class EnrolForm(PortalForm):
    person_id = SelectField(_l("Resident who consents"), coerce=optional_id, validate_choice=False)
    consent = BooleanField(
        _l("The resident agreed to regular help visits and signed the consent form")
    )
    volunteer_sex = SelectField(
        _l("Who may visit"), choices=_sex_choices, coerce=optional_sex, validate_choice=False
    )


class PreferenceForm(PortalForm):
    volunteer_sex = SelectField(
        _l("Who may visit"), choices=_sex_choices, coerce=optional_sex, validate_choice=False
    )


class TaskForm(PortalForm):
    household_ids = MultiCheckboxField(_l("Households"), coerce=int, validate_choice=False)
    category_id = SelectField(_l("Kind of help"), coerce=optional_id, validate_choice=False)
    title = StringField(_l("Title"), filters=[strip], validators=[Length(max=100)])
    repeat = RadioField(
        _l("When"),
        choices=[
            SelectChoice("once", _l("On one date")),
            SelectChoice("weekly", _l("Every week on chosen days")),
        ],
        default="weekly",
        validate_choice=False,
    )
    day = DateField(_l("Date"), validators=[Optional()])
    weekdays = MultiCheckboxField(
        _l("Every week on"),
        choices=[SelectChoice(code, label) for code, label in WEEKDAY_LABELS.items()],
    )
    starts_on = DateField(_l("First date"), validators=[Optional()])
    ends_on = DateField(_l("Last date"), validators=[Optional()])
    start_time = TimeField(_l("Start time"), format=TIME_FORMATS, validators=[Optional()])
    end_time = TimeField(_l("End time"), format=TIME_FORMATS, validators=[Optional()])
    capacity = IntegerField(
        _l("Volunteers needed"),
        default=1,
        validators=[
            Optional(),
            NumberRange(min=1, message=_l("Offer at least 1 place.")),
            NumberRange(max=MAX_CAPACITY, message=_l("At most %(n)d places.", n=MAX_CAPACITY)),
        ],
    )
    allowed_types = MultiCheckboxField(
        _l("Open to"), choices=lambda: [SelectChoice(v, t) for v, t in choices("volunteer_type")]
    )
    volunteer_sex = SelectField(
        _l("Who may visit"), choices=_sex_choices, coerce=optional_sex, validate_choice=False
    )
    required_skill = StringField(
        _l("Skill needed (optional)"), filters=[strip], validators=[Length(max=MAX_SKILL)]
    )
    points_per_hour = IntegerField(
        _l("Points per hour"),
        validators=[
            Optional(),
            NumberRange(
                min=0,
                max=MAX_POINTS_PER_HOUR,
                message=_l("Enter a number from 0 to %(max)d.", max=MAX_POINTS_PER_HOUR),
            ),
        ],
    )
    private_notes = TextAreaField(
        _l("Private notes for the volunteers who take it"),
        filters=[strip],
        validators=[Length(max=MAX_PRIVATE_NOTES)],
    )

    def task_input(self) -> TaskInput:
        plan = ShiftPlan(
            kind="help_visit",
            title="",
            grid_id=None,
            start_time=self.start_time.data,
            end_time=self.end_time.data,
            capacity=self.capacity.data,
            minimum=min(self.capacity.data or 1, 1),
            allowed_types=list(self.allowed_types.data or []),
            points_per_hour=self.points_per_hour.data,
        )
        return TaskInput(
            household_ids=list(self.household_ids.data or []),
            category_id=self.category_id.data,
            title=self.title.data or "",
            private_notes=self.private_notes.data or "",
            volunteer_sex=self.volunteer_sex.data,
            repeat=self.repeat.data,
            plan=plan,
            day=self.day.data,
            weekdays=list(self.weekdays.data or []),
            starts_on=self.starts_on.data,
            ends_on=self.ends_on.data,
            required_skill=self.required_skill.data or "",
        )


DEFAULT_START = time(9, 0)
DEFAULT_END = time(10, 0)


class EndTaskForm(PortalForm):
    reason = TextAreaField(
        _l("Reason (sent to the volunteers)"), filters=[strip], validators=[Length(max=MAX_REASON)]
    )


class DoorCodeForm(PortalForm):
    code = StringField(_l("Code on the door card"), filters=[strip], validators=[Length(max=20)])


class ReportForm(PortalForm):
    note = TextAreaField(_l("Short note"), filters=[strip], validators=[Length(max=MAX_NOTE)])


class ConfirmForm(PortalForm):
    came = MultiCheckboxField(_l("Who came"), coerce=int, validate_choice=False)
    rating = RadioField(
        _l("Rating"),
        choices=[SelectChoice("", _l("No rating"))]
        + [SelectChoice(str(n), "★" * n) for n in range(1, 6)],
        default="",
        validate_choice=False,
    )
    comment = TextAreaField(
        _l("Comment (optional)"), filters=[strip], validators=[Length(max=MAX_COMMENT)]
    )

    def rating_value(self) -> int | None:
        try:
            return int(self.rating.data) if self.rating.data else None
        except (TypeError, ValueError):
            return 0  # refused by the service with its message
