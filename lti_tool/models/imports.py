"""Go-live imports of prior records: each import (a batch) and the natural key of every record it created.

The natural key (a SHA-256 of what identifies a record in the source: tenant, technician, competency or
credential or activity, date) is unique per tenant, so importing the same row twice creates one record. A batch
remembers what it created so it can be undone as a whole.

A batch is also the import's job: checked (the dry run passed; the file waits in the attachment storage), queued
(the administrator pressed Import), running (a queue worker writes it in chunks, committing each, with a
heartbeat), applied, failed or undone. Only an applied batch counts as imported.
"""
from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow

CHECKED, QUEUED, RUNNING, APPLIED, FAILED, UNDONE = "checked", "queued", "running", "applied", "failed", "undone"


class ImportBatch(db.Model):
    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    kind: Mapped[str] = mapped_column(String(30))
    filename: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default=APPLIED, index=True)
    # {"created": {...counts}, "skipped": n, "rows": n, "mapping": {...}}
    summary: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    undone_at = mapped_column(UTCDateTime)
    # The job: the checked file's key in the attachment storage (until imported or purged), the options it was
    # checked with, rows to create and rows done, worker claims, and why it failed.
    storage_key: Mapped[str | None] = mapped_column(String(200))
    options: Mapped[dict | None] = mapped_column(JSON)
    total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    done_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    started_at = mapped_column(UTCDateTime)
    heartbeat_at = mapped_column(UTCDateTime)
    finished_at = mapped_column(UTCDateTime)

    actor = relationship("Person")
    course = relationship("Course")


class ImportedRecord(db.Model):
    __tablename__ = "imported_records"
    __table_args__ = (UniqueConstraint("registration_id", "natural_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batches.id"), index=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id"))
    natural_key: Mapped[str] = mapped_column(String(64))
    # "people", "memberships", "evidence" or "sign_offs" and the row's id.
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int] = mapped_column(Integer)
    row_number: Mapped[int | None] = mapped_column(Integer)
