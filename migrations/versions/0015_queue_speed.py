"""The review queue's keyset index: a course's open review requests by (requested_at, id), partial on open.

Revision ID: 0015_queue_speed
Revises: 0014_person_time_zone
"""
import sqlalchemy as sa
from alembic import op

revision = "0015_queue_speed"
down_revision = "0014_person_time_zone"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_review_requests_open_queue", "review_requests", ["course_id", "requested_at", "id"],
                    unique=False, postgresql_where=sa.text("status = 'open'"),
                    sqlite_where=sa.text("status = 'open'"))


def downgrade():
    op.drop_index("ix_review_requests_open_queue", table_name="review_requests")
