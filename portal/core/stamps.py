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
# all_tables=(), self_tables=())``).

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

# Tables whose own ``id`` is a community: a community's row bumps that community (a volunteer's
# approval moves its armband counter: that must not disturb every other community's pages).
SELF_TABLES: tuple[str, ...] = ("community",)

# Rare administrative edits seen on every community's pages: a row bumps every stamp.
ALL_TABLES: tuple[str, ...] = ("subdistrict",)

# Writes that change no page: never bump.
NEUTRAL_TABLES: tuple[str, ...] = ("audit_log", "throttle", "idempotency_key", "cache_stamp")

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
    self_tables: Sequence[str],
) -> list[str]:
    def trigger(table: str, op: str, when: str, body: Sequence[str]) -> str:
        event = {"ins": "INSERT", "upd": "UPDATE", "del": "DELETE"}[op]
        statements = "".join(f"{statement}; " for statement in body)
        return (
            f'CREATE TRIGGER cache_stamp_{table}_{op} AFTER {event} ON "{table}" FOR EACH ROW '
            f"{when}BEGIN {statements}END"
        )

    def own(table: str, key: str) -> list[str]:
        """A row bumps the community its ``key`` column names."""
        return [
            trigger(table, "ins", f"WHEN NEW.{key} IS NOT NULL ", [_bump_one(f"NEW.{key}")]),
            trigger(
                table,
                "upd",
                f"WHEN NEW.{key} IS NOT NULL OR OLD.{key} IS NOT NULL ",
                [
                    _bump_one(f"NEW.{key}"),
                    _UPSERT.format(
                        select=f"SELECT OLD.{key}, 1 WHERE OLD.{key} IS NOT NULL "
                        f"AND OLD.{key} IS NOT NEW.{key}"
                    ),
                ],
            ),
            trigger(table, "del", f"WHEN OLD.{key} IS NOT NULL ", [_bump_one(f"OLD.{key}")]),
        ]

    sql = []
    for table in community_tables:
        sql += own(table, "community_id")
    for table in self_tables:
        sql += own(table, "id")
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


# Once per transaction and community: a transaction that writes 100,000 rows of one community
# would otherwise update its stamp row 100,000 times at COMMIT, each update walking the chain of
# the row versions the transaction made before it (quadratic: a minute for 100,000 rows). The
# communities already bumped are kept in a transaction-local setting (",3,17,*,"; "*": all).
_PG_HELPERS = (
    """CREATE OR REPLACE FUNCTION cache_stamp_bump_first(key text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    done text := coalesce(nullif(current_setting('cache_stamp.bumped', true), ''), ',');
BEGIN
    IF position(',' || key || ',' IN done) > 0 THEN
        RETURN false;
    END IF;
    PERFORM set_config('cache_stamp.bumped', done || key || ',', true);
    RETURN true;
END;
$$""",
    f"""CREATE OR REPLACE FUNCTION cache_stamp_bump_one(cid integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF cid IS NOT NULL AND cache_stamp_bump_first(cid::text) THEN
        {_UPSERT.format(select="VALUES (cid, 1)")};
    END IF;
END;
$$""",
)
_PG_HELPER_NAMES = ("cache_stamp_bump_one(integer)", "cache_stamp_bump_first(text)")

_PG_BUMP = """\
    IF TG_OP <> 'DELETE' THEN
        PERFORM cache_stamp_bump_one(NEW.{key});
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM cache_stamp_bump_one(OLD.{key});
    END IF;
"""

_PG_BUMP_THROUGH = """\
    IF TG_OP <> 'DELETE' THEN
        PERFORM cache_stamp_bump_one(community_id) FROM "{parent}" WHERE id = NEW.{column};
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM cache_stamp_bump_one(community_id) FROM "{parent}" WHERE id = OLD.{column};
    END IF;
"""

_PG_BUMP_ALL = f"""\
    IF cache_stamp_bump_first('*') THEN
        {_BUMP_ALL[0]};
        {_BUMP_ALL[1]};
    END IF;
"""


