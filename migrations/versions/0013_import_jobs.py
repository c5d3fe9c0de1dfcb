"""import batches are also the import's background job (checked file, progress, heartbeat, attempts, error)

Revision ID: 0013_import_jobs
Revises: 0011_requirements
Create Date: 2026-11-30 23:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013_import_jobs'
down_revision = '0011_requirements'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('import_batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('storage_key', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('options', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('total', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('done_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('error', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('started_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_import_batches_status'), ['status'], unique=False)


def downgrade():
    with op.batch_alter_table('import_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_import_batches_status'))
        for name in ('finished_at', 'heartbeat_at', 'started_at', 'error', 'attempts', 'done_count', 'total',
                     'options', 'storage_key'):
            batch_op.drop_column(name)
