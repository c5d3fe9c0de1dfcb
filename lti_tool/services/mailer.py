"""Sending the rendered messages of the sent-messages table over SMTP (or to the console / a file in
development).

Once only: a worker first claims rows (pending -> sending, one conditional UPDATE ... RETURNING, so two workers
never claim the same row), sends, and marks each row sent in its own commit. A worker that dies between claiming
and sending leaves rows "sending"; the sweep hands them out again after CLAIM_TIMEOUT. The Message-ID is derived
from the event key, so even that rare resend is recognizably the same message.
"""
import hashlib
import logging
import smtplib
import sys
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from flask import current_app
from sqlalchemy import select, update

from ..extensions import db
from ..models import Registration, SentMessage
from ..models.base import utcnow
from ..models.notifications import FAILED, PENDING, SENDING, SENT
from . import settings

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
BASE_DELAY = timedelta(minutes=1)
CLAIM_TIMEOUT = timedelta(minutes=10)
BATCH = 100


def sender(registration: Registration) -> str:
    name = settings.get(registration, "email_sender_name") or current_app.config["TOOL_TITLE"]
    return formataddr((name, current_app.config["MAIL_SENDER"]))


def build(row: SentMessage, from_header: str) -> EmailMessage:
    domain = current_app.config["MAIL_SENDER"].rpartition("@")[2] or "localhost"
    message = EmailMessage()
    message["From"] = from_header
    message["To"] = row.to_address
    message["Subject"] = " ".join(row.subject.split())  # no header injection through a title
    message["Date"] = format_datetime(row.created_at)
    message["Message-ID"] = f"<{hashlib.sha256(row.event_key.encode()).hexdigest()[:32]}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    message["List-Unsubscribe"] = f"<{row.unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(row.body_text)
    message.add_alternative(row.body_html, subtype="html")
    return message


class Transport:
    """One connection for a batch of messages."""

    def __init__(self, config):
        self.config, self.smtp = config, None

    def __enter__(self):
        if self.config["MAIL_BACKEND"] == "smtp":
            cls = smtplib.SMTP_SSL if self.config["MAIL_TLS"] == "ssl" else smtplib.SMTP
            self.smtp = cls(self.config["MAIL_HOST"], self.config["MAIL_PORT"], timeout=self.config["MAIL_TIMEOUT"])
            if self.config["MAIL_TLS"] == "starttls":
                self.smtp.starttls()
            if self.config.get("MAIL_USERNAME"):
                self.smtp.login(self.config["MAIL_USERNAME"], self.config["MAIL_PASSWORD"] or "")
        return self

    def send(self, message: EmailMessage):
        backend = self.config["MAIL_BACKEND"]
        if backend == "smtp":
            self.smtp.send_message(message)
        elif backend == "file":
            with open(self.config["MAIL_FILE"], "a", encoding="utf-8") as out:
                out.write(message.as_string() + "\n")
        else:
            sys.stdout.write(message.as_string() + "\n")
            sys.stdout.flush()

    def __exit__(self, *exc):
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except smtplib.SMTPException:
                pass


def due(now: datetime | None = None, limit: int = 10_000) -> list[int]:
    """Ids to hand to workers: pending and due, and rows claimed by a worker that has not finished (died)."""
    now = now or utcnow()
    db.session.execute(update(SentMessage).where(SentMessage.status == SENDING,
                                                 SentMessage.claimed_at < now - CLAIM_TIMEOUT)
                       .values(status=PENDING))
    return list(db.session.scalars(select(SentMessage.id).where(
        SentMessage.status == PENDING, SentMessage.next_attempt_at <= now).order_by(SentMessage.id).limit(limit)))


def batches(ids: list[int]) -> list[list[int]]:
    return [ids[i:i + BATCH] for i in range(0, len(ids), BATCH)]


def claim(ids, now: datetime) -> list[int]:
    claimed = db.session.scalars(
        update(SentMessage).where(SentMessage.id.in_(list(ids)), SentMessage.status == PENDING,
                                  SentMessage.next_attempt_at <= now)
        .values(status=SENDING, claimed_at=now, attempts=SentMessage.attempts + 1)
        .returning(SentMessage.id)).all()
    db.session.commit()
    return sorted(claimed)


def send_batch(ids, now: datetime | None = None) -> dict:
    """Send the messages of `ids` this worker can claim. Returns counts {sent, retrying, failed}."""
    now = now or utcnow()
    counts = {"sent": 0, "retrying": 0, "failed": 0}
    claimed = claim(ids, now)
    if not claimed:
        return counts
    # Everything is read and built before the first commit (which would expire the rows).
    rows = db.session.scalars(select(SentMessage).where(SentMessage.id.in_(claimed)).order_by(SentMessage.id)).all()
    senders = {reg_id: sender(db.session.get(Registration, reg_id)) for reg_id in {r.registration_id for r in rows}}
    outgoing = [(row.id, row.attempts, build(row, senders[row.registration_id])) for row in rows]
    db.session.rollback()  # nothing written since the claim: end the read transaction
    try:
        transport = Transport(current_app.config).__enter__()
    except (OSError, smtplib.SMTPException) as exc:
        for message_id, attempts, _ in outgoing:
            counts[_failed(message_id, attempts, f"SMTP server unavailable: {exc}", now)] += 1
        db.session.commit()
        return counts
    try:
        for message_id, attempts, message in outgoing:
            try:
                transport.send(message)
            except smtplib.SMTPRecipientsRefused as exc:
                _set(message_id, status=FAILED, last_error=f"Address refused: {list(exc.recipients)}"[:1000])
                counts["failed"] += 1
            except (OSError, smtplib.SMTPException) as exc:
                counts[_failed(message_id, attempts, str(exc), now)] += 1
            else:
                _set(message_id, status=SENT, sent_at=utcnow(), last_error=None)
                counts["sent"] += 1
            db.session.commit()  # each message marked sent as soon as the server took it
    finally:
        transport.__exit__(None, None, None)
    return counts


def _set(message_id: int, **values):
    db.session.execute(update(SentMessage).where(SentMessage.id == message_id).values(**values))


def _failed(message_id: int, attempts: int, error: str, now: datetime) -> str:
    if attempts >= MAX_ATTEMPTS:
        _set(message_id, status=FAILED, last_error=error[:1000])
        return "failed"
    _set(message_id, status=PENDING, last_error=error[:1000],
         next_attempt_at=now + BASE_DELAY * (2 ** (attempts - 1)))
    log.warning("Message %s not sent (attempt %s): %s", message_id, attempts, error)
    return "retrying"
