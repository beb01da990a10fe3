"""Cache stamps: the database bumps a community's version on every committed write of its rows
(triggers of migration b6c1d2e3f4a5, SQL in portal/core/stamps.py), whatever wrote them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import delete, insert, text, update

import portal.models  # noqa: F401  (every table in the metadata)
from portal.auth.models import Throttle
from portal.care.models import HelpTask
from portal.core.stamps import (
    ALL_TABLES,
    COMMUNITY_TABLES,
    NEUTRAL_TABLES,
    PARENT_TABLES,
    SELF_TABLES,
    create_triggers_sql,
    drop_triggers_sql,
)
from portal.extensions import db
from portal.help.models import Category
from portal.notifications.models import Notification
from portal.people.models import Person
from portal.places.models import Community, Subdistrict, grid_worker
from portal.trust.models import AuditEntry, IdempotencyKey
from portal.volunteers.models import VolunteerType
from tests import factories


def _postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def _per_row(rows: int) -> int:
    """The growth of a community's version for ``rows`` rows written in one transaction:
    SQLite bumps once per row, PostgreSQL once per community and transaction."""
    return 1 if _postgres() else rows


def _stamps() -> dict[int, int]:
    """Every stamp row as another connection sees it (only committed writes)."""
    with db.engine.connect() as connection:
        return dict(connection.execute(text("SELECT community_id, version FROM cache_stamp")).all())


def _changes(before: dict[int, int]) -> dict[int, int]:
    """How much each community's version grew since ``before`` (unchanged ones left out)."""
    after = _stamps()
    grown = {cid: version - before.get(cid, 0) for cid, version in after.items()}
    return {cid: step for cid, step in grown.items() if step}


@pytest.fixture
def two(app) -> SimpleNamespace:
    """Communities A and B of one subdistrict, each with a grid and a resident."""
    subdistrict = factories.make_subdistrict()
    sides = {}
    for key in ("a", "b"):
        community = factories.make_community(subdistrict)
        sides[key] = SimpleNamespace(
            community=community,
            id=community.id,
            grid=factories.make_grid(community),
            person=factories.make_person(community),
        )
    return SimpleNamespace(subdistrict=subdistrict, **sides)


# ----- every table is accounted for, and has its triggers --------------------------------------


def test_every_table_is_in_exactly_one_list():
    lists = [
        set(COMMUNITY_TABLES),
        set(SELF_TABLES),
        set(PARENT_TABLES),
        set(ALL_TABLES),
        set(NEUTRAL_TABLES),
    ]
    tables = db.metadata.tables
    assert sum(len(names) for names in lists) == len(set().union(*lists)), "a table listed twice"
    assert set().union(*lists) == set(tables)
    with_community = {name for name, table in tables.items() if "community_id" in table.c}
    assert with_community <= set(COMMUNITY_TABLES) | set(NEUTRAL_TABLES)
    assert set(COMMUNITY_TABLES) <= with_community
    for name, (column, parent) in PARENT_TABLES.items():
        targets = {fk.column.table.name for fk in tables[name].c[column].foreign_keys}
        assert targets == {parent}, name
        assert "community_id" in tables[parent].c, name


def test_the_database_has_the_triggers_of_every_listed_table(app):
    watched = [*COMMUNITY_TABLES, *SELF_TABLES, *PARENT_TABLES, *ALL_TABLES]
    if _postgres():
        rows = db.session.execute(
            text(
                "SELECT c.relname, t.tgname, t.tgdeferrable, t.tginitdeferred FROM pg_trigger t"
                " JOIN pg_class c ON c.oid = t.tgrelid WHERE t.tgname LIKE 'cache_stamp%'"
            )
        ).all()
        assert sorted(rows) == sorted((name, f"cache_stamp_{name}", True, True) for name in watched)
    else:
        rows = db.session.execute(
            text(
                "SELECT tbl_name, name FROM sqlite_master"
                " WHERE type = 'trigger' AND name LIKE 'cache_stamp%'"
            )
        ).all()
        assert sorted(rows) == sorted(
            (name, f"cache_stamp_{name}_{op}") for name in watched for op in ("ins", "upd", "del")
        )


def test_an_unknown_dialect_is_refused():
    with pytest.raises(ValueError):
        create_triggers_sql("mysql")
    with pytest.raises(ValueError):
        drop_triggers_sql("mysql")


def test_a_later_revision_drops_only_its_own_tables_triggers():
    one = dict(community_tables=("new_table",), parent_tables={}, all_tables=(), self_tables=())
    assert drop_triggers_sql("postgresql", **one, functions=False) == [
        'DROP TRIGGER IF EXISTS cache_stamp_new_table ON "new_table"'
    ]
    assert len(drop_triggers_sql("sqlite", **one)) == 3


