"""people.time_zone: the person's own time zone (from the LMS, else the browser).

Revision ID: 0014_person_time_zone
Revises: 0012_language
"""
import sqlalchemy as sa
from alembic import op

revision = "0014_person_time_zone"
down_revision = "0012_language"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("time_zone", sa.String(64), nullable=True))
        batch.add_column(sa.Column("time_zone_source", sa.String(10), nullable=True))


def downgrade():
    with op.batch_alter_table("people") as batch:
        batch.drop_column("time_zone_source")
        batch.drop_column("time_zone")
