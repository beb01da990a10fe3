"""The audit log's only writer. ``record`` adds a row to the current transaction (services never
commit); ``record_now`` writes it in its own short transaction, for outcomes that must be kept
even when the request's work is rolled back (a failed sign-in, a refused permission)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy import Row, Select, and_, event, func, or_, select

from portal.core.timeutil import local_to_utc
from portal.core.validators import mask_id_number, mask_phone
from portal.database import utcnow
from portal.extensions import db
from portal.trust.models import AUDIT_ACTIONS, AUDIT_OUTCOMES, AuditEntry

# A mainland mobile number or an identity number (18 characters, or the old 15 digits) standing
# alone in free text: masked before anything is written to the log.
_PHONE_IN_TEXT = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_ID_IN_TEXT = re.compile(r"(?<![\dA-Za-z])(?:\d{17}[\dXx]|\d{15})(?![\dA-Za-z])")


def scrub(text: str | None) -> str:
    """``text`` with every full phone or identity number in it masked (138****5678)."""
    if not text:
        return ""
    text = _ID_IN_TEXT.sub(lambda m: mask_id_number(m.group()), text)
    return _PHONE_IN_TEXT.sub(lambda m: mask_phone(m.group()), text)


def _refuse_change(_mapper, _connection, target: AuditEntry) -> None:
    raise RuntimeError("audit_log is append-only")


# The ORM half of append-only (the database half is a trigger): a loaded row that is changed or
# deleted in a session fails at flush, on either engine.
event.listen(AuditEntry, "before_update", _refuse_change)
event.listen(AuditEntry, "before_delete", _refuse_change)


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
        detail=scrub(detail)[:200],
        community_id=community_id,
        actor_user_id=actor_user_id,
        # A failed sign-in may have been tried with a phone number as the account name.
        actor_name=scrub(actor_name)[:40],
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
    """Write an audit row in its own transaction, whatever happens to the request's.

    On SQLite the request's session must hold no write transaction (a POST takes the lock up
    front): the row's own connection would wait for that lock. RuntimeError then, at once;
    use ``record`` and commit, or roll back first."""
    session = db.session()
    if (
        db.engine.dialect.name == "sqlite"
        and session.in_transaction()
        and session.connection().get_execution_options().get("sqlite_immediate")
    ):
        raise RuntimeError("record_now under the request's SQLite write lock")
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


# --- reading the log (secretaries: their community; subdistrict admins: their subdistrict) -------


# Typed filter dates are held inside these: 0001-01-01 or 9999-12-31 would overflow when turned
# into UTC instants (a 500), and find the same rows as these do.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9000, 12, 31)


def _bounded_day(day: date | None) -> date | None:
    return None if day is None else min(max(day, FIRST_DAY), LAST_DAY)


@dataclass
class AuditFilters:
    """The log page's filters, already cleaned: an unknown value is None (meaning "any")."""

    action: str | None = None
    outcome: str | None = None
    actor: str = ""
    date_from: date | None = None
    date_to: date | None = None
    community: int | None = None

    @classmethod
    def clean(cls, action, outcome, actor, date_from, date_to, community) -> AuditFilters:  # noqa: ANN001
        return cls(
            action=action if action in AUDIT_ACTIONS else None,
            outcome=outcome if outcome in AUDIT_OUTCOMES else None,
            actor=(actor or "").strip()[:40],
            date_from=_bounded_day(date_from),
            date_to=_bounded_day(date_to),
            community=community,
        )

    def args(self) -> dict[str, object]:
        """The filters as query-string arguments (for links that keep them)."""
        values = {
            "action": self.action,
            "outcome": self.outcome,
            "actor": self.actor,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "community": self.community,
        }
        return {key: value for key, value in values.items() if value}


def log_query(
    filters: AuditFilters, community_ids: list[int], subdistrict_id: int | None = None
) -> Select:
    """Audit rows of ``community_ids`` matching ``filters``. Given ``subdistrict_id`` (a
    subdistrict admin reads), also the rows of no community written by that subdistrict's
    admins (their own exports and sign-ins); other rows of no community never show."""
    from portal.auth.models import User

    ids = [i for i in community_ids if filters.community in (None, i)]
    scope = AuditEntry.community_id.in_(ids)
    if subdistrict_id is not None and filters.community is None:
        admins = select(User.id).where(User.subdistrict_id == subdistrict_id)
        scope = or_(
            scope, and_(AuditEntry.community_id.is_(None), AuditEntry.actor_user_id.in_(admins))
        )
    query = select(AuditEntry).where(scope)
    if filters.action:
        query = query.where(AuditEntry.action == filters.action)
    if filters.outcome:
        query = query.where(AuditEntry.outcome == filters.outcome)
    if filters.actor:
        query = query.where(
            func.lower(AuditEntry.actor_name).startswith(filters.actor.lower(), autoescape=True)
        )
    # Dates are local (Asia/Shanghai) days; the log keeps UTC.
    if filters.date_from:
        query = query.where(AuditEntry.created_at >= local_to_utc(filters.date_from, time(0)))
    if filters.date_to:
        end = local_to_utc(filters.date_to + timedelta(days=1), time(0))
        query = query.where(AuditEntry.created_at < end)
    return query


@dataclass
class AuditPage:
    """One page of the log, newest first, with the cursors of its neighbours (None: no page)."""

    items: list[AuditEntry] = field(default_factory=list)
    newer: int | None = None
    older: int | None = None


def log_page(query: Select, *, before: int | None, after: int | None, per_page: int) -> AuditPage:
    """Rows of ``query`` by id, newest first, after or before a cursor: one query whatever the
    page (the cost of the thousandth page is that of the first)."""
    if after is not None:
        rows = list(
            db.session.scalars(
                query.where(AuditEntry.id > after).order_by(AuditEntry.id).limit(per_page + 1)
            )
        )
        more_newer = len(rows) > per_page
        rows = list(reversed(rows[:per_page]))
        return AuditPage(
            items=rows,
            newer=rows[0].id if more_newer and rows else None,
            older=rows[-1].id if rows else None,
        )
    if before is not None:
        query = query.where(AuditEntry.id < before)
    rows = list(db.session.scalars(query.order_by(AuditEntry.id.desc()).limit(per_page + 1)))
    more_older = len(rows) > per_page
    rows = rows[:per_page]
    return AuditPage(
        items=rows,
        newer=rows[0].id if before is not None and rows else None,
        older=rows[-1].id if more_older else None,
    )


EXPORT_COLUMNS = (
    AuditEntry.id,
    AuditEntry.created_at,
    AuditEntry.community_id,
    AuditEntry.actor_name,
    AuditEntry.address,
    AuditEntry.action,
    AuditEntry.outcome,
    AuditEntry.target_type,
    AuditEntry.target_id,
    AuditEntry.detail,
)


def export_rows(query: Select, batch: int = 1000) -> Iterator[Row]:
    """Every row of ``query`` as plain column tuples (``EXPORT_COLUMNS``), newest first, read in
    batches by keyset so that memory stays flat."""
    query = query.with_only_columns(*EXPORT_COLUMNS)
    before: int | None = None
    while True:
        page = query if before is None else query.where(AuditEntry.id < before)
        rows = list(db.session.execute(page.order_by(AuditEntry.id.desc()).limit(batch)))
        yield from rows
        if len(rows) < batch:
            return
        before = rows[-1].id


def utc_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
