"""One-time form submission keys: a second submit of the same form shows the first one's result."""
from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow


class FormSubmission(db.Model):
    """A key a form carried, claimed by the first request that posted it. The primary key makes the claim
    atomic: a parallel second insert waits for the first transaction and then fails (or succeeds, if the first
    rolled back and so wrote nothing)."""

    __tablename__ = "form_submissions"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Deliberately no foreign key: its KEY SHARE lock on the person, taken by the claim at the start of a request,
    # deadlocks with the FOR UPDATE that rewriting a person's status takes (services/status_store.py) while a
    # parallel request of the same person waits on the CE activity index.
    person_id: Mapped[int] = mapped_column(Integer, index=True)
    # Where the first submit sent the browser (without the session token), once it finished.
    result_url: Mapped[str | None] = mapped_column(String(2000))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)
