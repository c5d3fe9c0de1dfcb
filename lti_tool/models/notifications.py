"""E-mail reminders: what was sent (once per event) and what each person wants to receive."""
from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
# What a message is about; also the categories a person can unsubscribe from.
REMINDERS, REVIEW_UPDATES, DIGEST = "reminders", "review_updates", "digest"
CATEGORIES = (REMINDERS, REVIEW_UPDATES, DIGEST)
DIGEST_CHOICES = ("daily", "weekly", "off")


class SentMessage(db.Model):
    """One e-mail for one event. `event_key` (e.g. "expiry:<sign-off>:14") is unique in the database, so however
    many workers plan reminders at once, an event gets one row and one message. The row holds the rendered
    message; workers claim it (pending -> sending) with a conditional update before talking to the SMTP server."""

    __tablename__ = "sent_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    event_key: Mapped[str] = mapped_column(String(200), unique=True)
    category: Mapped[str] = mapped_column(String(30))
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    unsubscribe_url: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(20), default=PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    claimed_at = mapped_column(UTCDateTime)
    sent_at = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    person = relationship("Person")


class NotificationPreference(db.Model):
    """A person's choices; no row means the defaults (everything on, weekly digest)."""

    __tablename__ = "notification_preferences"

    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    reminders: Mapped[bool] = mapped_column(Boolean, default=True)
    review_updates: Mapped[bool] = mapped_column(Boolean, default=True)
    # daily, weekly or off (managers and preceptors)
    digest: Mapped[str] = mapped_column(String(10), default="weekly")
    updated_at = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)
