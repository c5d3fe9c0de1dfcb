"""people's language: the one chosen in the tool, and the LMS launch's locale

Revision ID: 0012_language
Revises: 0013_import_jobs
Create Date: 2026-11-30 23:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012_language'
down_revision = '0013_import_jobs'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('launch_language', sa.String(length=8), nullable=True))


def downgrade():
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_column('launch_language')
        batch_op.drop_column('language')
