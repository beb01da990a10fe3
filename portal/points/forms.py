"""Forms of the points pages: the history filters, the leaderboard filters and the consent toggle,
with the translated labels of ledger kinds."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, DateField, SelectField
from wtforms.validators import Optional

from portal.core.forms import PortalForm
from portal.core.labels import LABELS
from portal.volunteers.forms import choices, optional_int, options

# What a ledger row is, as a person reads it in their history.
KIND_LABELS = LABELS["entry_kind"]

# The history filter offers groups of kinds: nobody thinks of "door_watch" apart from duties.
GROUP_LABELS = {
    "duty": _l("Patrols and duties"),
    "help": _l("Help and mediation"),
    "party_report": _l("Party member reporting"),
    "correction": _l("Adjustments and corrections"),
    "redemption": _l("Rewards redeemed"),
}

SCOPE_LABELS = {
    "grid": _l("Grid"),
    "community": _l("Community"),
    "subdistrict": _l("Subdistrict"),
}

PERIOD_LABELS = LABELS["points_period"]


class HistoryFilterForm(PortalForm):
    """Read from the query string; a value that does not parse simply means "any"."""

    class Meta:
        csrf = False

    kind = SelectField(
        _l("Kind"),
        choices=options([("", _l("All kinds")), *GROUP_LABELS.items()]),
        validate_choice=False,
    )
    date_from = DateField(_l("From"), validators=[Optional()])
    date_to = DateField(_l("To"), validators=[Optional()])


class LeaderboardForm(PortalForm):
    """Filled with the board actually shown (defaults resolved), not with the raw query string."""

    class Meta:
        csrf = False

    scope = SelectField(_l("Board"), choices=options(SCOPE_LABELS.items()), validate_choice=False)
    community = SelectField(_l("Community"), coerce=optional_int, validate_choice=False)
    grid = SelectField(_l("Grid"), coerce=optional_int, validate_choice=False)
    period = SelectField(
        _l("Period"), choices=options(PERIOD_LABELS.items()), validate_choice=False
    )
    type = SelectField(
        _l("Volunteer type"),
        choices=choices("volunteer_type", _l("All types")),
        validate_choice=False,
    )


class ListingForm(PortalForm):
    """Consent to appear on leaderboards: the opt-in button sends ``listed``, withdrawing not."""

    listed = BooleanField(_l("Show me on leaderboards"))
