"""Forms used on the day of a shift: the check-in code, attendance, door visits, the report."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from portal.core.forms import PortalForm
from portal.core.labels import choices as label_choices
from portal.patrols.attendance import DESCRIPTION_MAX, LOCATION_MAX, NOTE_MAX, SUMMARY_MAX
from portal.patrols.codes import normalise_code
from portal.volunteers.forms import options


class CheckinForm(PortalForm):
    code = StringField(
        _l("Check-in code"),
        filters=[normalise_code],
        validators=[
            DataRequired(message=_l("Enter the check-in code.")),
            Length(max=12, message=_l("Wrong code. Check it with the shift leader.")),
        ],
    )


class AttendanceForm(PortalForm):
    # Unknown values get the service's own message (attendance.mark_attendance).
    attendance = SelectField(
        _l("Attendance"), choices=options(label_choices("attendance")), validate_choice=False
    )


class DoorVisitForm(PortalForm):
    outcome = SelectField(
        _l("Outcome"), choices=options(label_choices("visit_outcome")), validate_choice=False
    )
    note = StringField(_l("Note"), validators=[Length(max=NOTE_MAX)])


class ReportForm(PortalForm):
    summary = TextAreaField(
        _l("What the patrol saw"),
        validators=[
            DataRequired(message=_l("Write what the patrol saw.")),
            Length(max=SUMMARY_MAX),
        ],
    )


class HazardForm(PortalForm):
    description = TextAreaField(
        _l("Hazard"),
        validators=[
            DataRequired(message=_l("Describe the hazard.")),
            Length(max=DESCRIPTION_MAX),
        ],
    )
    location = StringField(_l("Where"), validators=[Length(max=LOCATION_MAX)])
    # What a photo may be is decided by decoding it (portal.core.photos), not by its name.
    photo = FileField(_l("Photo (optional)"))
