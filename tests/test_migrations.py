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
