"""What a course requires of whom, by when (issue 15): a set of competencies, an audience, and a due date (fixed,
or a number of days after the person's assignment). services/requirements.py turns requirements into one
"required by" date per (person, competency), stored on the status row."""
from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow

EVERYONE, DEPARTMENT, JOB_ROLE, PEOPLE = "everyone", "department", "job_role", "people"
AUDIENCES = (EVERYONE, DEPARTMENT, JOB_ROLE, PEOPLE)


class Requirement(db.Model):
    __tablename__ = "requirements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # The competency set: explicit competencies, every leaf under the given areas, every leaf tagged with the
    # given framework departments (of the course's frameworks), resolved to leaves when saved (and again by
    # `flask status rebuild`, after a course changes its frameworks).
    competency_ids: Mapped[list] = mapped_column(JSON, default=list)  # the resolved leaves: what is required
    chosen_ids: Mapped[list] = mapped_column(JSON, default=list)  # the leaves the manager picked one by one
    area_ids: Mapped[list] = mapped_column(JSON, default=list)
    departments: Mapped[list] = mapped_column(JSON, default=list)
    # Who: everyone in the course, a department, a job role (audience_value), or named people (person_ids).
    audience: Mapped[str] = mapped_column(String(20), default=EVERYONE)
    audience_value: Mapped[str | None] = mapped_column(String(100))
    person_ids: Mapped[list] = mapped_column(JSON, default=list)
    # By when: a fixed date, or this many days after the membership's assigned_on.
    due_on = mapped_column(Date)
    due_days: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))

    course = relationship("Course")
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)
    retired_at = mapped_column(UTCDateTime)
