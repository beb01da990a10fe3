"""The text of a notification, rendered from its kind and params in the reader's language.

Notifications store a kind and parameters, never text, so each reader sees them in the language
they chose, and a message written later in the catalogue also reaches old notifications.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

# Short headings, e.g. for the list page and for an SMS subject.
HEADINGS = {
    "shift_cancelled": _l("Shift cancelled"),
    "waitlist_promoted": _l("You have a place"),
    "shift_reminder_24h": _l("Shift reminder"),
    "shift_reminder_2h": _l("Shift starting soon"),
    "shift_changed": _l("Shift changed"),
    "request_accepted": _l("Request accepted"),
    "request_dispatched": _l("A request for you"),
    "request_done": _l("Request done"),
    "request_rejected": _l("Request rejected"),
    "request_escalated": _l("Overdue request"),
    "request_reopened": _l("Request reopened"),
    "reward_handed_over": _l("Reward handed over"),
    "redemption_cancelled": _l("Redemption cancelled"),
    "help_visit_missed": _l("Help visit missed"),
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


def _category(p: Mapping[str, str]) -> str:
    """The request's category in the reader's language (English name when reading English)."""
    locale = get_locale()
    if locale is not None and locale.language == "en" and p.get("category_en"):
        return p["category_en"]
    return p["title"]


def _request_accepted(p: Mapping[str, str]) -> str:
    return _(
        "Your request no. %(number)s (“%(title)s”) was accepted and is being handled.",
        number=p["number"],
        title=_category(p),
    )


def _request_dispatched(p: Mapping[str, str]) -> str:
    return _(
        "Request no. %(number)s (“%(title)s”) was given to you. Please open it for the details.",
        number=p["number"],
        title=_category(p),
    )


def _request_done(p: Mapping[str, str]) -> str:
    return _(
        "Your request no. %(number)s (“%(title)s”) is done. Please confirm the result and rate it.",
        number=p["number"],
        title=_category(p),
    )


def _request_rejected(p: Mapping[str, str]) -> str:
    return _(
        "Your request no. %(number)s (“%(title)s”) was rejected. Open it to see the reason.",
        number=p["number"],
        title=_category(p),
    )


def _request_escalated(p: Mapping[str, str]) -> str:
    return _(
        "Request no. %(number)s (“%(title)s”) is past its time limit and needs your attention.",
        number=p["number"],
        title=_category(p),
    )


def _request_reopened(p: Mapping[str, str]) -> str:
    return _(
        "The result of request no. %(number)s (“%(title)s”) was not accepted: it is open again.",
        number=p["number"],
        title=_category(p),
    )


def _reward_handed_over(p: Mapping[str, str]) -> str:
    return _(
        "You collected “%(reward)s” (voucher %(code)s). Enjoy it, and thank you for your service!",
        reward=p["reward"],
        code=p["code"],
    )


def _redemption_cancelled(p: Mapping[str, str]) -> str:
    return _(
        "Your redemption of “%(reward)s” (voucher %(code)s) was cancelled and the points were "
        "given back. Reason: %(reason)s",
        reward=p["reward"],
        code=p["code"],
        reason=p["reason"],
    )


def _help_visit_missed(p: Mapping[str, str]) -> str:
    return _(
        "Nobody checked in for the help visit “%(title)s” on %(when)s. "
        "Please call the household to see that all is well.",
        title=p["title"],
        when=p["when"],
    )


RENDERERS: dict[str, Callable[[Mapping[str, str]], str]] = {
    "shift_cancelled": _shift_cancelled,
    "waitlist_promoted": _waitlist_promoted,
    "shift_reminder_24h": _reminder_24h,
    "shift_reminder_2h": _reminder_2h,
    "shift_changed": _shift_changed,
    "request_accepted": _request_accepted,
    "request_dispatched": _request_dispatched,
    "request_done": _request_done,
    "request_rejected": _request_rejected,
    "request_escalated": _request_escalated,
    "request_reopened": _request_reopened,
    "reward_handed_over": _reward_handed_over,
    "redemption_cancelled": _redemption_cancelled,
    "help_visit_missed": _help_visit_missed,
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
