"""People, courses and memberships as the LMS describes them at launch."""
from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow

# The sub of a person a go-live import created from an e-mail address: "not launched yet", until their first
# launch claims the row (services/launches.claim_imported). Never a sub an LMS sends (theirs are opaque ids).
IMPORTED_SUB_PREFIX = "import:"


def display_name(name, given_name, family_name, email, sub) -> str:
    """How a person is named on pages (also for lists read as plain columns)."""
    return name or " ".join(p for p in (given_name, family_name) if p) or email or sub


class Person(db.Model):
    """A user of one registration (tenant), identified by the platform's `sub`."""

    __tablename__ = "people"
    __table_args__ = (UniqueConstraint("registration_id", "sub"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id"), index=True)
    sub: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(300))
    given_name: Mapped[str | None] = mapped_column(String(150))
    family_name: Mapped[str | None] = mapped_column(String(150))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    # Institution or system Administrator on the platform at the last launch.
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)
    last_launch_at = mapped_column(UTCDateTime)
    # The technician's id in the credentials the tool signs (`urn:uuid:<this>` as credentialSubject.id and `sub`):
    # random, so it says nothing about the LMS account, and stable, so a wallet can tell the holder's credentials
    # belong together. Set at the first issuance.
    credential_subject_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    # The personal calendar feed (/calendar/<token>.ics): only the token's SHA-256 is kept; a new token
    # revokes the old one, None means no feed.
    calendar_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The language the person picked in the tool ("en", "es"); it wins over the launch's. None: never picked.
    language: Mapped[str | None] = mapped_column(String(8))
    # The tool language matching the latest launch's `locale` claim (None when the LMS sent none the tool ships):
    # pages and e-mails follow it until the person picks one.
    launch_language: Mapped[str | None] = mapped_column(String(8))
    # The person's own time zone (IANA name) for times on pages: sent by the LMS at launch (custom parameter
    # `timezone=$Person.address.timezone`, which Canvas and Moodle substitute), else reported once by the browser
    # when the tenant has not set one. `time_zone_source` says which ("lms" or "browser"): the LMS's wins.
    time_zone: Mapped[str | None] = mapped_column(String(64))
    time_zone_source: Mapped[str | None] = mapped_column(String(10))

    registration = relationship("Registration")

    @property
    def display_name(self) -> str:
        return display_name(self.name, self.given_name, self.family_name, self.email, self.sub)

    @property
    def preferred_language(self) -> str | None:
        """What the person reads the tool and its e-mails in: their pick, else their LMS's; None: not known."""
        return self.language or self.launch_language


def name_order() -> tuple:
    """How lists of people are ordered everywhere (matrix, pickers, roster, reports, notices): family name (or
    name, e-mail, LMS id), given name, id. Never NULL, so it can also be a keyset (the matrix's pages)."""
    return (func.lower(func.coalesce(Person.family_name, Person.name, Person.email, Person.sub)),
            func.lower(func.coalesce(Person.given_name, "")), Person.id)


class Course(db.Model):
    """An LMS course (LTI context) of one registration."""

    __tablename__ = "courses"
    __table_args__ = (UniqueConstraint("registration_id", "context_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id"), index=True)
    deployment_id: Mapped[int | None] = mapped_column(ForeignKey("deployments.id"))
    context_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(500))
    label: Mapped[str | None] = mapped_column(String(255))
    # Advantage service endpoints from the latest launch (NRPS memberships, AGS line items).
    nrps_url: Mapped[str | None] = mapped_column(String(1000))
    ags_lineitems_url: Mapped[str | None] = mapped_column(String(1000))
    ags_scopes: Mapped[list | None] = mapped_column(JSON)
    roster_synced_at = mapped_column(UTCDateTime)
    # The last roster failure in plain words, shown to managers until a sync succeeds.
    roster_error: Mapped[str | None] = mapped_column(Text)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)

    registration = relationship("Registration")
    deployment = relationship("Deployment")

    @property
    def display_title(self) -> str:
        return self.title or self.label or self.context_id


class Membership(db.Model):
    """A person's place in a course, with the tool role mapped from the LTI roles."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("person_id", "course_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"), index=True)
    role: Mapped[str] = mapped_column(String(30))
    lti_roles: Mapped[list] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)
    last_launch_at = mapped_column(UTCDateTime)
    # "launch" (the person opened the tool here) or "roster" (known only from the course roster).
    source: Mapped[str] = mapped_column(String(20), default="launch", server_default="launch")
    # What requirements target (services/requirements.py): the framework department the person works in, their
    # job role (the tenant's list), and the hire/assignment date that "N days after assignment" counts from
    # (None: the day the membership was created).
    department: Mapped[str | None] = mapped_column(String(30))
    job_role: Mapped[str | None] = mapped_column(String(60))
    assigned_on = mapped_column(Date)

    person: Mapped[Person] = relationship()
    course: Mapped[Course] = relationship()
