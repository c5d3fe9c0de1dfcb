"""Review requests, sign-offs (never edited), revocations, corrections and named preceptors."""
from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow

OPEN, SIGNED, RETURNED, WITHDRAWN = "open", "signed_off", "returned", "withdrawn"
METHODS = ("observed", "demonstrated", "verified_document", "attested")


class ReviewRequest(db.Model):
    """A technician asks for one competency to be signed off on the strength of one evidence item."""

    __tablename__ = "review_requests"
    __table_args__ = (
        # The review queue: a course's open requests, oldest first (the keyset order). Partial, so it holds only
        # what waits (closed requests pile up forever) and a page of 50 reads 50 entries whatever the team size.
        Index("ix_review_requests_open_queue", "course_id", "requested_at", "id",
              postgresql_where=text("status = 'open'"), sqlite_where=text("status = 'open'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id"), index=True)
    competency_id: Mapped[int] = mapped_column(ForeignKey("competencies.id"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=OPEN, index=True)
    evidence_revision: Mapped[int] = mapped_column(Integer)
    requested_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    resolved_at = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    return_comment: Mapped[str | None] = mapped_column(Text)

    evidence = relationship("Evidence")
    competency = relationship("Competency")
    course = relationship("Course")
    person = relationship("Person", foreign_keys=[person_id])
    resolved_by = relationship("Person", foreign_keys=[resolved_by_id])


class SignOff(db.Model):
    """An attestation: who signed, in what role, when, how, on what evidence (hash and snapshot).

    Never updated after insert. A revocation is a SignOffRevocation row; a correction is a new SignOff whose
    `corrects_id` names the one it replaces (with a reason).
    """

    __tablename__ = "sign_offs"
    # Exactly one sign-off per review request, even when two managers click at the same moment.
    __table_args__ = (UniqueConstraint("review_request_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    review_request_id: Mapped[int | None] = mapped_column(ForeignKey("review_requests.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    competency_id: Mapped[int] = mapped_column(ForeignKey("competencies.id"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"), index=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id"), index=True)
    signer_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    signer_name: Mapped[str] = mapped_column(String(300))
    signer_role: Mapped[str] = mapped_column(String(30))
    rating_code: Mapped[str] = mapped_column(String(50))
    rating_label: Mapped[str] = mapped_column(String(200))
    proficient: Mapped[bool] = mapped_column(Boolean)
    method: Mapped[str] = mapped_column(String(30))
    checklist_seen: Mapped[list] = mapped_column(JSON, default=list)
    comment: Mapped[str | None] = mapped_column(Text)
    evidence_revision: Mapped[int] = mapped_column(Integer)
    evidence_hash: Mapped[str] = mapped_column(String(64))
    evidence_snapshot: Mapped[dict] = mapped_column(JSON)
    signed_at = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)
    expires_at = mapped_column(UTCDateTime, index=True)
    # Unique: a sign-off is corrected at most once, so corrections form a chain and two concurrent
    # corrections cannot both land.
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("sign_offs.id"), unique=True)
    correction_reason: Mapped[str | None] = mapped_column(Text)

    person = relationship("Person", foreign_keys=[person_id])
    signer = relationship("Person", foreign_keys=[signer_id])
    competency = relationship("Competency")
    evidence = relationship("Evidence")
    review_request = relationship("ReviewRequest")
    revocation: Mapped["SignOffRevocation | None"] = relationship(back_populates="sign_off", uselist=False)


class SignOffRevocation(db.Model):
    __tablename__ = "sign_off_revocations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sign_off_id: Mapped[int] = mapped_column(ForeignKey("sign_offs.id"), unique=True)
    revoked_by_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    reason: Mapped[str] = mapped_column(Text)
    revoked_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    sign_off: Mapped[SignOff] = relationship(back_populates="revocation")
    revoked_by = relationship("Person")


class Preceptor(db.Model):
    """A technician named by a course manager as preceptor/trainer for a competency: they may sign off
    others' cross-training there (Moodle sends non-editing teachers as learners, so this is how they sign)."""

    __tablename__ = "preceptors"
    __table_args__ = (UniqueConstraint("course_id", "person_id", "competency_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    competency_id: Mapped[int] = mapped_column(ForeignKey("competencies.id"))
    named_by_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    named_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    person = relationship("Person", foreign_keys=[person_id])
    competency = relationship("Competency")
