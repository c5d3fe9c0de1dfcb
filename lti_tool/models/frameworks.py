"""Competency frameworks: a tree of competencies with a rating scale, used by courses."""
import uuid

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow

EVIDENCE_KINDS = ("cross_training", "responsibility", "qi_project", "certification", "continuing_education")


class Framework(db.Model):
    """A framework. registration_id NULL means shipped with the tool and visible to every tenant.

    `scale` is the rating scale, ordered lowest first: [{"code", "label", "proficient": bool}, ...].
    """

    __tablename__ = "frameworks"
    __table_args__ = (
        UniqueConstraint("registration_id", "code", "version"),
        # NULL registration_id escapes the constraint above: shipped frameworks need their own, so two processes
        # installing the default framework at once cannot both succeed.
        Index("uq_frameworks_global_code_version", "code", "version", unique=True,
              postgresql_where=text("registration_id IS NULL"), sqlite_where=text("registration_id IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int | None] = mapped_column(ForeignKey("registrations.id"), index=True)
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(300))
    version: Mapped[str] = mapped_column(String(50))
    source: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    # A stable identifier (CASE CFDocument identifier, a UUID) kept across export/import.
    identifier: Mapped[str | None] = mapped_column(String(100), default=lambda: str(uuid.uuid4()))
    scale: Mapped[list] = mapped_column(JSON, default=list)
    # A tenant's framework is readable by anyone over the CASE REST API only when the tenant says so; shipped
    # frameworks (registration_id NULL) always are.
    is_public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # What an imported file held that the tool does not use, kept to be written back on export:
    # {"case": {"document", "associations", "CFDefinitions", "CFRubrics", "extensions"}, "moodle": {"taxonomy"}}.
    extra: Mapped[dict | None] = mapped_column(JSON)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    competencies: Mapped[list["Competency"]] = relationship(
        back_populates="framework", cascade="all, delete-orphan", order_by="Competency.position"
    )

    def level(self, code: str) -> dict | None:
        return next((lvl for lvl in self.scale or [] if lvl.get("code") == code), None)


class Competency(db.Model):
    """One competency. Codes need not be unique (CASE allows two items with one humanCodingScheme) and may be empty
    (a CASE item without one); `identifier` is what identifies an item across systems."""

    __tablename__ = "competencies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    framework_id: Mapped[int] = mapped_column(ForeignKey("frameworks.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("competencies.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    # CASE CFItem identifier; also the competency's public id in credentials (achievement URLs).
    identifier: Mapped[str | None] = mapped_column(String(100), default=lambda: str(uuid.uuid4()))
    # Department / practice-setting tags, e.g. ["iv_room", "hospital"].
    departments: Mapped[list] = mapped_column(JSON, default=list)
    # Which evidence kinds count toward this competency (subset of EVIDENCE_KINDS); empty = any.
    evidence_kinds: Mapped[list] = mapped_column(JSON, default=list)
    # Observable steps a signer ticks, e.g. ["Hand hygiene", "Garbing order", ...].
    checklist: Mapped[list] = mapped_column(JSON, default=list)
    revalidation_months: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)
    # The imported item as the file gave it, for fields the tool does not use: {"case": {...CFItem...}} or
    # {"moodle": {"scalevalues", "scaleconfiguration", "ruletype", ...}}.
    extra: Mapped[dict | None] = mapped_column(JSON)

    framework: Mapped[Framework] = relationship(back_populates="competencies")
    parent: Mapped["Competency | None"] = relationship(remote_side="Competency.id", back_populates="children")
    children: Mapped[list["Competency"]] = relationship(back_populates="parent", order_by="Competency.position")


class CourseFramework(db.Model):
    """A course uses one or more frameworks."""

    __tablename__ = "course_frameworks"

    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    framework_id: Mapped[int] = mapped_column(ForeignKey("frameworks.id", ondelete="CASCADE"), primary_key=True)
    added_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
