"""The notification bell and list: every signed-in user sees only their own notifications."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from portal.extensions import db
from portal.htmx import render, wants_fragment
from portal.notifications import services
from portal.notifications.messages import message_heading, message_text
from portal.notifications.models import Notification
from portal.security import is_safe_next

bp = Blueprint("notifications", __name__)

# Sent when notifications were read, so the bell refreshes; the shift pages send signup-changed.
READ_EVENT = "notifications-read"


@bp.app_template_global("unread_notifications")
def unread_notifications() -> int:
    """The bell's number for the signed-in user (one COUNT query, only where the bell shows)."""
    if not current_user.is_authenticated:
        return 0
    if "unread_notifications" not in g:  # the bell and the list page share one query
        g.unread_notifications = services.unread_count(current_user.id)
    return g.unread_notifications


@bp.app_template_filter("notification_text")
def notification_text(notification: Notification) -> str:
    return message_text(notification.kind, notification.params)


@bp.app_template_filter("notification_heading")
def notification_heading(notification: Notification) -> str:
    return message_heading(notification.kind)


def _page() -> int:
    return max(request.values.get("page", 1, type=int) or 1, 1)


def _list(trigger: str | None = None):
    pagination = db.paginate(
        services.notifications_query(current_user.id),
        page=_page(),
        per_page=current_app.config["PAGE_SIZE"],
        error_out=False,
    )
    return render(
        "notifications/index.html",
        "notifications/_list.html",
        trigger=trigger,
        pagination=pagination,
    )


@bp.get("/notifications")
@login_required
def index():
    return _list()


@bp.get("/notifications/bell")
@login_required
def bell():
    if not wants_fragment():
        return redirect(url_for("notifications.index"), code=303)
    return render("notifications/index.html", "notifications/_bell.html")


@bp.post("/notifications/<int:notification_id>/open")
@login_required
def open(notification_id: int):  # noqa: A001  (the endpoint's name is notifications.open)
    notification = services.get_own_notification(current_user.id, notification_id)
    if notification is None:
        abort(404)
    services.mark_read(notification)
    db.session.commit()
    link = notification.link
    target = link if is_safe_next(link) else url_for("notifications.index")
    return redirect(target, code=303)


@bp.post("/notifications/read-all")
@login_required
def read_all():
    changed = services.mark_all_read(current_user.id)
    db.session.commit()
    if wants_fragment():
        return _list(trigger=READ_EVENT)
    if changed:
        flash(_("All notifications are marked as read."), "success")
    page = _page()
    return redirect(url_for("notifications.index", page=page if page > 1 else None), code=303)
