"""The stored current status of each (technician, competency): what services/status.py's rule makes of the whole
recorded history, kept in the transaction of every change (services/status_store.py), so pages and filters read
one row instead of judging the history. The clock's part (due, expired) is a comparison of `expires_at` with now
at read time. A missing row means "not started"."""
from sqlalchemy import Boolean, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow


class StoredStatus(db.Model):
    __tablename__ = "competency_statuses"
    __table_args__ = (
        # The matrix filters: "expired", "expiring within N days", "due" are ranges of expires_at among held
        # rows; "awaiting review", "in progress", "needs re-assessment" are equalities on state.
        Index("ix_competency_statuses_state_expires_at", "state", "expires_at"),
        Index("ix_competency_statuses_competency_id_state", "competency_id", "state"),
        # "Overdue" and "required" filters: a range of required_by.
        Index("ix_competency_statuses_required_by", "required_by"),
    )

    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    competency_id: Mapped[int] = mapped_column(ForeignKey("competencies.id", ondelete="CASCADE"),
                                               primary_key=True)
    # not_started / in_progress / awaiting_review / needs_reassessment / achieved (held by a sign-off;
    # achieved, due or expired is decided against expires_at when read).
    state: Mapped[str] = mapped_column(String(30))
    sign_off_id: Mapped[int | None] = mapped_column(ForeignKey("sign_offs.id"))
    achieved_at = mapped_column(UTCDateTime)
    expires_at = mapped_column(UTCDateTime)
    signer_name: Mapped[str | None] = mapped_column(String(300))
    signer_role: Mapped[str | None] = mapped_column(String(30))
    awaiting_review: Mapped[bool] = mapped_column(Boolean, default=False)
    in_progress: Mapped[bool] = mapped_column(Boolean, default=False)
    last_sign_off_id: Mapped[int | None] = mapped_column(ForeignKey("sign_offs.id"))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    corrected: Mapped[bool] = mapped_column(Boolean, default=False)
    # The earliest date an active requirement wants the competency by (services/requirements.py), and that
    # requirement; overdue / required-and-due are decided against today when read, like expiry.
    required_by = mapped_column(Date)
    requirement_id: Mapped[int | None] = mapped_column(ForeignKey("requirements.id", ondelete="SET NULL"))
    updated_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