# ----- community tables ------------------------------------------------------------------------


def test_insert_update_delete_bump_the_rows_community_only(two):
    before = _stamps()
    person = factories.make_person(two.a.community)  # commits
    assert _changes(before) == {two.a.id: 1}

    before = _stamps()
    person.name = "改名"
    db.session.commit()
    assert _changes(before) == {two.a.id: 1}

    before = _stamps()
    db.session.delete(person)
    db.session.commit()
    assert _changes(before) == {two.a.id: 1}


def test_moving_a_row_to_another_community_bumps_both(two):
    before = _stamps()
    two.a.person.community_id = two.b.id
    db.session.commit()
    assert _changes(before) == {two.a.id: 1, two.b.id: 1}


def test_core_and_raw_sql_writes_bump_once_a_row(two):
    factories.make_person(two.a.community)
    before = _stamps()
    db.session.execute(
        update(Person).where(Person.community_id == two.a.id).values(sex="female")
    )  # two rows
    db.session.commit()
    assert _changes(before) == {two.a.id: _per_row(2)}

    user = factories.make_user("resident", two.a.community)
    before = _stamps()
    db.session.execute(text("UPDATE person SET name = 'x' WHERE id = :id"), {"id": two.b.person.id})
    db.session.execute(text('UPDATE "user" SET active = active WHERE id = :id'), {"id": user.id})
    db.session.commit()
    assert _changes(before) == {two.a.id: 1, two.b.id: 1}

    before = _stamps()
    db.session.execute(delete(Person).where(Person.id == two.b.person.id))
    db.session.commit()
    assert _changes(before) == {two.b.id: 1}


def test_a_transaction_writing_many_rows(two):
    before = _stamps()
    with factories.batch():
        for _ in range(3):
            factories.make_person(two.a.community)
        two.a.person.name = "改名"
        two.b.person.name = "改名"
    assert _changes(before) == {two.a.id: _per_row(4), two.b.id: 1}

    before = _stamps()
    db.session.execute(delete(Person).where(Person.name != "改名"))
    db.session.commit()
    assert _changes(before) == {two.a.id: _per_row(3)}


def test_a_null_community_bumps_nothing(two):
    before = _stamps()
    admin = factories.make_user("subdistrict_admin", subdistrict_id=two.subdistrict.id)
    db.session.add(Notification(user_id=admin.id, kind="test", dedupe_key="k"))
    db.session.commit()
    admin.username = "admin_renamed"
    db.session.execute(text("UPDATE notification SET read_at = created_at"))
    db.session.commit()
    db.session.execute(delete(Notification))
    db.session.delete(admin)
    db.session.commit()
    assert _changes(before) == {}


def test_a_user_given_a_community_bumps_it(two):
    admin = factories.make_user("subdistrict_admin", subdistrict_id=two.subdistrict.id)
    before = _stamps()
    admin.community_id = two.b.id
    db.session.commit()
    assert _changes(before) == {two.b.id: 1}
    before = _stamps()
    admin.community_id = None
    db.session.commit()
    assert _changes(before) == {two.b.id: 1}


# ----- tables reaching a community through a parent --------------------------------------------


def test_parent_tables_bump_the_parents_community(two):
    worker = factories.make_user("grid_worker", two.a.community)
    before = _stamps()
    db.session.execute(insert(grid_worker).values(grid_id=two.a.grid.id, user_id=worker.id))
    db.session.commit()
    assert _changes(before) == {two.a.id: 1}

    before = _stamps()
    db.session.execute(
        update(grid_worker).where(grid_worker.c.user_id == worker.id).values(grid_id=two.b.grid.id)
    )
    db.session.commit()
    assert _changes(before) == {two.a.id: 1, two.b.id: 1}

    before = _stamps()
    db.session.execute(delete(grid_worker).where(grid_worker.c.user_id == worker.id))
    db.session.commit()
    assert _changes(before) == {two.b.id: 1}

    volunteer = factories.make_volunteer(two.b.person, types=())
    before = _stamps()
    db.session.add(VolunteerType(volunteer_id=volunteer.id, type="party_member"))
    db.session.commit()
    assert _changes(before) == {two.b.id: 1}


def test_a_task_household_bumps_the_tasks_community(two):
    estate = factories.make_estate(two.a.community)
    building = factories.make_building(estate, two.a.grid)
    household = factories.make_household(building)
    category = Category(community_id=two.a.id, code="help", name_zh="互助", name_en="Help")
    db.session.add(category)
    db.session.flush()
    task = HelpTask(
        community_id=two.a.id,
        grid_id=two.a.grid.id,
        building_id=building.id,
        category_id=category.id,
        title="买菜",
    )
    db.session.add(task)
    db.session.commit()
    before = _stamps()
    task.households.append(household)
    db.session.commit()
    assert _changes(before) == {two.a.id: 1}
    before = _stamps()
    task.households.clear()
    db.session.commit()
    assert _changes(before) == {two.a.id: 1}


