"""Translated labels for every stored code value (roles, types, kinds, statuses)."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

from portal.core.validators import mask_name, mask_phone

LABELS = {
    "role": {
        "resident": _l("Resident"),
        "volunteer": _l("Volunteer"),
        "grid_worker": _l("Grid worker"),
        "secretary": _l("Community secretary"),
        "subdistrict_admin": _l("Subdistrict admin"),
    },
    "volunteer_type": {
        "red_armband": _l("Red armband patrol"),
        "party_member": _l("Party member (reporting)"),
        "five_elders": _l("Five elders"),
        "building_captain": _l("Building captain"),
        "mediator": _l("Mediator"),
    },
    "five_elder_kind": {
        "retired_cadre": _l("Retired cadre"),
        "veteran": _l("Veteran"),
        "expert": _l("Retired expert"),
        "teacher": _l("Retired teacher"),
        "model_worker": _l("Former model worker"),
    },
    "volunteer_status": {
        "pending": _l("Awaiting approval"),
        "approved": _l("Approved"),
        "rejected": _l("Rejected"),
    },
    "entry_kind": {
        "patrol": _l("Patrol"),
        "door_watch": _l("Door-to-door watch"),
        "duty": _l("Other duty"),
        "help": _l("Neighbour help"),
        "mediation": _l("Mediation"),
        "party_report": _l("Party member reporting"),
        "adjustment": _l("Adjustment"),
        "redemption": _l("Reward redeemed"),
        "reversal": _l("Correction (reversal)"),
    },
    "points_period": {"month": _l("This month"), "year": _l("This year"), "all": _l("All time")},
    "estate_kind": {
        "ordinary": _l("Residential estate"),
        "resettlement": _l("Resettlement area"),
    },
    "shift_kind": {
        "patrol": _l("Patrol"),
        "door_watch": _l("Door-to-door watch"),
        "other": _l("Other duty"),
        "help_visit": _l("Household help visit"),
    },
    "shift_status": {"scheduled": _l("Scheduled"), "cancelled": _l("Cancelled")},
    "signup_status": {
        "confirmed": _l("Signed up"),
        "waitlisted": _l("On the waitlist"),
        "cancelled": _l("Cancelled"),
    },
    "attendance": {"present": _l("Present"), "no_show": _l("No-show")},
    "visit_outcome": {
        "ok": _l("All well"),
        "needs_help": _l("Needs help"),
        "not_home": _l("Not at home"),
    },
    "sex": {"male": _l("Male"), "female": _l("Female")},
    "volunteer_sex": {"female": _l("Women volunteers only"), "male": _l("Men volunteers only")},
    "help_visit_status": {
        "done": _l("Done"),
        "problem": _l("Something is wrong"),
        "missed": _l("Missed"),
    },
    # What an audit row is about; a refusal names the page (its endpoint), shown as it is.
    "audit_target": {
        "person": _l("Person"),
        "user": _l("Account"),
        "export": _l("Export"),
    },
    "audit_action": {
        "sign_in": _l("Signed in"),
        "sign_in_failed": _l("Failed sign-in"),
        "sign_out": _l("Signed out"),
        "password_changed": _l("Password changed"),
        "permission_refused": _l("Access refused"),
        "reveal": _l("Full number shown"),
        "export": _l("Data exported"),
        "role_changed": _l("Role changed"),
        "account_disabled": _l("Account disabled"),
        "account_enabled": _l("Account enabled"),
        "account_verified": _l("Account matched to a household"),
        "approval": _l("Registration approved"),
        "rejection": _l("Registration rejected"),
        "consent_given": _l("Consent given"),
        "consent_withdrawn": _l("Consent withdrawn"),
        "data_download": _l("Personal data downloaded"),
        "erasure": _l("Personal data erased"),
    },
    "audit_outcome": {"ok": _l("Done"), "refused": _l("Refused"), "failed": _l("Failed")},
    "care_flag": {
        "lives_alone": _l("Elderly, living alone"),
        "empty_nest": _l("Empty nest"),
        "disabled": _l("Disabled"),
    },
    "consent_purpose": {
        "care_flags": _l("Care needs (living alone, empty nest, disability)"),
        "health_notes": _l("Health notes"),
        "checkin_location": _l("Location at shift check-in"),
        "leaderboard": _l("Appearing on leaderboards"),
        "regular_help": _l("Regular help visits"),
    },
}


def label(group: str, value: str | None) -> str:
    """The translated label of ``value`` in ``group``; the raw value if unknown."""
    if value is None:
        return ""
    return str(LABELS[group].get(value, value))


def choices(group: str) -> list[tuple[str, object]]:
    """(value, lazy label) pairs for a WTForms SelectField/RadioField."""
    return list(LABELS[group].items())


def init_app(app: Flask) -> None:
    app.jinja_env.filters["label"] = lambda value, group: label(group, value)
    app.jinja_env.filters["mask_phone"] = mask_phone
    app.jinja_env.filters["mask_name"] = mask_name
