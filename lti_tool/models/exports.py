"""Issued credentials (what the public verification page answers for) and manager export jobs."""
from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow

# What an issued credential stands for.
ACHIEVEMENT, CERTIFICATION, CLR, TRANSCRIPT = "achievement", "certification", "clr", "transcript"
CREDENTIAL_KINDS = (ACHIEVEMENT, CERTIFICATION, CLR, TRANSCRIPT)


class IssuedCredential(db.Model):
    """One credential the tool signed (an Open Badges 3.0 AchievementCredential, a CLR 2.0 ClrCredential) or one
    printed transcript. Nothing here is secret: the row lets /verify/<public_id> answer valid, revoked or expired
    from today's state of the sign-offs and evidence it covers.

    `status_index` is the credential's index in the tool's Bitstring Status List (list = index // LIST_SIZE). An
    achievement credential is issued once per sign-off (re-downloads reuse the row, so the status index is
    stable); CLRs and printed transcripts are snapshots, one row each time they are made.
    """

    __tablename__ = "issued_credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    # Position in the Bitstring Status List, drawn at random (the W3C spec: indexes SHOULD be random so a list
    # reveals neither order nor volume of issue). NULL for rows made before random indexes: those use `id`.
    status_index: Mapped[int | None] = mapped_column(Integer, unique=True)
    # For an achievement credential: the sign-off it carries; for a certification: the evidence item.
    sign_off_id: Mapped[int | None] = mapped_column(ForeignKey("sign_offs.id"), index=True)
    evidence_id: Mapped[int | None] = mapped_column(ForeignKey("evidence.id"), index=True)
    # For a CLR or transcript: {"sign_off_ids": [...], "evidence_ids": [...]} it was made from.
    covers: Mapped[dict | None] = mapped_column(JSON)
    name: Mapped[str] = mapped_column(String(500))
    # SHA-256 of the canonical JSON of the credential body as signed (JWT registered claims left out), so a
    # credential presented as plain JSON can be matched with what was issued.
    body_sha256: Mapped[str | None] = mapped_column(String(64))
    issued_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    valid_until = mapped_column(UTCDateTime)

    person = relationship("Person")
    registration = relationship("Registration")


QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


class ExportJob(db.Model):
    """A manager's export that takes a while (a ZIP of every technician's transcript PDF). A queue worker builds
    it and records its progress here, so any server process can answer the progress page's polls, and the
    periodic sweep can hand a job whose worker died to another one."""

    __tablename__ = "export_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Unguessable handle used in URLs (with the session's scope checks on top).
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"), index=True)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30), default="transcripts_zip")
    # {"page_size": "a4"|"letter"}
    options: Mapped[dict | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default=QUEUED, index=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done_count: Mapped[int] = mapped_column(Integer, default=0)
    # How many times a worker claimed the job (a worker that died leaves it running with an old heartbeat).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    file_path: Mapped[str | None] = mapped_column(String(1000))
    file_size: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    started_at = mapped_column(UTCDateTime)
    # Touched with every progress step; a running job not heard from for a while was interrupted.
    heartbeat_at = mapped_column(UTCDateTime)
    finished_at = mapped_column(UTCDateTime)

    course = relationship("Course")
