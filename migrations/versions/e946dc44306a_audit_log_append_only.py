"""audit log append-only: triggers refuse UPDATE and DELETE of audit_log rows

The database half of append-only (the ORM half is in portal/trust/audit.py). One deliberate way
through, for a purge decided by people (a retention period, the test suite emptying its tables):
inside one transaction, switch the purge setting on before the DELETE.

- PostgreSQL: ``SELECT set_config('tongxin.audit_log_purge', 'on', true)`` (transaction-local).
  TRUNCATE is refused too, whatever the setting.
- SQLite (no session settings): ``PRAGMA user_version = 7411`` before, ``= 0`` after, in the same
  transaction, so no other connection ever sees it.

Note for later revisions: on SQLite a batch "move and copy" of audit_log recreates the table and
drops these triggers; such a revision must create them again.

Revision ID: e946dc44306a
Revises: e7de2270d84d
Create Date: 2026-12-01 09:00:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "e946dc44306a"
down_revision = "e7de2270d84d"
branch_labels = None
depends_on = None

SQLITE_PURGE_VERSION = 7411

PG_FUNCTION = """
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('tongxin.audit_log_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
    else:
        op.execute(
            "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
            f"WHEN (SELECT user_version FROM pragma_user_version) <> {SQLITE_PURGE_VERSION} "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
