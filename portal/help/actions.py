"""Acting on a request: one entry point, ``perform``, for every step of the loop.

It checks the input of the action, moves the request through workflow.apply (the conditional
UPDATE that decides who wins), notifies the people concerned and records a volunteer's hours
once. Services flush, never commit; ``now`` is a parameter so that tests can fix the time.

Input fields (``data``) per action:
  accept: -          reject: reason (required)        dispatch: volunteer_id (Volunteer.id) or unit
  claim: -           release: -                       complete: note, and photo (optional)
  verify / confirm: note (optional)                   reopen: reason (required)
  rate: rating (1-5), comment (optional)              cancel: reason (optional)
  comment: text (required)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app, has_request_context, url_for
from flask_babel import gettext as _
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import joinedload

from portal.auth.models import User
from portal.core.errors import DomainError
from portal.core.photos import PreparedPhoto, store_photo
from portal.core.timeutil import now_utc
from portal.core.validators import text_problem
from portal.extensions import db
from portal.help.access import parties_for
from portal.help.models import OPEN_STATUSES, HelpRequest, RequestEvent, RequestPhoto
from portal.help.workflow import TRANSITIONS, TransitionRefused, allowed, apply
from portal.notifications.services import notify
from portal.places.models import Community
from portal.volunteers.models import Volunteer

ACTIONS = tuple(TRANSITIONS)
UNITS = ("property_company", "community_office", "grid_worker")
REASON_MAX = 500
NOTE_MAX = 1000
COMMENT_MAX = 500
QUARTER = Decimal("0.25")
MIN_HOURS = Decimal("0.25")
MAX_HOURS = Decimal("8")


# --- small helpers ------------------------------------------------------------------------


def request_link(request_id: int) -> str:
    """The request's page as a path (also outside a request, e.g. from the cron command)."""
    if has_request_context():
        return url_for("help.detail", request_id=request_id)
    adapter = current_app.url_map.bind("localhost")
    return adapter.build("help.detail", {"request_id": request_id})


def notification_params(req: HelpRequest) -> dict[str, Any]:
    return {"number": req.id, "title": req.category.name_zh, "category_en": req.category.name_en}


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    return str(value).strip() if value is not None else ""


def _bounded(data: Mapping[str, Any], name: str, limit: int, *, required: bool) -> str:
    value = _text(data, name)
    if required and not value:
        raise DomainError({name: _("Please fill in this field.")})
    if len(value) > limit:
        raise DomainError({name: _("At most %(n)d characters, please.", n=limit)})
    problem = text_problem(value)
    if problem:
        raise DomainError({name: problem})
    return value


def _user_of_person(person_id: int | None) -> int | None:
    if person_id is None:
        return None
    return db.session.scalar(
        select(User.id).where(User.person_id == person_id, User.active.is_(True))
    )


def _tell(user_id: int | None, kind: str, req: HelpRequest, event: RequestEvent | None) -> None:
    """Notify one account holder; ``event`` makes the key unique for kinds that can repeat."""
    if user_id is None:
        return
    key = f"{kind}:request:{req.id}" + (f":{event.id}" if event is not None else "")
    notify(
        user_id,
        kind,
        dedupe_key=key,
        params=notification_params(req),
        link=request_link(req.id),
        community_id=req.community_id,
    )


