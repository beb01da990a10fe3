"""Open311 privacy: which categories may be public, and a requester's consent to show a request

Revision ID: c1a5e0f15a01
Revises: b6c1d2e3f4a5
Create Date: 2026-12-08 01:15:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'c1a5e0f15a01'
down_revision = 'b6c1d2e3f4a5'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
