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

from collections.abc import Mapping, Sequence
from functools import cache

from sqlalchemy import BigInteger, Integer, Select, bindparam, func, select
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db


class CacheStamp(db.Model):
    __tablename__ = "cache_stamp"

    community_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


# Which tables move which stamps. Every table of the metadata is in exactly one of these (a test
# checks it, so a new table cannot be forgotten). The migration that creates the triggers keeps
# its own frozen copy of these lists: a table added later needs a new migration that creates its
# triggers (``create_triggers_sql(dialect, community_tables=("new_table",), parent_tables={},
# all_tables=())``).

# Tables with a ``community_id`` column: a row bumps its own community.
COMMUNITY_TABLES: tuple[str, ...] = (
    "category",
    "estate",
    "grid",
    "building",
    "entrance",
    "household",
    "person",
    "points_account",
    "points_tally",
    "user",
    "api_key",
    "care_household",
    "certificate",
    "consent",
    "help_task",
    "notification",
    "points_ledger",
    "points_rule",
    "reward",
    "volunteer",
    "help_request",
    "help_task_volunteer",
    "redemption",
    "shift_series",
    "request_event",
    "request_photo",
    "shift",
    "door_visit",
    "help_visit",
    "patrol_report",
    "signup",
    "hazard",
)

# Tables without one that belong to a community through a parent row:
# table -> (its column naming the parent's id, the parent table, which has a ``community_id``).
PARENT_TABLES: dict[str, tuple[str, str]] = {
    "grid_worker": ("grid_id", "grid"),
    "volunteer_type": ("volunteer_id", "volunteer"),
    "help_task_household": ("task_id", "help_task"),
}

# Rare administrative edits seen on every community's pages: a row bumps every stamp.
ALL_TABLES: tuple[str, ...] = ("subdistrict", "community")

# Writes that change no page: never bump.
NEUTRAL_TABLES: tuple[str, ...] = ("audit_log", "login_failure", "idempotency_key", "cache_stamp")

# ``SELECT ... WHERE`` before ON CONFLICT: SQLite's parser would otherwise read the ON of an
# INSERT ... SELECT ... FROM as a join constraint (see "Parsing Ambiguity" in its UPSERT docs).
_UPSERT = (
    "INSERT INTO cache_stamp (community_id, version) {select} "
    "ON CONFLICT (community_id) DO UPDATE SET version = cache_stamp.version + 1"
)
# Every community gets a row, then every row grows by one.
_BUMP_ALL = (
    "INSERT INTO cache_stamp (community_id, version) SELECT id, 0 FROM community WHERE true "
    "ON CONFLICT (community_id) DO NOTHING",
    "UPDATE cache_stamp SET version = version + 1",
)


def _bump_one(community: str) -> str:
    """Upsert for one community id expression (NULL does nothing)."""
    return _UPSERT.format(select=f"SELECT {community}, 1 WHERE {community} IS NOT NULL")


def _bump_through(parent: str, condition: str) -> str:
    """Upsert for the communities of the parent rows matching ``condition`` (each once)."""
    return _UPSERT.format(
        select=f'SELECT DISTINCT community_id, 1 FROM "{parent}" '
        f"WHERE {condition} AND community_id IS NOT NULL"
    )


def _sqlite_create(
    community_tables: Sequence[str],
    parent_tables: Mapping[str, tuple[str, str]],
    all_tables: Sequence[str],
) -> list[str]:
    def trigger(table: str, op: str, when: str, body: Sequence[str]) -> str:
        event = {"ins": "INSERT", "upd": "UPDATE", "del": "DELETE"}[op]
        statements = "".join(f"{statement}; " for statement in body)
        return (
            f'CREATE TRIGGER cache_stamp_{table}_{op} AFTER {event} ON "{table}" FOR EACH ROW '
            f"{when}BEGIN {statements}END"
        )

    sql = []
    for table in community_tables:
        sql += [
            trigger(
                table, "ins", "WHEN NEW.community_id IS NOT NULL ", [_bump_one("NEW.community_id")]
            ),
            trigger(
                table,
                "upd",
                "WHEN NEW.community_id IS NOT NULL OR OLD.community_id IS NOT NULL ",
                [
                    _bump_one("NEW.community_id"),
                    _UPSERT.format(
                        select="SELECT OLD.community_id, 1 WHERE OLD.community_id IS NOT NULL "
                        "AND OLD.community_id IS NOT NEW.community_id"
                    ),
                ],
            ),
            trigger(
                table, "del", "WHEN OLD.community_id IS NOT NULL ", [_bump_one("OLD.community_id")]
            ),
        ]
    for table, (column, parent) in parent_tables.items():
        sql += [
            trigger(table, "ins", "", [_bump_through(parent, f"id = NEW.{column}")]),
            trigger(
                table, "upd", "", [_bump_through(parent, f"id IN (OLD.{column}, NEW.{column})")]
            ),
            trigger(table, "del", "", [_bump_through(parent, f"id = OLD.{column}")]),
        ]
    for table in all_tables:
        sql += [trigger(table, op, "", _BUMP_ALL) for op in ("ins", "upd", "del")]
    return sql


