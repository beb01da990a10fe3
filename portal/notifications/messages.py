"""The text of a notification, rendered from its kind and params in the reader's language.

Notifications store a kind and parameters, never text, so each reader sees them in the language
they chose, and a message written later in the catalogue also reaches old notifications.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

# Short headings, e.g. for the list page and for an SMS subject.
HEADINGS = {
    "shift_cancelled": _l("Shift cancelled"),
    "waitlist_promoted": _l("You have a place"),
    "shift_reminder_24h": _l("Shift reminder"),
    "shift_reminder_2h": _l("Shift starting soon"),
    "shift_changed": _l("Shift changed"),
}


def _shift_cancelled(p: Mapping[str, str]) -> str:
    return _(
        "The shift “%(title)s” on %(when)s was cancelled. You no longer need to come.",
        title=p["title"],
        when=p["when"],
    )


def _waitlist_promoted(p: Mapping[str, str]) -> str:
    return _(
        "A place came free: you now have a place on “%(title)s” on %(when)s.",
        title=p["title"],
        when=p["when"],
    )


def _reminder_24h(p: Mapping[str, str]) -> str:
    return _(
        "Reminder: your shift “%(title)s” starts at %(when)s.",
        title=p["title"],
        when=p["when"],
    )


def _reminder_2h(p: Mapping[str, str]) -> str:
    return _(
        "Starting soon: your shift “%(title)s” begins at %(when)s. Please check in on arrival.",
        title=p["title"],
        when=p["when"],
    )


def _shift_changed(p: Mapping[str, str]) -> str:
    return _(
        "The shift “%(title)s” was changed; it now starts at %(when)s. Please check the details.",
        title=p["title"],
        when=p["when"],
    )


RENDERERS: dict[str, Callable[[Mapping[str, str]], str]] = {
    "shift_cancelled": _shift_cancelled,
    "waitlist_promoted": _waitlist_promoted,
    "shift_reminder_24h": _reminder_24h,
    "shift_reminder_2h": _reminder_2h,
    "shift_changed": _shift_changed,
}


def message_text(kind: str, params: Mapping[str, Any] | None) -> str:
    """The notification's sentence; an unknown kind or missing params give a generic text."""
    renderer = RENDERERS.get(kind)
    if renderer is not None:
        try:
            return renderer({k: str(v) for k, v in (params or {}).items()})
        except KeyError:
            pass
    return _("You have a new notification. Open it to see the details.")


def message_heading(kind: str) -> str:
    """A short heading for the kind; "Notification" for a kind this version does not know."""
    heading = HEADINGS.get(kind)
    return str(heading) if heading is not None else _("Notification")