def _pg_create(
    community_tables: Sequence[str],
    parent_tables: Mapping[str, tuple[str, str]],
    all_tables: Sequence[str],
    self_tables: Sequence[str],
) -> list[str]:
    sql = list(_PG_HELPERS)
    if community_tables:
        sql.append(_pg_function("cache_stamp_bump", _PG_BUMP.format(key="community_id")))
        sql += [_pg_trigger(table, "cache_stamp_bump") for table in community_tables]
    if self_tables:
        sql.append(_pg_function("cache_stamp_bump_self", _PG_BUMP.format(key="id")))
        sql += [_pg_trigger(table, "cache_stamp_bump_self") for table in self_tables]
    for table, (column, parent) in parent_tables.items():
        body = _PG_BUMP_THROUGH.format(parent=parent, column=column)
        sql.append(_pg_function(f"cache_stamp_bump_{table}", body))
        sql.append(_pg_trigger(table, f"cache_stamp_bump_{table}"))
    if all_tables:
        sql.append(_pg_function("cache_stamp_bump_all", _PG_BUMP_ALL))
        sql += [_pg_trigger(table, "cache_stamp_bump_all") for table in all_tables]
    return sql


def create_triggers_sql(
    dialect: str,
    community_tables: Sequence[str] = COMMUNITY_TABLES,
    parent_tables: Mapping[str, tuple[str, str]] = PARENT_TABLES,
    all_tables: Sequence[str] = ALL_TABLES,
    self_tables: Sequence[str] = SELF_TABLES,
) -> list[str]:
    """The DDL that makes the database bump ``cache_stamp`` on every write of these tables.

    INSERT bumps the new row's community, DELETE the old row's, UPDATE both when they differ;
    a NULL community bumps nothing. How much a version grows says nothing, only that it grew:
    SQLite bumps once per row written (AFTER ... FOR EACH ROW triggers
    ``cache_stamp_<table>_<ins|upd|del>``), PostgreSQL once per community and transaction, at
    COMMIT (deferred constraint triggers ``cache_stamp_<table>`` calling ``cache_stamp_bump()``,
    ``cache_stamp_bump_<table>()`` for a parent table or ``cache_stamp_bump_all()``; helpers
    ``cache_stamp_bump_one(integer)`` and ``cache_stamp_bump_first(text)``). On both, another
    connection sees the new version exactly when it sees the write, and a rolled-back write
    bumps nothing. Functions are created with CREATE OR REPLACE: a later revision that adds a
    table passes only that table (and empty lists for the others).
    """
    if dialect == "sqlite":
        return _sqlite_create(community_tables, parent_tables, all_tables, self_tables)
    if dialect == "postgresql":
        return _pg_create(community_tables, parent_tables, all_tables, self_tables)
    raise ValueError(f"no cache stamp triggers for dialect {dialect!r}")


def drop_triggers_sql(
    dialect: str,
    community_tables: Sequence[str] = COMMUNITY_TABLES,
    parent_tables: Mapping[str, tuple[str, str]] = PARENT_TABLES,
    all_tables: Sequence[str] = ALL_TABLES,
    self_tables: Sequence[str] = SELF_TABLES,
    functions: bool = True,
) -> list[str]:
    """The DDL that removes what ``create_triggers_sql`` made for the same tables. PostgreSQL's
    shared functions go too unless ``functions`` is false (a later revision's downgrade that
    removes only its own tables' triggers keeps them: the older tables' triggers call them)."""
    tables = [*community_tables, *self_tables, *parent_tables, *all_tables]
    if dialect == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS cache_stamp_{table}_{op}"
            for table in tables
            for op in ("ins", "upd", "del")
        ]
    if dialect == "postgresql":
        sql = [f'DROP TRIGGER IF EXISTS cache_stamp_{table} ON "{table}"' for table in tables]
        sql += [f"DROP FUNCTION IF EXISTS cache_stamp_bump_{table}()" for table in parent_tables]
        if functions:
            shared = (
                "cache_stamp_bump()",
                "cache_stamp_bump_self()",
                "cache_stamp_bump_all()",
                *_PG_HELPER_NAMES,
            )
            sql += [f"DROP FUNCTION IF EXISTS {name}" for name in shared]
        return sql
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
