"""The Alembic revisions build exactly the schema the models describe, and can be undone."""

from __future__ import annotations

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from portal import create_app
from portal.extensions import db


def _schema_differences() -> list:
    """What `flask db migrate` would generate against the current app's database."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        return compare_metadata(context, db.metadata)


def _tables() -> set[str]:
    return set(inspect(db.engine).get_table_names()) - {"alembic_version"}


def test_migrations_build_the_models_schema_on_a_fresh_sqlite_file(tmp_path):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/m.db"})
    with app.app_context():
        upgrade()
        assert _tables() == set(db.metadata.tables)
        assert _schema_differences() == []

        downgrade(revision="base")
        assert _tables() == set()

        upgrade()
        assert _tables() == set(db.metadata.tables)
        assert _schema_differences() == []
        db.engine.dispose()


@pytest.mark.skipif(
    not (
        os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")
        or os.environ.get("REQUIRE_POSTGRES") == "1"
    ),
    reason="the suite runs on SQLite; set TEST_DATABASE_URL or REQUIRE_POSTGRES=1",
)
def test_migrations_match_the_models_on_postgresql(database_url):
    # The session fixture already upgraded this database; only compare, never drop.
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        assert db.engine.dialect.name == "postgresql"
        assert _tables() == set(db.metadata.tables)
        assert _schema_differences() == []
        db.engine.dispose()


def test_upgrading_a_sqlite_database_that_holds_rows_keeps_them(tmp_path):
    """Batch mode rebuilds tables that other rows reference (person, when the trust revision
    added its guardian link): the upgrade must not trip over the foreign keys it leaves intact."""
    from sqlalchemy import text

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/d.db"})
    with app.app_context():
        upgrade(revision="5641d1ea12fb")
        with db.engine.begin() as connection:
            connection.execute(text("INSERT INTO subdistrict (id, name) VALUES (1, '街道')"))
            connection.execute(
                text(
                    "INSERT INTO community (id, subdistrict_id, name, address, armband_seq)"
                    " VALUES (1, 1, '社区', '', 0)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO person (id, community_id, name, lives_alone, empty_nest,"
                    " disabled, care_consent_at, created_at) VALUES (1, 1, '张三', 1, 0, 0,"
                    " '2026-02-01 00:00:00', '2026-01-01 00:00:00')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO user (id, username, password_hash, role, community_id,"
                    " person_id, session_token, active, created_at) VALUES (1, 'zs', 'x',"
                    " 'resident', 1, 1, 'tok', 1, '2026-01-01 00:00:00')"
                )
            )
        upgrade()
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT name FROM person")).scalar() == "张三"
            assert connection.execute(text("SELECT person_id FROM user")).scalar() == 1
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert connection.execute(text("PRAGMA foreign_key_check")).all() == []
            # the care consent given before consent records existed is now a record
            assert connection.execute(
                text("SELECT person_id, purpose, notice_version, withdrawn_at FROM consent")
            ).all() == [(1, "care_flags", "before-2026-11", None)]
        assert _schema_differences() == []
        db.engine.dispose()
