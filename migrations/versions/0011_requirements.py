"""requirements: who must hold which competencies by when; membership attributes they target (department, job
role, assignment date); required_by on the stored status; the personal calendar feed's token hash

Existing rows need no backfill: no requirement exists yet, so nothing is required of anyone.

Revision ID: 0011_requirements
Revises: 0007_task_queue
Create Date: 2026-11-30 23:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0011_requirements"
down_revision = "0007_task_queue"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "requirements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("competency_ids", sa.JSON(), nullable=False),
        sa.Column("chosen_ids", sa.JSON(), nullable=False),
        sa.Column("area_ids", sa.JSON(), nullable=False),
        sa.Column("departments", sa.JSON(), nullable=False),
        sa.Column("audience", sa.String(length=20), nullable=False),
        sa.Column("audience_value", sa.String(length=100), nullable=True),
        sa.Column("person_ids", sa.JSON(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("due_days", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], name=op.f("fk_requirements_course_id_courses")),
        sa.ForeignKeyConstraint(["created_by_id"], ["people.id"], name=op.f("fk_requirements_created_by_id_people")),
        sa.ForeignKeyConstraint(["registration_id"], ["registrations.id"],
                                name=op.f("fk_requirements_registration_id_registrations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_requirements")),
    )
    with op.batch_alter_table("requirements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_requirements_course_id"), ["course_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_requirements_registration_id"), ["registration_id"], unique=False)

    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.add_column(sa.Column("department", sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column("job_role", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("assigned_on", sa.Date(), nullable=True))

    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("calendar_token_hash", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_people_calendar_token_hash"), ["calendar_token_hash"])

    with op.batch_alter_table("competency_statuses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("required_by", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("requirement_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_competency_statuses_required_by"), ["required_by"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_competency_statuses_requirement_id_requirements"),
                                    "requirements", ["requirement_id"], ["id"], ondelete="SET NULL")


def downgrade():
    with op.batch_alter_table("competency_statuses", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_competency_statuses_requirement_id_requirements"),
                                 type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_competency_statuses_required_by"))
        batch_op.drop_column("requirement_id")
        batch_op.drop_column("required_by")
    # Rows that existed only because something was required say nothing without requirements.
    op.execute("DELETE FROM competency_statuses WHERE state = 'not_started' AND NOT awaiting_review "
               "AND NOT in_progress AND last_sign_off_id IS NULL")

    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_people_calendar_token_hash"), type_="unique")
        batch_op.drop_column("calendar_token_hash")

    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_column("assigned_on")
        batch_op.drop_column("job_role")
        batch_op.drop_column("department")

    op.drop_table("requirements")
