"""standards: kept CASE/Moodle fields, public frameworks, non-unique competency codes, random status indexes,
credential subject ids

Revision ID: 0008_standards
Revises: 0003_tenant_boundary
Create Date: 2026-11-30 20:00:00

"""
import uuid

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008_standards'
down_revision = '0003_tenant_boundary'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('frameworks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_public', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('extra', sa.JSON(), nullable=True))

    with op.batch_alter_table('competencies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('extra', sa.JSON(), nullable=True))
        # CASE allows two items with one humanCodingScheme: items are keyed by identifier, not code.
        batch_op.drop_constraint(batch_op.f('uq_competencies_framework_id_code'), type_='unique')

    with op.batch_alter_table('issued_credentials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_index', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_issued_credentials_status_index'), ['status_index'])

    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.add_column(sa.Column('credential_subject_id', sa.String(length=36), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_people_credential_subject_id'), ['credential_subject_id'])

    # Every competency and framework gets an identifier (credentials address achievements by it); rows made
    # before imports always set one get a random UUID.
    conn = op.get_bind()
    for table in ('frameworks', 'competencies'):
        rows = conn.execute(sa.text(f'SELECT id FROM {table} WHERE identifier IS NULL')).scalars().all()
        for row_id in rows:
            conn.execute(sa.text(f'UPDATE {table} SET identifier = :ident WHERE id = :id'),
                         {'ident': str(uuid.uuid4()), 'id': row_id})


def downgrade():
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_people_credential_subject_id'), type_='unique')
        batch_op.drop_column('credential_subject_id')

    with op.batch_alter_table('issued_credentials', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_issued_credentials_status_index'), type_='unique')
        batch_op.drop_column('status_index')

    with op.batch_alter_table('competencies', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_competencies_framework_id_code'), ['framework_id', 'code'])
        batch_op.drop_column('extra')

    with op.batch_alter_table('frameworks', schema=None) as batch_op:
        batch_op.drop_column('extra')
        batch_op.drop_column('is_public')
