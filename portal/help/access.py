"""Who is who for a request: the parties of the loop, and the scoped lookup of a request.

A party is how a user stands towards one request (see workflow.py): its requester, the staff
who handle it, the volunteer holding it, or an approved volunteer who may claim it from the board.
"""

from __future__ import annotations

from flask import abort, g, has_request_context
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.access import get_scoped_or_404, require_grid
from portal.auth.models import User
from portal.extensions import db
from portal.help.models import OPEN_STATUSES, HelpRequest
from portal.help.workflow import BOARD, HOLDER, REQUESTER, STAFF


def _worker_grid_ids(user: User) -> set[int]:
    from flask_login import current_user

    from portal.access import grid_ids
    from portal.places.models import grid_worker

    if user is current_user._get_current_object():
        return set(grid_ids() or [])  # cached for the request
    return set(
        db.session.scalars(select(grid_worker.c.grid_id).where(grid_worker.c.user_id == user.id))
    )


def _board_eligible(user: User, request: HelpRequest) -> bool:
    """An approved volunteer of the request's grid, for an unheld neighbour-help request."""
    if user.person_id is None or request.grid_id is None or request.volunteer_id is not None:
        return False
    if request.category.kind != "neighbour_help":
        return False
    from portal.volunteers.models import Volunteer

    # Asked twice in one request (the access check, then the action): read once per request.
    known = g.setdefault("_volunteer_grids", {}) if has_request_context() else {}
    key = (user.person_id, request.community_id)
    if key not in known:
        known[key] = db.session.scalar(
            select(Volunteer.grid_id).where(
                Volunteer.person_id == user.person_id,
                Volunteer.status == "approved",
                Volunteer.community_id == request.community_id,
            )
        )
    volunteer_grid = known[key]
    return volunteer_grid is not None and volunteer_grid == request.grid_id


def parties_for(user: User, request: HelpRequest) -> set[str]:
    """How ``user`` stands towards ``request``: a subset of requester, staff, holder, board."""
    parties: set[str] = set()
    if user is None or not getattr(user, "is_authenticated", False):
        return parties
    if (user.person_id is not None and user.person_id == request.requester_id) or (
        request.created_by_id is not None and user.id == request.created_by_id
    ):
        parties.add(REQUESTER)
    if (
        user.role == "secretary"
        and user.community_id == request.community_id
        or (
            user.role == "grid_worker"
            and user.community_id == request.community_id
            and request.grid_id is not None
            and request.grid_id in _worker_grid_ids(user)
        )
    ):
        parties.add(STAFF)
    if user.person_id is not None and user.person_id == request.volunteer_id:
        parties.add(HOLDER)
    if _board_eligible(user, request):
        parties.add(BOARD)
    return parties


def may_view(user: User, request: HelpRequest, parties: set[str]) -> bool:
    """Whether ``user`` (already inside the request's community) may see the request at all."""
    if user.role in ("secretary", "subdistrict_admin"):
        return True
    if REQUESTER in parties or STAFF in parties or HOLDER in parties:
        return True
    return BOARD in parties and request.status in OPEN_STATUSES


# What a request's pages show about it, loaded with it (one query, not one per relation).
_DETAIL_OPTIONS = [
    joinedload(HelpRequest.category),
    joinedload(HelpRequest.requester),
    joinedload(HelpRequest.volunteer),
    joinedload(HelpRequest.household),
    joinedload(HelpRequest.building),
]


def get_request_or_404(request_id: int) -> HelpRequest:
    """The request, or 404 outside the community, outside a grid worker's grids, or for a
    resident/volunteer who is no party to it."""
    req = get_scoped_or_404(HelpRequest, request_id, options=_DETAIL_OPTIONS)
    parties = parties_for(current_user, req)
    if current_user.role == "grid_worker":
        if not parties & {REQUESTER, HOLDER}:
            require_grid(req.grid_id)
    elif not may_view(current_user, req, parties):
        abort(404)
    return req
