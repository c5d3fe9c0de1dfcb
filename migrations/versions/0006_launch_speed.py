"""registry version: one row whose stamp changes with every registration or deployment change, for per-process caches

Revision ID: 0006_launch_speed
Revises: 0004_stored_status
Create Date: 2026-11-30 20:05:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006_launch_speed'
down_revision = '0004_stored_status'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('registry_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('stamp', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registry_version'))
    )


def downgrade():
    op.drop_table('registry_version')
