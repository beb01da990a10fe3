"""Data stamps: one counter per community that the database itself moves on every write.

Triggers (migration ``b6c1d2e3f4a5``, SQL in this module) bump ``cache_stamp.version`` of the
community a written row belongs to, in the same transaction as the write: on INSERT, UPDATE and
DELETE of every table with a ``community_id`` (and of the few tables that reach a community
through a parent). The page cache (portal/core/pagecache.py) keys a rendered page by the stamp
read at the start of the request, so a page is never served after a committed write to its
community: the invalidation is explicit, and no code path (ORM, Core UPDATE, raw SQL, a CLI
command) can forget it.

A community without a row has never been written since the stamps began: its version is 0.
Rows are never deleted by the application (no foreign key cascades them), so a version only
ever grows.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import BigInteger, Integer, Select, bindparam, func, select
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db


class CacheStamp(db.Model):
    __tablename__ = "cache_stamp"

    community_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


@cache
def _stamp_of() -> Select:
    return select(
        func.coalesce(
            select(CacheStamp.version)
            .where(CacheStamp.community_id == bindparam("community_id"))
            .scalar_subquery(),
            0,
        )
    )


def read_stamp(community_id: int) -> int:
    """The community's data stamp now (0: never written since the stamps began)."""
    return db.session.scalar(_stamp_of(), {"community_id": community_id})
