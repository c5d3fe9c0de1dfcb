"""Go-live imports of prior records: each import (a batch) and the natural key of every record it created.

The natural key (a SHA-256 of what identifies a record in the source: tenant, technician, competency or
credential or activity, date) is unique per tenant, so importing the same row twice creates one record. A batch
remembers what it created so it can be undone as a whole.
"""
from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow

APPLIED, UNDONE = "applied", "undone"


class ImportBatch(db.Model):
    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    kind: Mapped[str] = mapped_column(String(30))
    filename: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default=APPLIED)
    # {"created": {...counts}, "skipped": n, "rows": n, "mapping": {...}}
    summary: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    undone_at = mapped_column(UTCDateTime)

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
