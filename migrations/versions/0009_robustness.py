"""robustness: one-time form submission keys; one live record of a CE activity per technician and course

Revision ID: 0009_robustness
Revises: 0010_reports_import
Create Date: 2026-11-30 20:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_robustness'
down_revision = '0010_reports_import'
branch_labels = None
depends_on = None

LIVE = "status <> 'withdrawn'"


def upgrade():
    op.create_table('form_submissions',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('result_url', sa.String(length=2000), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_form_submissions'))
    )
    with op.batch_alter_table('form_submissions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_form_submissions_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_form_submissions_person_id'), ['person_id'], unique=False)

    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ce_uan', sa.String(length=40), nullable=True))

    _backfill_ce_uan()

    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.create_index('uq_evidence_ce_activity', ['person_id', 'course_id', 'ce_uan'], unique=True,
                              postgresql_where=sa.text(LIVE), sqlite_where=sa.text(LIVE))


def _backfill_ce_uan():
    """Copy each live CE record's UAN into the new column. Where a race already made duplicates, the oldest
    record keeps the UAN and the later copies stay out of the index (left for a manager to withdraw), so the
    upgrade never fails on existing data."""
    evidence = sa.table('evidence', sa.column('id', sa.Integer), sa.column('person_id', sa.Integer),
                        sa.column('course_id', sa.Integer), sa.column('kind', sa.String),
                        sa.column('status', sa.String), sa.column('data', sa.JSON),
                        sa.column('ce_uan', sa.String))
    conn = op.get_bind()
    rows = conn.execute(sa.select(evidence.c.id, evidence.c.person_id, evidence.c.course_id, evidence.c.data)
                        .where(evidence.c.kind == 'continuing_education', evidence.c.status != 'withdrawn')
                        .order_by(evidence.c.id)).all()
    seen = set()
    for row in rows:
        uan = (row.data or {}).get('uan') if isinstance(row.data, dict) else None
        if not isinstance(uan, str) or not uan or len(uan) > 40:
            continue
        key = (row.person_id, row.course_id, uan)
        if key in seen:
            continue
        seen.add(key)
        conn.execute(sa.update(evidence).where(evidence.c.id == row.id).values(ce_uan=uan))


def downgrade():
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_index('uq_evidence_ce_activity', postgresql_where=sa.text(LIVE), sqlite_where=sa.text(LIVE))
        batch_op.drop_column('ce_uan')

    with op.batch_alter_table('form_submissions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_form_submissions_person_id'))
        batch_op.drop_index(batch_op.f('ix_form_submissions_created_at'))

    op.drop_table('form_submissions')
