"""Sign-in guard counters and verified accounts

The table ``throttle`` (attempt counters keyed by account, account and address or device, and
address) replaces ``login_failure``, whose rows counted the text typed rather than the account.
``user.verified`` is added true for every existing account (a server default), so only accounts
self-registered from now on wait to be matched to a household; ``user.signup_phone`` keeps the
number such an account typed. Columns are added and dropped with plain ALTER TABLE (SQLite 3.35
and later drop a column in place), never a batch "move and copy" of ``user``, which would drop
its cache-stamp triggers (see revision b6c1d2e3f4a5). ``throttle`` has no community: no trigger.

Revision ID: c1a5e0f15b02
Revises: c1a5e0f15a01
Create Date: 2026-12-08 01:15:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'c1a5e0f15b02'
down_revision = 'c1a5e0f15a01'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('throttle',
    sa.Column('key', sa.String(length=160), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_at', sa.BigInteger(), nullable=False),
    sa.Column('not_before', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_throttle'))
    )
    op.create_index(op.f('ix_throttle_last_at'), 'throttle', ['last_at'], unique=False)
    op.add_column('user', sa.Column('verified', sa.Boolean(), server_default=sa.true(), nullable=False))
    op.add_column('user', sa.Column('signup_phone', sa.String(length=11), nullable=True))
    op.drop_index(op.f('ix_login_failure_at'), table_name='login_failure')
    op.drop_index(op.f('ix_login_failure_address'), table_name='login_failure')
    op.drop_index(op.f('ix_login_failure_account'), table_name='login_failure')
    op.drop_table('login_failure')


def downgrade():
    op.create_table('login_failure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account', sa.String(length=40), nullable=False),
    sa.Column('address', sa.String(length=45), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failure'))
    )
    op.create_index(op.f('ix_login_failure_account'), 'login_failure', ['account'], unique=False)
    op.create_index(op.f('ix_login_failure_address'), 'login_failure', ['address'], unique=False)
    op.create_index(op.f('ix_login_failure_at'), 'login_failure', ['at'], unique=False)
    op.drop_column('user', 'signup_phone')
    op.drop_column('user', 'verified')
    op.drop_index(op.f('ix_throttle_last_at'), table_name='throttle')
    op.drop_table('throttle')
