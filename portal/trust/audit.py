"""The audit log's only writer. ``record`` adds a row to the current transaction (services never
commit); ``record_now`` writes it in its own short transaction, for outcomes that must be kept
even when the request's work is rolled back (a failed sign-in, a refused permission)."""

from __future__ import annotations

from flask import has_request_context, request
from flask_login import current_user

from portal.database import utcnow
from portal.extensions import db
from portal.trust.models import AUDIT_ACTIONS, AUDIT_OUTCOMES, AuditEntry


def client_address() -> str:
    """The client's address as the app sees it (ProxyFix, when configured, has already put the
    trusted proxy's X-Forwarded-For into remote_addr; a forged header is never read here)."""
    if not has_request_context():
        return ""
    return (request.remote_addr or "")[:64]


def _entry(
    action: str,
    outcome: str,
    *,
    target_type: str | None,
    target_id: int | None,
    detail: str,
    community_id: int | None,
    actor_user_id: int | None,
    actor_name: str | None,
) -> AuditEntry:
    if action not in AUDIT_ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if outcome not in AUDIT_OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    user = current_user if has_request_context() else None
    signed_in = bool(user is not None and user.is_authenticated)
    if actor_user_id is None and signed_in:
        actor_user_id = user.id
    if actor_name is None:
        actor_name = user.username if signed_in else ""
    if community_id is None and signed_in:
        community_id = user.community_id
    return AuditEntry(
        action=action,
        outcome=outcome,
        target_type=target_type,
        target_id=target_id,
        detail=detail[:200],
        community_id=community_id,
        actor_user_id=actor_user_id,
        actor_name=(actor_name or "")[:40],
        address=client_address(),
    )


def record(
    action: str,
    outcome: str = "ok",
    *,
    target_type: str | None = None,
    target_id: int | None = None,
    detail: str = "",
    community_id: int | None = None,
    actor_user_id: int | None = None,
    actor_name: str | None = None,
) -> AuditEntry:
    """Add an audit row to the current unit of work (committed with it)."""
    entry = _entry(
        action,
        outcome,
        target_type=target_type,
        target_id=target_id,
        detail=detail,
        community_id=community_id,
        actor_user_id=actor_user_id,
        actor_name=actor_name,
    )
    db.session.add(entry)
    return entry


def record_now(action: str, outcome: str = "ok", **kwargs: object) -> None:
    """Write an audit row in its own transaction, whatever happens to the request's."""
    entry = _entry(
        action,
        outcome,
        target_type=kwargs.get("target_type"),  # type: ignore[arg-type]
        target_id=kwargs.get("target_id"),  # type: ignore[arg-type]
        detail=str(kwargs.get("detail", "")),
        community_id=kwargs.get("community_id"),  # type: ignore[arg-type]
        actor_user_id=kwargs.get("actor_user_id"),  # type: ignore[arg-type]
        actor_name=kwargs.get("actor_name"),  # type: ignore[arg-type]
    )
    values = {c.key: getattr(entry, c.key) for c in AuditEntry.__table__.columns if c.key != "id"}
    values["created_at"] = values["created_at"] or utcnow()
    with db.engine.begin() as connection:
        connection.execute(AuditEntry.__table__.insert().values(**values))
