"""Forms of points administration: the rules, an adjustment, a reversal and the list filters.

Bounds are checked here for the messages next to each field, and again by the services.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from wtforms import DateField, DecimalField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, StopValidation

from portal.core.forms import PortalForm
from portal.core.labels import LABELS
from portal.help.catalogue import MAX_POINTS as MAX_CATEGORY_POINTS
from portal.patrols.scheduling import MAX_POINTS_PER_HOUR
from portal.points.admin import (
    ENTRY_KIND_LABELS,
    MAX_DAILY_CAP,
    MAX_MULTIPLIER,
    MAX_PARTY_REPORT,
    PERIOD_LABELS,
    field_name,
)
from portal.points.ledger import MAX_ADJUST_HOURS, MAX_ADJUST_POINTS
from portal.volunteers.forms import optional_int, options
from portal.volunteers.models import VOLUNTEER_TYPES

REASON_MAX = 200


class WholeNumberField(IntegerField):
    """An integer input whose parse error speaks the user's language."""

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        raw = (valuelist[0] or "").strip()
        if not raw:
            self.data = None
            return
        try:
            self.data = int(raw)
        except ValueError:
            self.data = None
            raise ValueError(_l("Enter a whole number.")) from None


class NumberField(DecimalField):
    """A decimal input (hours, multipliers) whose parse error speaks the user's language."""

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        raw = (valuelist[0] or "").strip().replace(",", ".")
        if not raw:
            self.data = None
            return
        try:
            self.data = Decimal(raw)
        except (InvalidOperation, ValueError):
            self.data = None
            raise ValueError(_l("Enter a number such as 1.5.")) from None
        if not self.data.is_finite():
            self.data = None
            raise ValueError(_l("Enter a number such as 1.5."))


def between(low, high, message, *, places: int | None = None, required: bool = True):
    """One clear message for a number outside [low, high] (or with too many decimals)."""

    def check(form, field) -> None:
        if field.errors:
            raise StopValidation()  # the parse message already says what is wrong
        if field.data is None:
            if required:
                raise StopValidation(_l("Enter a number."))
            return
        if not low <= field.data <= high:
            raise StopValidation(message)
        if places is not None and field.data != field.data.quantize(Decimal(1).scaleb(-places)):
            raise StopValidation(message)

    return check


def _whole(label, high: int, message) -> WholeNumberField:
    return WholeNumberField(
        label, validators=[between(0, high, message)], render_kw={"min": 0, "max": high}
    )


class RulesForm(PortalForm):
    """The fixed rules; a multiplier per volunteer type is added below, and a field per
    category by ``rules_form``."""

    per_hour_patrol = _whole(
        _l("Patrol: points per hour"),
        MAX_POINTS_PER_HOUR,
        _l("Enter a whole number from 0 to %(max)d.", max=MAX_POINTS_PER_HOUR),
    )
    per_hour_door_watch = _whole(
        _l("Door-to-door watch: points per hour"),
        MAX_POINTS_PER_HOUR,
        _l("Enter a whole number from 0 to %(max)d.", max=MAX_POINTS_PER_HOUR),
    )
    per_hour_other = _whole(
        _l("Other duties: points per hour"),
        MAX_POINTS_PER_HOUR,
        _l("Enter a whole number from 0 to %(max)d.", max=MAX_POINTS_PER_HOUR),
    )
    party_report = _whole(
        _l("Party member's report to the community"),
        MAX_PARTY_REPORT,
        _l("Enter a whole number from 0 to %(max)d.", max=MAX_PARTY_REPORT),
    )
    daily_cap = _whole(
        _l("Daily cap per person (0 = no cap)"),
        MAX_DAILY_CAP,
        _l("Enter a whole number from 0 (no cap) to %(max)d.", max=MAX_DAILY_CAP),
    )


for _type in VOLUNTEER_TYPES:
    setattr(
        RulesForm,
        field_name(f"multiplier:{_type}"),
        NumberField(
            LABELS["volunteer_type"][_type],
            places=2,
            validators=[
                between(
                    Decimal(0),
                    MAX_MULTIPLIER,
                    _l("Enter a multiplier from 0.00 to 5.00 (two decimals at most)."),
                    places=2,
                )
            ],
            render_kw={"min": "0", "max": "5", "step": "0.01", "inputmode": "decimal"},
        ),
    )


def rules_form(categories, category_name, **kwargs) -> RulesForm:
    """The rules form with one points field per category (``category_<id>``)."""
    extra = {
        f"category_{c.id}": _whole(
            category_name(c),
            MAX_CATEGORY_POINTS,
            _l("Enter a whole number from 0 to %(max)d.", max=MAX_CATEGORY_POINTS),
        )
        for c in categories
    }
    form_class = type("CommunityRulesForm", (RulesForm,), extra)
    return form_class(**kwargs)


class AdjustForm(PortalForm):
    points = WholeNumberField(
        _l("Points to add (negative to take away)"),
        validators=[
            between(
                -MAX_ADJUST_POINTS,
                MAX_ADJUST_POINTS,
                _l(
                    "Enter a number from %(min)d to %(max)d.",
                    min=-MAX_ADJUST_POINTS,
                    max=MAX_ADJUST_POINTS,
                ),
                required=False,
            )
        ],
    )
    hours = NumberField(
        _l("Hours to add (optional, negative to take away)"),
        places=2,
        validators=[
            between(
                -MAX_ADJUST_HOURS,
                MAX_ADJUST_HOURS,
                _l("Enter hours from -100 to 100, in steps of 0.01 at most."),
                places=2,
                required=False,
            )
        ],
        render_kw={"step": "0.25", "inputmode": "decimal"},
    )
    reason = TextAreaField(
        _l("Reason (shown in the history)"),
        validators=[
            DataRequired(
                message=_l("Give the reason for the adjustment; it is shown in the history.")
            ),
            Length(max=REASON_MAX, message=_l("At most %(max)d characters.")),
        ],
        render_kw={"maxlength": REASON_MAX, "rows": 2},
    )


class ReverseForm(PortalForm):
    reason = StringField(
        _l("Reason for the reversal"),
        validators=[
            DataRequired(message=_l("Give the reason for the reversal.")),
            Length(max=REASON_MAX, message=_l("At most %(max)d characters.")),
        ],
        render_kw={"maxlength": REASON_MAX},
    )


def _safe_int(value) -> int | None:
    """A select's value as an id; blank or nonsense means none."""
    try:
        return optional_int(value)
    except (TypeError, ValueError):
        return None


def _kind_choices(blank):
    return options([("", blank), *ENTRY_KIND_LABELS.items()])


class LedgerFilterForm(PortalForm):
    """Read from the query string; a value that does not parse simply means "any"."""

    class Meta:
        csrf = False

    q = StringField(_l("Name"))
    kind = SelectField(_l("Kind"), choices=_kind_choices(_l("All kinds")), validate_choice=False)
    date_from = DateField(_l("From"), validators=[Optional()])
    date_to = DateField(_l("To"), validators=[Optional()])
    community = SelectField(_l("Community"), coerce=_safe_int, validate_choice=False)


class PartyFilterForm(PortalForm):
    class Meta:
        csrf = False

    year = SelectField(_l("Year"), coerce=_safe_int, validate_choice=False)
    community = SelectField(_l("Community"), coerce=_safe_int, validate_choice=False)


PERIOD_CHOICES = options(PERIOD_LABELS.items())
