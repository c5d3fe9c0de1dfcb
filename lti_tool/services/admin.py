"""The LMS administrator's console: the tenant's registration and deployments, the tool's signing keys, outbound
health (roster syncs, gradebook scores), tenant settings and the role mapping.

Every function takes an Actor who must be a tool administrator (Person.is_admin) and works on that actor's own
registration (tenant) only: a deployment, course or score of another registration is reported as not found.
Signing keys are the tool's own and shared by every registration of this installation (lti/keys.py): a tenant's
administrator sees them, and only the operator changes them (CLI), so no tenant changes what another's LMS sees.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from ..extensions import db
from ..ids import whole_number
from ..lti import keys
from ..lti.roles import DEFAULT_CONTEXT_MAP, ROLE_LABELS, TOOL_ROLES
from ..models import Course, Deployment, Membership, Person, Registration, ScoreOutbox, ToolKey
from ..models.advantage import FAILED, PENDING
from ..models.base import utcnow
from . import DomainError, Forbidden, NotFound, audit
from . import settings as tenant_settings

# A pending score that failed this many times is shown as stuck (the worker keeps retrying with back-off).
STUCK_ATTEMPTS = 3
LISTED = 100
# The LTI context roles an administrator maps, in the order the settings page shows them.
LTI_ROLES = ("Learner", "Instructor", "TeachingAssistant", "ContentDeveloper", "Mentor", "Administrator")
LTI_ROLE_LABELS = {
    "Learner": "Learner (student)",
    "Instructor": "Instructor (teacher)",
    "TeachingAssistant": "Teaching assistant",
    "ContentDeveloper": "Content developer (course designer)",
    "Mentor": "Mentor (observer)",
    "Administrator": "Course administrator",
}
DEFAULT = "default"
WARNING_DAYS = (1, 365)


def require_admin(actor) -> None:
    if actor is None or not actor.is_admin:
        raise Forbidden(_("Only an LMS administrator can use the tool's administration pages."))


def _registration(actor) -> Registration:
    require_admin(actor)
    return db.session.get(Registration, actor.registration_id)


# --- Registration and deployments ---------------------------------------------------------------------------

@dataclass
class DeploymentRow:
    deployment: Deployment
    courses: int
    last_launch_at: datetime | None


@dataclass
class Overview:
    registration: Registration
    deployments: list[DeploymentRow]


def overview(actor) -> Overview:
    """The actor's registration and its deployments with the courses seen through each and the latest launch
    in them, in one query for all deployments."""
    registration = _registration(actor)
    rows = db.session.execute(
        select(Deployment, func.count(func.distinct(Course.id)), func.max(Membership.last_launch_at))
        .outerjoin(Course, Course.deployment_id == Deployment.id)
        .outerjoin(Membership, Membership.course_id == Course.id)
        .where(Deployment.registration_id == registration.id)
        .group_by(Deployment.id)
        .order_by(Deployment.id)).all()
    return Overview(registration, [DeploymentRow(d, courses, last) for d, courses, last in rows])


def _deployment(actor, deployment_pk: int) -> Deployment:
    row = db.session.get(Deployment, deployment_pk)
    if row is None or row.registration_id != actor.registration_id:
        raise NotFound(_("No such deployment."))
    return row


def set_deployment_active(actor, deployment_pk: int, active: bool) -> Deployment:
    """Enable or disable a deployment: a disabled deployment's launches are refused. The last active deployment
    cannot be disabled, or nobody could open the tool from the LMS to turn it back on."""
    require_admin(actor)
    row = _deployment(actor, deployment_pk)
    if row.active == active:
        return row
    if not active:
        others = db.session.scalar(select(func.count()).select_from(Deployment).where(
            Deployment.registration_id == row.registration_id, Deployment.active.is_(True),
            Deployment.id != row.id))
        if not others:
            raise DomainError(
                f"Deployment {row.deployment_id} is the only active deployment of this LMS. Disabling it would "
                "stop every launch, including yours, so the tool could not be reopened to turn it back on.",
                code="last_deployment")
    before = {"active": row.active}
    row.active = active
    db.session.flush()
    audit.record(actor, "deployment.enabled" if active else "deployment.disabled", row, before=before,
                 after={"active": active, "deployment_id": row.deployment_id})
    return row


# --- Signing keys -------------------------------------------------------------------------------------------

def published_keys(actor) -> list[ToolKey]:
    require_admin(actor)
    return keys.published_keys()


def signing_kid(actor) -> str:
    require_admin(actor)
    return keys.signing_key().kid


# --- Outbound health ------------------------------------------------------------------------------------------

# A pending score this long past its due time means no delivery worker is running.
OVERDUE = timedelta(minutes=10)


@dataclass
class Health:
    roster_failures: list[Course]
    stuck_scores: list[tuple[ScoreOutbox, Course, Person]]
    stuck_total: int
    pending_total: int
    overdue_total: int


def _stuck():
    return or_(ScoreOutbox.status == FAILED,
               (ScoreOutbox.status == PENDING) & (ScoreOutbox.attempts >= STUCK_ATTEMPTS))


def health(actor) -> Health:
    """Courses whose last roster sync failed, and scores that did not reach the gradebook (failed, or pending
    after several attempts), newest problems first."""
    require_admin(actor)
    reg_id = actor.registration_id
    courses = list(db.session.scalars(
        select(Course).where(Course.registration_id == reg_id, Course.roster_error.is_not(None))
        .order_by(Course.updated_at.desc(), Course.id).limit(LISTED)))
    stuck = db.session.execute(
        select(ScoreOutbox, Course, Person)
        .join(Course, Course.id == ScoreOutbox.course_id)
        .join(Person, Person.id == ScoreOutbox.person_id)
        .where(ScoreOutbox.registration_id == reg_id, _stuck())
        .order_by(ScoreOutbox.id.desc()).limit(LISTED)).all()
    overdue = (ScoreOutbox.status == PENDING) & (ScoreOutbox.next_attempt_at < utcnow() - OVERDUE)
    total, pending, late = db.session.execute(
        select(func.count().filter(_stuck()), func.count().filter(ScoreOutbox.status == PENDING),
               func.count().filter(overdue))
        .where(ScoreOutbox.registration_id == reg_id)).one()
    return Health(courses, [tuple(r) for r in stuck], total, pending, late)


def retry_scores(actor, score_ids=None) -> int:
    """Send stuck scores again at the next delivery run: status pending, due now. `score_ids` None retries every
    stuck score of the tenant; ids of other tenants, or of scores that are not stuck, are refused as not found."""
    require_admin(actor)
    query = select(ScoreOutbox).where(ScoreOutbox.registration_id == actor.registration_id, _stuck())
    if score_ids is not None:
        wanted = set(score_ids)
        if not wanted:
            raise DomainError(_("Choose at least one score to retry."))
        query = query.where(ScoreOutbox.id.in_(wanted))
    rows = list(db.session.scalars(query.order_by(ScoreOutbox.id)))
    if score_ids is not None and len(rows) != len(wanted):
        raise NotFound(_("No such stuck score (it may have been delivered or retried already)."))
    now = utcnow()
    for row in rows:
        before = {"status": row.status, "attempts": row.attempts, "next_attempt_at": row.next_attempt_at}
        row.status, row.next_attempt_at = PENDING, now
        db.session.flush()
        audit.record(actor, "score.retry", row, before=before,
                     after={"status": row.status, "attempts": row.attempts, "next_attempt_at": now},
                     course_id=row.course_id)
    return len(rows)


# --- Settings -------------------------------------------------------------------------------------------------

def update_warning_days(actor, raw) -> dict:
    """The revalidation warning window, in whole days from 1 to 365 (the form sends text)."""
    require_admin(actor)
    low, high = WARNING_DAYS
    text = str(raw if raw is not None else "").strip()
    message = f"Enter a whole number of days from {low} to {high}."
    days = whole_number(text, low, high)
    if days is None:
        raise DomainError(message, code="invalid_setting", fields={"revalidation_warning_days": message})
    return tenant_settings.update(actor, {"revalidation_warning_days": days})


def role_choices(registration: Registration) -> dict[str, str]:
    """{LTI role: tool role or "default"} for the roles the settings page maps."""
    stored = registration.role_mapping or {}
    return {role: stored.get(role, DEFAULT) for role in LTI_ROLES}


def default_role(lti_role: str) -> str:
    return DEFAULT_CONTEXT_MAP[lti_role]


def other_overrides(registration: Registration) -> dict[str, str]:
    """Overrides the page does not manage (full role URIs set from the command line); kept as they are."""
    return {k: v for k, v in (registration.role_mapping or {}).items() if k not in LTI_ROLES}


def update_role_mapping(actor, choices: dict) -> dict:
    """Map each LTI context role to a tool role, or back to the default. Applies from each person's next launch."""
    registration = _registration(actor)
    errors = {}
    for role in choices:
        if role not in LTI_ROLES:
            errors[role] = "Not an LTI role this page maps."
    for role in LTI_ROLES:
        value = choices.get(role)
        if value is None:
            errors[role] = f"Choose a tool role for {LTI_ROLE_LABELS[role]}."
        elif value != DEFAULT and value not in TOOL_ROLES:
            errors[role] = f"Choose one of the listed tool roles for {LTI_ROLE_LABELS[role]}."
    if errors:
        raise DomainError(_("Some roles are not mapped to a known tool role."), code="invalid_role_mapping",
                          fields=errors)
    before = dict(registration.role_mapping or {})
    after = other_overrides(registration)
    after.update({role: choices[role] for role in LTI_ROLES if choices[role] != DEFAULT})
    if after == before:
        return after
    registration.role_mapping = after
    db.session.flush()
    audit.record(actor, "registration.role_mapping", registration, before=before, after=after)
    return after


def role_label(role: str) -> str:
    return ROLE_LABELS.get(role, role)


# --- Courses (the administrator's choice of a course for its frameworks) --------------------------------------

def tenant_courses(actor) -> list[Course]:
    require_admin(actor)
    return list(db.session.scalars(select(Course).where(Course.registration_id == actor.registration_id)
                                   .order_by(Course.title, Course.id).limit(500)))
