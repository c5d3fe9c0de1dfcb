"""Requirements (issue 15): which competencies a course requires of whom, by when.

THE rule for "required by", asked by the stored status (status_store) and by the history (status.history):
for each (technician, competency), the earliest due date among the requirements that apply, with that
requirement. A requirement applies to the active technician memberships of its course that its audience picks
(everyone, a department, a job role, named people) and covers its resolved competency set. Its due date is fixed
(`due_on`) or `due_days` after the membership's `assigned_on` (default: the local day the membership was
created). At a moment in the past, the requirements in effect then count (created by then, not yet retired);
people's departments, job roles and assignment dates are taken as they are now.

Writing requirements and people's attributes is services/requirement_edits.py.
"""
from datetime import date, datetime, timedelta

from flask_babel import gettext
from sqlalchemy import select

from .. import formatting
from ..extensions import db
from ..lti.roles import TECHNICIAN
from ..models import Competency, Course, Membership, Registration, Requirement
from ..models.base import among
from ..models.requirements import DEPARTMENT, EVERYONE, JOB_ROLE
from . import frameworks, settings

# --- The rule ----------------------------------------------------------------------------------------------

def assigned_on(membership, tz) -> date:
    """The day "N days after assignment" counts from: set by a manager, else the membership's first day."""
    return membership.assigned_on or membership.created_at.astimezone(tz).date()


def applies_to(requirement: Requirement, membership) -> bool:
    """`membership`: a Membership, or a row of its columns (person_id, department, job_role, assigned_on,
    created_at), as required_by() reads them."""
    if requirement.audience == EVERYONE:
        return True
    if requirement.audience == DEPARTMENT:
        return membership.department is not None and membership.department == requirement.audience_value
    if requirement.audience == JOB_ROLE:
        return membership.job_role is not None and membership.job_role == requirement.audience_value
    return membership.person_id in (requirement.person_ids or [])


def due_date(requirement: Requirement, membership, tz) -> date:
    if requirement.due_on is not None:
        return requirement.due_on
    return assigned_on(membership, tz) + timedelta(days=requirement.due_days or 0)


def in_effect(as_of: datetime | None):
    """Where-clause: the requirements that count now (active) or at `as_of` (created by then, retired after)."""
    if as_of is None:
        return Requirement.active.is_(True)
    return (Requirement.created_at <= as_of) & (Requirement.retired_at.is_(None) | (Requirement.retired_at > as_of))


def required_by(person_ids, competency_ids=None, as_of: datetime | None = None) -> dict:
    """{(person_id, competency_id): (date, requirement_id)}: the earliest due date of the requirements that apply
    (ties: the older requirement). Two queries: the requirements in effect in the people's courses, then the
    memberships they may apply to (only the columns the rule reads: a course of thousands of technicians is
    thousands of rows, and decoding each requirement's lists again on every row of one joined query took longer
    than the rest of saving it). `competency_ids` None: every competency required of them."""
    person_ids = list(person_ids)
    if not person_ids:
        return {}
    wanted = None if competency_ids is None else set(competency_ids)
    technician = (among(Membership.person_id, person_ids, db.engine.dialect.name), Membership.active.is_(True),
                  Membership.role == TECHNICIAN)
    found_requirements = db.session.execute(
        select(Requirement, Registration)
        .join(Registration, Registration.id == Requirement.registration_id)
        .where(in_effect(as_of), Requirement.course_id.in_(select(Membership.course_id).where(*technician)))
        .order_by(Requirement.id)).all()
    if not found_requirements:
        return {}
    by_course: dict = {}
    zones: dict = {}
    for requirement, registration in found_requirements:
        if registration.id not in zones:
            zones[registration.id] = settings.time_zone(registration)
        covered = [c for c in requirement.competency_ids or [] if wanted is None or c in wanted]
        if covered:
            by_course.setdefault(requirement.course_id, []).append((requirement, zones[registration.id], covered))
    if not by_course:
        return {}
    members = db.session.execute(
        select(Membership.person_id, Membership.course_id, Membership.department, Membership.job_role,
               Membership.assigned_on, Membership.created_at)
        .where(*technician, Membership.course_id.in_(by_course))).all()
    found: dict = {}
    for membership in members:
        for requirement, tz, covered in by_course[membership.course_id]:
            if not applies_to(requirement, membership):
                continue
            due = due_date(requirement, membership, tz)
            for competency_id in covered:
                key = (membership.person_id, competency_id)
                if key not in found or due < found[key][0]:
                    found[key] = (due, requirement.id)
    return found


def job_roles(registration) -> list[str]:
    """The tenant's job roles (a setting with a sensible default list)."""
    return list(settings.get(registration, "job_roles"))


def resolve(course: Course, competency_ids, area_ids, departments) -> list[int]:
    """The leaves of the course's frameworks that a competency set names: explicit leaves, the leaves under the
    given areas, the leaves tagged with the given departments."""
    comps = db.session.scalars(
        select(Competency).where(Competency.framework_id.in_(frameworks.used_framework_ids(course)))).all()
    by_id = {c.id: c for c in comps}
    parents = {c.parent_id for c in comps if c.parent_id is not None}
    leaves = [c for c in comps if c.id not in parents]
    areas, tags, chosen = set(area_ids), set(departments), set(competency_ids)

    def under_area(c: Competency) -> bool:
        node = c
        while node.parent_id is not None and node.parent_id in by_id:
            if node.parent_id in areas:
                return True
            node = by_id[node.parent_id]
        return False

    return sorted(c.id for c in leaves
                  if c.id in chosen or under_area(c) or tags.intersection(c.departments or []))


def required_list(statuses: dict, competencies: dict) -> dict:
    """What is required of one technician, from their statuses (status.compute: the stored rows, with the clock's
    flags): {"open": [...], "met": n}. Open items come overdue first, then by date; each is a dict with the
    competency, its date, and the flags. No query: the portfolio already holds the statuses."""
    open_items, met = [], 0
    for competency_id, entry in statuses.items():
        if entry.required_by is None or competency_id not in competencies:
            continue
        if entry.held:
            met += 1
            continue
        open_items.append({"competency": competencies[competency_id], "required_by": entry.required_by,
                           "required_by_text": formatting.us_date(entry.required_by),
                           "overdue": entry.overdue, "due_soon": entry.required_due, "status": entry.status})
    open_items.sort(key=lambda item: (not item["overdue"], item["required_by"], item["competency"].code or ""))
    return {"open": open_items, "met": met}


def note(entry) -> str:
    """What a report or export adds to a status about its requirement: "overdue, required by Nov 30, 2026",
    "required by Dec 31, 2026", or "" (not required, or held)."""
    if entry.required_by is None or entry.held:
        return ""
    day = formatting.us_date(entry.required_by)
    if entry.overdue:
        return gettext("overdue, required by %(date)s", date=day)
    return gettext("required by %(date)s", date=day)
