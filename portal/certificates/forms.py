"""The form that asks for an hours certificate."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import DateField, StringField
from wtforms.validators import InputRequired, Length

from portal.core.forms import PortalForm
from portal.places.forms import strip


class CertificateForm(PortalForm):
    """A period and, optionally, an identity card number (checked, then only kept masked)."""

    period_start = DateField(_l("From"), validators=[InputRequired()])
    period_end = DateField(_l("To"), validators=[InputRequired()])
    id_number = StringField(
        _l("Identity card number (optional)"),
        filters=[strip],
        validators=[Length(max=30)],
    )
