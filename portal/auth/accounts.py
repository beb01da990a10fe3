"""Account management by a community's secretary or a subdistrict admin: list accounts, change
a role, disable or enable an account. Every change rotates the account's session token, so its
sessions end at their next request, and writes an audit row. Services flush, never commit."""

from __future__ import annotations

import unicodedata

from flask_babel import gettext as _
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import joinedload

from portal.auth.models import ROLES, User
from portal.core.errors import DomainError
from portal.core.validators import PHONE_RE, normalise_phone
from portal.extensions import db
from portal.people.models import Person
from portal.trust import audit

ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
# Roles an account manager may give; a subdistrict admin is made with `flask create-user`.
ASSIGNABLE_ROLES = ("resident", "volunteer", "grid_worker", "secretary")
MANAGERS = ("secretary", "subdistrict_admin")


def accounts_query(community_ids: list[int], q: str | None = None) -> Select:
    """Accounts of these communities, by name then username, optionally matching ``q`` in the
    username or the person's name (full-width letters folded), or a whole phone number however
    spelt (the person's, or the one given at sign-up)."""
    query = (
        select(User)
        .outerjoin(Person, User.person_id == Person.id)
        .where(User.community_id.in_(community_ids))
        .options(joinedload(User.person), joinedload(User.community))
        .order_by(Person.name, User.username, User.id)
    )
    q = unicodedata.normalize("NFKC", q or "").strip()
    if q:
        conditions = [
            User.username.ilike(f"%{_escape_like(q)}%", escape="\\"),
            Person.name.ilike(f"%{_escape_like(q)}%", escape="\\"),
        ]
        phone = normalise_phone(q)
        if PHONE_RE.match(phone):
            conditions += [Person.phone == phone, User.signup_phone == phone]
        query = query.where(or_(*conditions))
    return query


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def assignable_roles(actor: User) -> list[str]:
    """The roles ``actor`` may give: never above their own."""
    own = ROLE_RANK[actor.role]
    return [role for role in ASSIGNABLE_ROLES if ROLE_RANK[role] <= own]


def can_manage(actor: User, target: User) -> bool:
    """Not one's own account, and only accounts ranked below one's own (a secretary does not
    demote or disable another secretary; their subdistrict admin does)."""
    return (
        actor.role in MANAGERS
        and target.id != actor.id
        and ROLE_RANK[target.role] < ROLE_RANK[actor.role]
    )


def _check_manageable(actor: User, target: User) -> None:
    if target.id == actor.id:
        raise DomainError({"_": _("You cannot change your own account here.")})
    if not can_manage(actor, target):
        raise DomainError({"_": _("Only a higher-ranking account can change this account.")})


def change_role(actor: User, target: User, role: str) -> bool:
    """Give ``target`` the role ``role``; False when it already has it.

    Raises DomainError for one's own account, an account ranked at or above one's own, or a
    role that is not assignable by ``actor``."""
    _check_manageable(actor, target)
    if role not in assignable_roles(actor):
        raise DomainError({"role": _("Choose one of the roles offered.")})
    old = target.role
    if old == role:
        return False
    target.role = role
    if old == "grid_worker":
        target.grids = []  # a former grid worker keeps no grids
    target.rotate_session_token()
    audit.record(
        "role_changed",
        target_type="user",
        target_id=target.id,
        detail=f"{old}→{role}",
        community_id=target.community_id,
    )
    db.session.flush()
    return True


def set_active(actor: User, target: User, active: bool) -> bool:
    """Disable or enable ``target``; False when it already was. Ends its sessions either way.

    Raises DomainError for one's own account or an account ranked at or above one's own."""
    _check_manageable(actor, target)
    if target.active == active:
        return False
    target.active = active
    target.rotate_session_token()
    audit.record(
        "account_enabled" if active else "account_disabled",
        target_type="user",
        target_id=target.id,
        detail=target.role,
        community_id=target.community_id,
    )
    db.session.flush()
    return True
