"""The resident's request form; what is allowed is decided by intake.create_request."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import MultipleFileField
from wtforms import BooleanField, RadioField, SelectField, StringField, TextAreaField

from portal.core.forms import PortalForm
from portal.help.intake import LABELS, category_name
from portal.help.models import Category
from portal.volunteers.forms import options


class RequestForm(PortalForm):
    # Only narrows the category list (by htmx); the category itself is what counts.
    major = SelectField(_l("Kind of help"), validate_choice=False)
    category = SelectField(_l("Category"), validate_choice=False)
    # Lengths and choices are checked by the service, so that every message shows at once.
    description = TextAreaField(_l("What do you need?"), render_kw={"required": True})
    where = RadioField(
        _l("Where"), choices=options(LABELS["where"].items()), default="household",
        validate_choice=False,
    )  # fmt: skip
    building = SelectField(_l("Building"), validate_choice=False)
    address = StringField(_l("Address"))
    preferred_time = StringField(_l("Preferred time (optional)"))
    urgency = RadioField(
        _l("Urgency"), choices=options(LABELS["urgency"].items()), default="normal",
        validate_choice=False,
    )  # fmt: skip
    # What a photo may be is decided by decoding it (portal.core.photos), not by its name.
    photos = MultipleFileField(_l("Photos (optional, up to 3)"))
    # Off unless ticked: only then may Open311's public list show the description.
    show_publicly = BooleanField(_l("May be shown publicly"), default=False)
    resident = StringField(_l("On behalf of (phone or name of a resident of your grids)"))


def category_choices(minors: list[Category]) -> dict[str, list[tuple[str, str]]]:
    """Minor categories grouped by their major, for a select with optgroups."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for minor in minors:
        groups.setdefault(category_name(minor.parent), []).append(
            (str(minor.id), category_name(minor))
        )
    return groups


def fill_choices(
    form: RequestForm, majors: list[Category], minors: list[Category], buildings: list
) -> dict[str, list[tuple[str, str]]]:
    """Set the select options; returns the category options grouped by major (only the
    chosen major's when one is chosen)."""
    form.major.choices = options(
        [("", _l("All kinds")), *((str(m.id), category_name(m)) for m in majors)]
    )
    if form.major.data and any(str(m.id) == form.major.data for m in majors):
        minors = [c for c in minors if str(c.parent_id) == form.major.data]
    form.category.choices = options((str(c.id), category_name(c)) for c in minors)
    form.building.choices = options(
        [("", _l("Choose…")), *((str(b.id), f"{b.estate.name} {b.name}") for b in buildings)]
    )
    return category_choices(minors)