def quarter_hours(start: datetime, end: datetime) -> Decimal:
    """Hours between ``start`` and ``end`` rounded down to the quarter hour, within 0.25..8."""
    minutes = max(int((end - start) / timedelta(minutes=1)), 0)
    hours = Decimal(minutes // 15) * QUARTER
    return min(max(hours, MIN_HOURS), MAX_HOURS)


def record_hours(req: HelpRequest, now: datetime) -> bool:
    """Write the holder's hours once (dispatch to done); True when this call wrote them."""
    if req.volunteer_id is None or req.dispatched_at is None or req.done_at is None:
        return False
    hours = quarter_hours(req.dispatched_at, req.done_at)
    won = db.session.execute(
        update(HelpRequest)
        .where(HelpRequest.id == req.id, HelpRequest.hours_recorded_at.is_(None))
        .values(hours=hours, hours_recorded_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(req)
    if won == 1:
        # Points by category and the hours enter the ledger in the verifying transaction.
        from portal.points.ledger import award_request

        award_request(req)
    return won == 1


def _dispatch_values(req: HelpRequest, data: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The columns a dispatch sets, and the timeline note; DomainError for a bad choice."""
    raw_volunteer = _text(data, "volunteer_id")
    unit = _text(data, "unit")
    if raw_volunteer and unit:
        raise DomainError({"_": _("Choose either a volunteer or a handling unit, not both.")})
    if unit:
        if unit not in UNITS:
            raise DomainError({"unit": _("Choose a handling unit from the list.")})
        return {"volunteer_id": None, "handling_unit": unit}, unit
    if not raw_volunteer:
        raise DomainError({"volunteer_id": _("Choose a volunteer or a handling unit.")})
    volunteer = None
    if raw_volunteer.isdigit() and len(raw_volunteer) < 18:
        volunteer = db.session.scalar(
            select(Volunteer).where(
                Volunteer.id == int(raw_volunteer),
                Volunteer.community_id == req.community_id,
                Volunteer.status == "approved",
            )
        )
    if volunteer is None:
        raise DomainError({"volunteer_id": _("Choose an approved volunteer of this community.")})
    return {"volunteer_id": volunteer.person_id, "handling_unit": None}, ""


# --- the one entry point ------------------------------------------------------------------


def perform(
    req: HelpRequest,
    action: str,
    user: User,
    data: Mapping[str, Any],
    photo: PreparedPhoto | None = None,
    now: datetime | None = None,
) -> RequestEvent:
    """Take ``action`` on ``req`` as ``user``; returns the timeline event.

    Raises TransitionRefused when the table forbids it (or someone else acted first), and
    DomainError({field: message}) for bad input. Flushes, never commits.
    """
    now = now or now_utc()
    parties = parties_for(user, req)
    if not allowed(action, parties, req.status):
        raise TransitionRefused(action)
    note = ""
    values: dict[str, Any] = {}
    photo_file = None  # only "complete" keeps a photo (prepared before the write began)
    if action == "accept":
        values = {"handler_user_id": user.id}
    elif action == "reject":
        note = _bounded(data, "reason", REASON_MAX, required=True)
        values = {"reject_reason": note}
    elif action == "dispatch":
        values, note = _dispatch_values(req, data)
    elif action == "claim":
        values = {"volunteer_id": user.person_id, "handling_unit": None}
    elif action == "release":
        values = {"volunteer_id": None}
    elif action == "complete":
        note = _bounded(data, "note", NOTE_MAX, required=False)
        values = {"done_note": note}
        photo_file = photo
    elif action in ("verify", "confirm"):
        note = _bounded(data, "note", NOTE_MAX, required=False)
    elif action == "reopen":
        note = _bounded(data, "reason", REASON_MAX, required=True)
    elif action == "rate":
        raw = _text(data, "rating")
        if raw not in {"1", "2", "3", "4", "5"}:
            raise DomainError({"rating": _("Choose from 1 to 5 stars.")})
        comment = _bounded(data, "comment", COMMENT_MAX, required=False)
        values = {"rating": int(raw), "rating_comment": comment}
        note = comment
    elif action == "cancel":
        note = _bounded(data, "reason", REASON_MAX, required=False)
    elif action == "comment":
        note = _bounded(data, "text", NOTE_MAX, required=True)

    photo_name = None
    if photo_file is not None:
        # DomainError({"photo": ...}) for a refused file; deleted unless the work commits.
        photo_name = store_photo(photo_file)
    event = apply(req, action, parties=parties, actor_id=user.id, note=note, values=values, now=now)
    if photo_name:
        db.session.add(
            RequestPhoto(
                community_id=req.community_id, request_id=req.id, file=photo_name, stage="done"
            )
        )
        db.session.flush()
    _after(req, action, event, now)
    return event


def _after(req: HelpRequest, action: str, event: RequestEvent, now: datetime) -> None:
    """Notifications and hours that follow a successful step."""
    requester = _user_of_person(req.requester_id)
    if action == "accept":
        _tell(requester, "request_accepted", req, None)
    elif action == "reject":
        _tell(requester, "request_rejected", req, None)
    elif action == "dispatch":
        _tell(_user_of_person(req.volunteer_id), "request_dispatched", req, event)
    elif action == "complete":
        _tell(requester, "request_done", req, event)
    elif action == "reopen":
        holder = _user_of_person(req.volunteer_id)
        _tell(holder, "request_reopened", req, event)
        if req.handler_user_id is not None and req.handler_user_id != holder:
            _tell(req.handler_user_id, "request_reopened", req, event)
    elif action in ("verify", "confirm"):
        record_hours(req, now)


# --- time limits: escalation (督办) ---------------------------------------------------------


def _limit(req: HelpRequest) -> timedelta:
    """The request's time limit: its category's, or the span it was first given."""
    if req.category.time_limit_hours:
        return timedelta(hours=req.category.time_limit_hours)
    return max(req.due_at - req.created_at, timedelta(hours=1))


def _escalate(req: HelpRequest, old: int, recipients: list[int], now: datetime) -> bool:
    """Raise the level from ``old`` to ``old + 1`` once; the timeline and notifications follow."""
    new = old + 1
    won = db.session.execute(
        update(HelpRequest)
        .where(HelpRequest.id == req.id, HelpRequest.escalation_level == old)
        .values(escalation_level=new)
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        return False
    db.session.add(
        RequestEvent(
            community_id=req.community_id,
            request_id=req.id,
            actor_id=None,
            action="escalate",
            from_status=req.status,
            to_status=req.status,
            note=str(new),
            at=now,
        )
    )
    params = {**notification_params(req), "level": new}
    for user_id in recipients:
        notify(
            user_id,
            "request_escalated",
            dedupe_key=f"request_escalated:request:{req.id}:{new}",
            params=params,
            link=request_link(req.id),
            community_id=req.community_id,
        )
    return True


def escalate_overdue(now: datetime | None = None) -> int:
    """Escalate each open request past its deadline: level 1 to the community's secretaries,
    level 2 (past the deadline by the time limit again) to the subdistrict's admins.

    Each level happens once, however often this runs (conditional UPDATE on the level).
    Returns how many escalations were made. Flushes, never commits.
    """

    now = now or now_utc()
    requests = db.session.scalars(
        select(HelpRequest)
        .options(joinedload(HelpRequest.category))
        .where(
            HelpRequest.status.in_(OPEN_STATUSES),
            HelpRequest.due_at.is_not(None),
            HelpRequest.due_at < now,
            HelpRequest.escalation_level < 2,
        )
        .order_by(HelpRequest.due_at, HelpRequest.id)
    ).all()
    if not requests:
        return 0
    community_ids = {req.community_id for req in requests}
    subdistrict_of = dict(
        db.session.execute(
            select(Community.id, Community.subdistrict_id).where(Community.id.in_(community_ids))
        ).all()
    )
    staff = db.session.execute(
        select(User.id, User.role, User.community_id, User.subdistrict_id)
        .where(
            User.active.is_(True),
            or_(
                and_(User.role == "secretary", User.community_id.in_(community_ids)),
                and_(
                    User.role == "subdistrict_admin",
                    User.subdistrict_id.in_(set(subdistrict_of.values())),
                ),
            ),
        )
        .order_by(User.id)
    ).all()
    secretaries: dict[int, list[int]] = {}
    admins: dict[int, list[int]] = {}
    for user_id, role, community_id, subdistrict_id in staff:
        if role == "secretary":
            secretaries.setdefault(community_id, []).append(user_id)
        else:
            admins.setdefault(subdistrict_id, []).append(user_id)
    made = 0
    for req in requests:
        level = req.escalation_level
        if level == 0 and _escalate(req, 0, secretaries.get(req.community_id, []), now):
            made += 1
            level = 1
        if level == 1 and now > req.due_at + _limit(req):
            recipients = admins.get(subdistrict_of[req.community_id], [])
            if _escalate(req, 1, recipients, now):
                made += 1
    db.session.flush()
    return made
