"""LTI Advantage state: placed resource links (deep linking, AGS line items) and the score outbox."""
from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow


class ResourceLink(db.Model):
    """A link placed in a course, with what it points at and, when graded, its AGS line item."""

    __tablename__ = "resource_links"
    __table_args__ = (UniqueConstraint("course_id", "resource_link_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"), index=True)
    resource_link_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(500))
    # What the link opens: {"type": "competency"|"department"|"pathway"|"portfolio"|"matrix", "id": ...}
    target: Mapped[dict | None] = mapped_column(JSON)
    lineitem_url: Mapped[str | None] = mapped_column(String(1000))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)

    course = relationship("Course")


PENDING, SENT, FAILED = "pending", "sent", "failed"


class ScoreOutbox(db.Model):
    """A score waiting to reach the LMS gradebook. Rows are written in the same transaction as the change that
    caused them, and delivered later with retries and back-off, so a platform that is down loses nothing."""

    __tablename__ = "score_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    lineitem_url: Mapped[str] = mapped_column(String(1000))
    # The AGS score body (userId, scoreGiven, ..., timestamp) exactly as it will be POSTed.
    payload: Mapped[dict] = mapped_column(JSON)
    score_timestamp = mapped_column(UTCDateTime, nullable=False)
    status: Mapped[str] = mapped_column(String(20), default=PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    sent_at = mapped_column(UTCDateTime)