# ----- every community, and nothing ------------------------------------------------------------


def test_a_community_edit_bumps_that_community_only(two):
    before = _stamps()
    db.session.execute(update(Community).where(Community.id == two.a.id).values(address="新地址"))
    db.session.commit()
    assert _changes(before) == {two.a.id: 1}
    # The counter a volunteer's approval moves (portal/volunteers/services.py).
    before = _stamps()
    db.session.execute(
        update(Community)
        .where(Community.id == two.b.id)
        .values(armband_seq=Community.armband_seq + 1)
    )
    db.session.commit()
    assert _changes(before) == {two.b.id: 1}
    before = _stamps()
    community = factories.make_community(two.subdistrict)
    assert _changes(before) == {community.id: 1}


def test_a_subdistrict_edit_bumps_every_stamp(two):
    # A community whose stamp row is gone (or never was) gets one too.
    db.session.execute(text("DELETE FROM cache_stamp WHERE community_id = :c"), {"c": two.b.id})
    db.session.commit()
    before = _stamps()
    db.session.execute(
        update(Subdistrict).where(Subdistrict.id == two.subdistrict.id).values(name="改名街道")
    )
    db.session.commit()
    changes = _changes(before)
    assert changes == dict.fromkeys(_stamps(), 1)
    assert {two.a.id, two.b.id} <= set(changes)

    before = _stamps()
    db.session.execute(
        update(Community).where(Community.id.in_([two.a.id, two.b.id])).values(address="")
    )
    db.session.commit()
    assert _changes(before) == {two.a.id: 1, two.b.id: 1}  # each its own, once


def test_neutral_tables_bump_nothing(two):
    user = factories.make_user("resident", two.a.community)
    before = _stamps()
    db.session.add_all(
        [
            AuditEntry(action="sign_in", community_id=two.a.id, actor_user_id=user.id),
            Throttle(key="a:someone", attempts=1, last_at=0, not_before=0),
            IdempotencyKey(user_id=user.id, key="k1", method="POST", path="/x"),
        ]
    )
    db.session.commit()
    db.session.execute(update(Throttle).values(attempts=2))
    db.session.execute(delete(IdempotencyKey))
    db.session.commit()
    assert _changes(before) == {}


# ----- transactions ----------------------------------------------------------------------------


def test_a_rolled_back_write_bumps_nothing(two):
    before = _stamps()
    db.session.add(Person(community_id=two.a.id, name="临时"))
    two.b.person.name = "临时"
    db.session.flush()
    db.session.rollback()
    assert _changes(before) == {}


def test_an_open_write_is_seen_in_the_stamp_only_at_commit(two):
    before = _stamps()
    db.session.add(Person(community_id=two.a.id, name="新"))
    db.session.flush()
    assert _changes(before) == {}  # another connection
    if _postgres():  # deferred to the commit: not even the writer sees it yet
        own = db.session.scalar(
            text("SELECT version FROM cache_stamp WHERE community_id = :c"), {"c": two.a.id}
        )
        assert own == before.get(two.a.id)
    db.session.commit()
    assert _changes(before) == {two.a.id: 1}


def test_writers_of_one_community_do_not_wait_for_each_others_transactions(two):
    if not _postgres():
        pytest.skip("SQLite has one writer at a time anyway; the deferral is PostgreSQL's")
    neighbour = factories.make_person(two.a.community)
    before = _stamps()
    rename = text("UPDATE person SET name = :name WHERE id = :id")
    with db.engine.connect() as first, db.engine.connect() as second:
        first.execute(rename, {"name": "一", "id": two.a.person.id})
        # A trigger bumping at the write would hold the stamp row until the first commits: the
        # second writer would wait for it (here: fail after the lock timeout).
        second.execute(text("SET LOCAL lock_timeout = '2s'"))
        second.execute(rename, {"name": "二", "id": neighbour.id})
        second.commit()
        assert _changes(before) == {two.a.id: 1}
        first.commit()
    assert _changes(before) == {two.a.id: 2}


def test_triggers_dropped_and_created_again_in_one_transaction(two):
    """What seed-bench does around its bulk insert."""
    dialect = db.engine.dialect.name
    before = _stamps()
    for statement in drop_triggers_sql(dialect):
        db.session.execute(text(statement))
    db.session.add(Person(community_id=two.a.id, name="无戳"))
    db.session.flush()
    for statement in create_triggers_sql(dialect):
        db.session.execute(text(statement))
    db.session.add(Person(community_id=two.b.id, name="有戳"))
    db.session.commit()
    assert _changes(before) == {two.b.id: 1}