def _pg_function(name: str, body: str) -> str:
    return (
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n{body}    RETURN NULL;\nEND;\n$$"
    )


def _pg_trigger(table: str, function: str) -> str:
    # Deferred to the commit: the stamp row is locked only while the transaction commits, so
    # concurrent writers of one community do not wait for each other's whole transaction.
    return (
        f"CREATE CONSTRAINT TRIGGER cache_stamp_{table} AFTER INSERT OR UPDATE OR DELETE "
        f'ON "{table}" DEFERRABLE INITIALLY DEFERRED '
        f"FOR EACH ROW EXECUTE FUNCTION {function}()"
    )


_PG_BUMP = """\
    IF TG_OP <> 'DELETE' THEN
        {new};
    END IF;
    IF TG_OP = 'DELETE' THEN
        {old};
    ELSIF TG_OP = 'UPDATE' THEN
        IF OLD.community_id IS DISTINCT FROM NEW.community_id THEN
            {old};
        END IF;
    END IF;
"""

_PG_BUMP_THROUGH = """\
    IF TG_OP = 'INSERT' THEN
        {new};
    ELSIF TG_OP = 'UPDATE' THEN
        {both};
    ELSE
        {old};
    END IF;
"""


def _pg_create(
    community_tables: Sequence[str],
    parent_tables: Mapping[str, tuple[str, str]],
    all_tables: Sequence[str],
) -> list[str]:
    sql = []
    if community_tables:
        body = _PG_BUMP.format(new=_bump_one("NEW.community_id"), old=_bump_one("OLD.community_id"))
        sql.append(_pg_function("cache_stamp_bump", body))
        sql += [_pg_trigger(table, "cache_stamp_bump") for table in community_tables]
    for table, (column, parent) in parent_tables.items():
        body = _PG_BUMP_THROUGH.format(
            new=_bump_through(parent, f"id = NEW.{column}"),
            both=_bump_through(parent, f"id IN (OLD.{column}, NEW.{column})"),
            old=_bump_through(parent, f"id = OLD.{column}"),
        )
        sql.append(_pg_function(f"cache_stamp_bump_{table}", body))
        sql.append(_pg_trigger(table, f"cache_stamp_bump_{table}"))
    if all_tables:
        body = "".join(f"    {statement};\n" for statement in _BUMP_ALL)
        sql.append(_pg_function("cache_stamp_bump_all", body))
        sql += [_pg_trigger(table, "cache_stamp_bump_all") for table in all_tables]
    return sql


def create_triggers_sql(
    dialect: str,
    community_tables: Sequence[str] = COMMUNITY_TABLES,
    parent_tables: Mapping[str, tuple[str, str]] = PARENT_TABLES,
    all_tables: Sequence[str] = ALL_TABLES,
) -> list[str]:
    """The DDL that makes the database bump ``cache_stamp`` on every write of these tables.

    INSERT bumps the new row's community, DELETE the old row's, UPDATE the new row's and the
    old row's when it differs; a NULL community bumps nothing. A multi-row statement bumps once
    per row. SQLite: AFTER ... FOR EACH ROW triggers ``cache_stamp_<table>_<ins|upd|del>``.
    PostgreSQL: one deferred constraint trigger ``cache_stamp_<table>`` per table, calling
    ``cache_stamp_bump()`` (community tables), ``cache_stamp_bump_<table>()`` (parent tables)
    or ``cache_stamp_bump_all()``; the bump happens at COMMIT, so an open transaction's writes
    are not seen in the stamp and a rolled-back one bumps nothing (on both engines).
    """
    if dialect == "sqlite":
        return _sqlite_create(community_tables, parent_tables, all_tables)
    if dialect == "postgresql":
        return _pg_create(community_tables, parent_tables, all_tables)
    raise ValueError(f"no cache stamp triggers for dialect {dialect!r}")


def drop_triggers_sql(
    dialect: str,
    community_tables: Sequence[str] = COMMUNITY_TABLES,
    parent_tables: Mapping[str, tuple[str, str]] = PARENT_TABLES,
    all_tables: Sequence[str] = ALL_TABLES,
) -> list[str]:
    """The DDL that removes what ``create_triggers_sql`` made for the same tables."""
    tables = [*community_tables, *parent_tables, *all_tables]
    if dialect == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS cache_stamp_{table}_{op}"
            for table in tables
            for op in ("ins", "upd", "del")
        ]
    if dialect == "postgresql":
        sql = [f'DROP TRIGGER IF EXISTS cache_stamp_{table} ON "{table}"' for table in tables]
        functions = ["cache_stamp_bump"] if community_tables else []
        functions += [f"cache_stamp_bump_{table}" for table in parent_tables]
        functions += ["cache_stamp_bump_all"] if all_tables else []
        return sql + [f"DROP FUNCTION IF EXISTS {name}()" for name in functions]
    raise ValueError(f"no cache stamp triggers for dialect {dialect!r}")


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
