"""Open311 privacy: which categories may be public, and a requester's consent to show a request

``category.public``: requests of the category may appear in Open311's public answers. Existing
public-space categories (shared facilities of a building, environment, safety hazards) are
made public; neighbour help, care, health, family and dispute categories stay private.
``help_request.show_publicly``: the requester allowed the description to be shown (default no).

Plain ``ADD COLUMN`` (no batch recreate), so the cache-stamp triggers of both tables stay; the
downgrade drops the columns with ``ALTER TABLE ... DROP COLUMN`` for the same reason.

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

# A frozen copy of portal.help.catalogue.PUBLIC_BY_DEFAULT (a migration never imports the app).
PUBLIC_CODES = (
    "repair.power", "repair.lift", "repair.lighting", "repair.door",
    "env.rubbish", "env.green", "env.noise", "env.pets",
    "safety.fire_exit", "safety.ebike", "safety.falling", "safety.suspicious",
)


def upgrade():
    op.add_column(
        'category',
        sa.Column('public', sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        'help_request',
        sa.Column('show_publicly', sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    category = sa.table(
        'category',
        sa.column('code', sa.String),
        sa.column('kind', sa.String),
        sa.column('public', sa.Boolean),
    )
    op.execute(
        category.update()
        .where(category.c.code.in_(PUBLIC_CODES), category.c.kind == 'report')
        .values(public=True)
    )


def downgrade():
    with op.batch_alter_table('help_request', recreate='never') as batch_op:
        batch_op.drop_column('show_publicly')
    with op.batch_alter_table('category', recreate='never') as batch_op:
        batch_op.drop_column('public')
