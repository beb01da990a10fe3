"""cache stamp: one version per community, bumped by triggers on every write

Table ``cache_stamp`` and the triggers of portal/core/stamps.py for the tables listed below (a
frozen copy: a table added later gets its triggers from its own revision, which passes only
that table, and ``functions=False`` to drop_triggers_sql in its downgrade, so this one never
changes). PostgreSQL: deferred constraint triggers, the bump happens at COMMIT. SQLite: AFTER ...
FOR EACH ROW triggers.

Note for later revisions: on SQLite a batch "move and copy" of one of these tables recreates it
and drops its triggers; such a revision must create them again (``create_triggers_sql`` with
that table only). tests/core/test_stamps.py fails when a table has lost its triggers.

Revision ID: b6c1d2e3f4a5
Revises: 00b947ffc184
Create Date: 2026-12-01 10:45:00.000000

"""
from alembic import op
import sqlalchemy as sa

from portal.core.stamps import create_triggers_sql, drop_triggers_sql

# revision identifiers, used by Alembic.
revision = 'b6c1d2e3f4a5'
down_revision = '00b947ffc184'
branch_labels = None
depends_on = None

COMMUNITY_TABLES = (
    "category", "estate", "grid", "building", "entrance", "household", "person",
    "points_account", "points_tally", "user", "api_key", "care_household", "certificate",
    "consent", "help_task", "notification", "points_ledger", "points_rule", "reward",
    "volunteer", "help_request", "help_task_volunteer", "redemption", "shift_series",
    "request_event", "request_photo", "shift", "door_visit", "help_visit", "patrol_report",
    "signup", "hazard",
)
PARENT_TABLES = {
    "grid_worker": ("grid_id", "grid"),
    "volunteer_type": ("volunteer_id", "volunteer"),
    "help_task_household": ("task_id", "help_task"),
}
SELF_TABLES = ("community",)
ALL_TABLES = ("subdistrict",)
TABLES = dict(
    community_tables=COMMUNITY_TABLES,
    parent_tables=PARENT_TABLES,
    all_tables=ALL_TABLES,
    self_tables=SELF_TABLES,
)


def upgrade():
    op.create_table('cache_stamp',
    sa.Column('community_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('community_id', name=op.f('pk_cache_stamp'))
    )
    for statement in create_triggers_sql(op.get_bind().dialect.name, **TABLES):
        op.execute(statement)


def downgrade():
    for statement in drop_triggers_sql(op.get_bind().dialect.name, **TABLES):
        op.execute(statement)
    op.drop_table('cache_stamp')
