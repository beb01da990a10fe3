"""Sign-in guard counters and verified accounts

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
    pass


def downgrade():
    pass
