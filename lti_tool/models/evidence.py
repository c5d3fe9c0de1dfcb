"""Evidence a technician records: one row per item, kind-specific fields validated by schemas into `data`."""
from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow

# Evidence lifecycle. Evidence is editable while draft or returned; once submitted it is frozen until
# every review request on it is resolved; once any sign-off attests to it, it is never edited again.
DRAFT, SUBMITTED, RETURNED, SIGNED_OFF, WITHDRAWN = "draft", "submitted", "returned", "signed_off", "withdrawn"


class Evidence(db.Model):
    __tablename__ = "evidence"
    __table_args__ = (
        # One live record of a CE activity per technician and course: the same rule the evidence service checks
        # before inserting, enforced where two parallel requests cannot both pass it. A withdrawn record leaves
        # the index (it counts for nothing, so the activity may be recorded again); another course may record it
        # too (CE hours count an activity once across courses, services/ce.py).
        Index("uq_evidence_ce_activity", "person_id", "course_id", "ce_uan", unique=True,
              postgresql_where=text("status <> 'withdrawn'"), sqlite_where=text("status <> 'withdrawn'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(300))
    # The kind's fields as validated by its marshmallow schema (dates as ISO strings).
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default=DRAFT, index=True)
    # Bumped on every edit; a sign-off records which revision it attests to.
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)
    submitted_at = mapped_column(UTCDateTime)
    # The canonical UAN of continuing-education evidence (a copy of data["uan"]), for the index above.
    ce_uan: Mapped[str | None] = mapped_column(String(40))

    person = relationship("Person")
    course = relationship("Course")
    competency_links: Mapped[list["EvidenceCompetency"]] = relationship(
        back_populates="evidence", cascade="all, delete-orphan"
    )
    attachments: Mapped[list["Attachment"]] = relationship(back_populates="evidence", order_by="Attachment.id")


class EvidenceCompetency(db.Model):
    __tablename__ = "evidence_competencies"

    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id", ondelete="CASCADE"), primary_key=True)
    competency_id: Mapped[int] = mapped_column(ForeignKey("competencies.id"), primary_key=True, index=True)

    evidence: Mapped[Evidence] = relationship(back_populates="competency_links")
    competency = relationship("Competency")


class Attachment(db.Model):
    """A file on an evidence item; bytes live in attachment storage under storage_key."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(255), unique=True)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    uploaded_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)

    evidence: Mapped[Evidence] = relationship(back_populates="attachments")
