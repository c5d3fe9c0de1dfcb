"""One-time form submission keys: a second submit of the same form shows the first one's result."""
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow


class FormSubmission(db.Model):
    """A key a form carried, claimed by the first request that posted it. The primary key makes the claim
    atomic: a parallel second insert waits for the first transaction and then fails (or succeeds, if the first
    rolled back and so wrote nothing)."""

    __tablename__ = "form_submissions"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    # Where the first submit sent the browser (without the session token), once it finished.
    result_url: Mapped[str | None] = mapped_column(String(2000))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)
