"""Forms of the rewards shop: a reward, a cancellation, and the redemption filters.

The forms only read what was typed; the rules (ranges, the window, stock on creation) live in
portal.rewards.services.check_reward, so every message shows at once.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import BooleanField, DateField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import Optional

from portal.core.forms import PortalForm
from portal.places.forms import strip
from portal.rewards.services import RewardValues
from portal.volunteers.forms import options


class WholeNumberField(IntegerField):
    """An integer field whose "not a number" message says what to type."""

    def process_formdata(self, valuelist):
        if not valuelist or valuelist[0].strip() == "":
            self.data = None
            return
        try:
            self.data = int(valuelist[0].strip())
        except ValueError:
            self.data = None
            raise ValueError(_l("Enter a whole number, for example 50.")) from None


class LenientDateField(DateField):
    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        try:
            super().process_formdata([valuelist[0].strip()])
        except ValueError:
            self.data = None
            raise ValueError(_l("Enter a date such as 2026-12-01.")) from None


class RewardForm(PortalForm):
    name = StringField(_l("Name"), filters=[strip], render_kw={"required": True})
    description = TextAreaField(_l("Description"), filters=[strip])
    # What a photo may be is decided by decoding it (portal.core.photos), not by its name.
    photo = FileField(_l("Photo (optional)"))
    remove_photo = BooleanField(_l("Remove the current photo"))
    cost = WholeNumberField(_l("Cost in points"), validators=[Optional()])
    stock = WholeNumberField(_l("Units in stock"), validators=[Optional()])
    per_person_limit = WholeNumberField(_l("Limit per person"), validators=[Optional()])
    available_from = LenientDateField(_l("Available from"), validators=[Optional()])
    available_until = LenientDateField(_l("Available until"), validators=[Optional()])
    active = BooleanField(_l("On offer"), default=True)

    def values(self) -> RewardValues:
        return RewardValues(
            name=self.name.data or "",
            description=self.description.data or "",
            cost=self.cost.data,
            stock=self.stock.data,
            per_person_limit=self.per_person_limit.data,
            available_from=self.available_from.data,
            available_until=self.available_until.data,
            active=bool(self.active.data),
        )

    def fields_with_errors(self) -> set[str]:
        return {name for name, errors in self.errors.items() if errors}


class CancelForm(PortalForm):
    reason = TextAreaField(_l("Reason for the cancellation"), filters=[strip])


STATUS_LABELS = {
    "issued": _l("Waiting to be handed over"),
    "handed_over": _l("Handed over"),
    "cancelled": _l("Cancelled"),
}


class RedemptionFilterForm(PortalForm):
    class Meta:
        csrf = False  # a GET search form

    status = SelectField(
        _l("Status"),
        choices=options([("", _l("All statuses")), *STATUS_LABELS.items()]),
        validate_choice=False,
    )
    code = StringField(_l("Voucher code"))
    reward = SelectField(_l("Reward"), validate_choice=False)
