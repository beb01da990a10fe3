"""API keys of Open311 client applications: created by a secretary, scoped to one community.

Only the key's SHA-256 hash and its first characters are stored; the full key is shown once.
"""

from __future__ import annotations

import hashlib
import secrets

from flask_babel import gettext as _
from sqlalchemy import select, update

from portal.core.errors import DomainError
from portal.core.timeutil import now_utc
from portal.extensions import db
from portal.help.models import ApiKey

KEY_PREFIX = "tx_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_api_key(community_id: int, name: str, created_by_id: int | None) -> tuple[ApiKey, str]:
    """Make a key for a client application; returns the row and the full key (never stored).

    Raises DomainError on a missing or over-long name.
    """
    name = (name or "").strip()
    if not name:
        raise DomainError({"name": _("Name the application that will use the key.")})
    if len(name) > 80:
        raise DomainError({"name": _("At most %(n)d characters.", n=80)})
    key = KEY_PREFIX + secrets.token_urlsafe(24)
    row = ApiKey(
        community_id=community_id,
        name=name,
        prefix=key[:8],
        key_hash=hash_key(key),
        created_by_id=created_by_id,
    )
    db.session.add(row)
    db.session.flush()
    return row, key


def revoke_api_key(api_key: ApiKey) -> bool:
    """Revoke the key from now on; False when it was already revoked (nothing changes)."""
    won = db.session.execute(
        update(ApiKey)
        .where(ApiKey.id == api_key.id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now_utc())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(api_key)
    return won == 1


def find_active_key(key: str | None) -> ApiKey | None:
    """The unrevoked key matching ``key``, or None."""
    if not key or len(key) > 200:
        return None
    return db.session.scalar(
        select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    )


def community_keys(community_id: int):
    """Select the community's keys, newest first (for a paginated list)."""
    return (
        select(ApiKey)
        .where(ApiKey.community_id == community_id)
        .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
    )
