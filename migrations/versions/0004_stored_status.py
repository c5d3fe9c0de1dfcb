"""competency_statuses: the stored current status of each (technician, competency), filled from the history

Revision ID: 0004_stored_status
Revises: 0008_standards
Create Date: 2026-11-30 20:30:00

"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from lti_tool.models.base import UTCDateTime

# revision identifiers, used by Alembic.
revision = "0004_stored_status"
down_revision = "0008_standards"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('competency_statuses',
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('competency_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=30), nullable=False),
    sa.Column('sign_off_id', sa.Integer(), nullable=True),
    sa.Column('achieved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('signer_name', sa.String(length=300), nullable=True),
    sa.Column('signer_role', sa.String(length=30), nullable=True),
    sa.Column('awaiting_review', sa.Boolean(), nullable=False),
    sa.Column('in_progress', sa.Boolean(), nullable=False),
    sa.Column('last_sign_off_id', sa.Integer(), nullable=True),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.Column('corrected', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['competency_id'], ['competencies.id'], name=op.f('fk_competency_statuses_competency_id_competencies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['last_sign_off_id'], ['sign_offs.id'], name=op.f('fk_competency_statuses_last_sign_off_id_sign_offs')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_competency_statuses_person_id_people'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sign_off_id'], ['sign_offs.id'], name=op.f('fk_competency_statuses_sign_off_id_sign_offs')),
    sa.PrimaryKeyConstraint('person_id', 'competency_id', name=op.f('pk_competency_statuses'))
    )
    with op.batch_alter_table('competency_statuses', schema=None) as batch_op:
        batch_op.create_index('ix_competency_statuses_competency_id_state', ['competency_id', 'state'], unique=False)
        batch_op.create_index('ix_competency_statuses_state_expires_at', ['state', 'expires_at'], unique=False)
    _fill()


def downgrade():
    with op.batch_alter_table('competency_statuses', schema=None) as batch_op:
        batch_op.drop_index('ix_competency_statuses_state_expires_at')
        batch_op.drop_index('ix_competency_statuses_competency_id_state')
    op.drop_table('competency_statuses')


# --- Filling the table from the existing history -------------------------------------------------------------
# Plain columns as they stand at this revision (not the app's models, which may have moved on), judged by the
# one rule, lti_tool.services.status.standing (as_of None: everything recorded).

_sign_offs = sa.table("sign_offs", sa.column("id", sa.Integer), sa.column("person_id", sa.Integer),
                      sa.column("competency_id", sa.Integer), sa.column("proficient", sa.Boolean),
                      sa.column("signed_at", UTCDateTime), sa.column("expires_at", UTCDateTime),
                      sa.column("corrects_id", sa.Integer), sa.column("signer_name", sa.String),
                      sa.column("signer_role", sa.String))
_revocations = sa.table("sign_off_revocations", sa.column("sign_off_id", sa.Integer),
                        sa.column("revoked_at", UTCDateTime))
_requests = sa.table("review_requests", sa.column("id", sa.Integer), sa.column("person_id", sa.Integer),
                     sa.column("competency_id", sa.Integer), sa.column("status", sa.String))
_evidence = sa.table("evidence", sa.column("id", sa.Integer), sa.column("person_id", sa.Integer),
                     sa.column("status", sa.String), sa.column("submitted_at", UTCDateTime))
_links = sa.table("evidence_competencies", sa.column("evidence_id", sa.Integer),
                  sa.column("competency_id", sa.Integer))
_statuses = sa.table(
    "competency_statuses", sa.column("person_id", sa.Integer), sa.column("competency_id", sa.Integer),
    sa.column("state", sa.String), sa.column("sign_off_id", sa.Integer), sa.column("achieved_at", UTCDateTime),
    sa.column("expires_at", UTCDateTime), sa.column("signer_name", sa.String), sa.column("signer_role", sa.String),
    sa.column("awaiting_review", sa.Boolean), sa.column("in_progress", sa.Boolean),
    sa.column("last_sign_off_id", sa.Integer), sa.column("revoked", sa.Boolean), sa.column("corrected", sa.Boolean),
    sa.column("updated_at", UTCDateTime))


def _fill():
    from lti_tool.services.status import NOT_STARTED, CompetencyStatus, standing
    from lti_tool.services.status_store import row_values

    conn = op.get_bind()
    sign_offs: dict = {}
    for row in conn.execute(sa.select(*_sign_offs.c, _revocations.c.revoked_at).select_from(
            _sign_offs.outerjoin(_revocations, _revocations.c.sign_off_id == _sign_offs.c.id))):
        sign_offs.setdefault((row.person_id, row.competency_id), []).append(
            (row, row if row.revoked_at is not None else None))
    open_requests: dict = {}
    for row in conn.execute(sa.select(_requests.c.id, _requests.c.person_id, _requests.c.competency_id)
                            .where(_requests.c.status == "open")):
        open_requests.setdefault((row.person_id, row.competency_id), []).append(row.id)
    drafting = {tuple(row) for row in conn.execute(
        sa.select(_evidence.c.person_id, _links.c.competency_id).distinct()
        .select_from(_evidence.join(_links, _links.c.evidence_id == _evidence.c.id))
        .where(_evidence.c.status.in_(("draft", "returned")) | _evidence.c.submitted_at.is_(None)))}
    now = datetime.now(UTC)
    rows = []
    for pair in set(sign_offs) | set(open_requests) | drafting:
        entry = standing(pair[1], sign_offs.get(pair, []), open_requests.get(pair, []), pair in drafting)
        if entry != CompetencyStatus(pair[1], NOT_STARTED):
            rows.append(row_values(pair[0], entry, now))
    for start in range(0, len(rows), 1000):
        conn.execute(sa.insert(_statuses), rows[start:start + 1000])
