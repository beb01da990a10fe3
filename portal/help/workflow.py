"""The closed loop 下—接—派—验—评 as one table of (action → who, from which states, to which state).

Every change of state goes through ``apply``: a conditional UPDATE on the current status (so two
people acting at once cannot both win), a timeline event with actor and time, nothing else.
Anything the table does not allow raises TransitionRefused (the view answers 409).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update

from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.help.models import HelpRequest, RequestEvent

# Who may act, as seen from the request: its requester, the staff who handle its grid, the
# volunteer who holds it, or an approved volunteer of its grid (the open help board).
REQUESTER = "requester"
STAFF = "staff"  # the community's secretary, or a grid worker of the request's grid
HOLDER = "holder"  # the volunteer the request is dispatched to
BOARD = "board"  # any approved volunteer of the grid, for neighbour-help requests


@dataclass(frozen=True)
class Rule:
    parties: frozenset[str]
    sources: frozenset[str]
    target: str | None  # None: no change of state (a comment)


def _rule(parties: set[str], sources: set[str], target: str | None) -> Rule:
    return Rule(frozenset(parties), frozenset(sources), target)


OPEN = {"submitted", "accepted", "dispatched", "done"}

TRANSITIONS: dict[str, Rule] = {
    "accept": _rule({STAFF}, {"submitted"}, "accepted"),  # 接
    "reject": _rule({STAFF}, {"submitted", "accepted"}, "rejected"),
    "dispatch": _rule({STAFF}, {"accepted", "dispatched"}, "dispatched"),  # 派 (or re-dispatch)
    "claim": _rule({BOARD}, {"submitted", "accepted"}, "dispatched"),
    "release": _rule({HOLDER}, {"dispatched"}, "accepted"),
    "complete": _rule({HOLDER, STAFF}, {"dispatched"}, "done"),
    "verify": _rule({STAFF}, {"done"}, "verified"),  # 验 by the grid worker
    "confirm": _rule({REQUESTER}, {"done"}, "verified"),  # 验 by the resident
    "reopen": _rule({REQUESTER, STAFF}, {"done"}, "dispatched"),  # result not accepted
    "rate": _rule({REQUESTER}, {"verified"}, "rated"),  # 评
    "cancel": _rule({REQUESTER, STAFF}, {"submitted", "accepted", "dispatched"}, "cancelled"),
    "comment": _rule({REQUESTER, STAFF, HOLDER}, OPEN | {"verified"}, None),
}

# When each state is entered, this timestamp column is set.
STAMPS = {
    "accepted": "accepted_at",
    "dispatched": "dispatched_at",
    "done": "done_at",
    "verified": "verified_at",
    "rated": "rated_at",
}
CLOSED = {"verified", "rated", "rejected", "cancelled"}


class TransitionRefused(Exception):
    """The action is not allowed for this party in this state (or someone else acted first)."""


def allowed(action: str, parties: set[str], status: str) -> bool:
    rule = TRANSITIONS.get(action)
    return bool(rule and rule.parties & parties and status in rule.sources)


def allowed_actions(parties: set[str], status: str) -> list[str]:
    """Actions these parties may take now, in the table's order (for buttons)."""
    return [action for action in TRANSITIONS if allowed(action, parties, status)]


def apply(
    request: HelpRequest,
    action: str,
    *,
    parties: set[str],
    actor_id: int | None,
    note: str = "",
    values: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> RequestEvent:
    """Move ``request`` by ``action`` and write the timeline event; flushes, never commits.

    ``values`` are extra columns set in the same conditional UPDATE (e.g. volunteer_id).
    Raises TransitionRefused when the table forbids it or the state changed meanwhile.
    """
    if not allowed(action, parties, request.status):
        raise TransitionRefused(action)
    rule = TRANSITIONS[action]
    now = now or now_utc()
    source = request.status
    if rule.target is not None:
        changes: dict[str, Any] = {"status": rule.target, "updated_at": now, **(values or {})}
        if rule.target in STAMPS:
            changes[STAMPS[rule.target]] = now
        if rule.target in CLOSED and source not in CLOSED:
            changes["closed_at"] = now  # the loop closed; rating later does not move it
        won = db.session.execute(
            update(HelpRequest)
            .where(HelpRequest.id == request.id, HelpRequest.status == source)
            .values(**changes)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won != 1:
            raise TransitionRefused(action)
    event = RequestEvent(
        community_id=request.community_id,
        request_id=request.id,
        actor_id=actor_id,
        action=action,
        from_status=source,
        to_status=rule.target or source,
        note=note,
        at=now,
    )
    db.session.add(event)
    db.session.flush()
    db.session.refresh(request)
    return event
