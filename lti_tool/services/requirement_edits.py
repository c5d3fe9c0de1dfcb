"""Writing requirements and the people attributes they target (issue 15): managers of the course and the
tenant's administrators; every change audited with the old values. The stored status follows in the same
transaction (status_store listens to requirements and memberships). The rule itself is services/requirements.py.
"""
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import contains_eager

from ..extensions import db
from ..lti.roles import TECHNICIAN
from ..models import Course, Membership, Person, Requirement
from ..models.base import utcnow
from ..models.people import name_order
from ..models.requirements import AUDIENCES, DEPARTMENT, EVERYONE, JOB_ROLE, PEOPLE
from . import DomainError, Forbidden, NotFound, audit, requirements, scope, status
from .placements import DEPARTMENT_LABELS

FIELDS = ("name", "competency_ids", "chosen_ids", "area_ids", "departments", "audience", "audience_value",
          "person_ids", "due_on", "due_days", "active")
MAX_DUE_DAYS = 3650


# --- Reading ----------------------------------------------------------------------------------------------

def _managed_course(actor, course_id: int) -> Course:
    course = scope.course(actor, course_id)
    if actor.is_admin or scope.manages(actor.person.id, course.id):
        return course
    if scope.is_member(actor.person.id, course.id):
        raise Forbidden(_("Only the course's managers can change its requirements."))
    raise NotFound(_("No such course."))


def for_course(actor, course_id: int, include_retired: bool = True) -> tuple[Course, list[Requirement]]:
    course = _managed_course(actor, course_id)
    query = select(Requirement).where(Requirement.course_id == course.id,
                                      Requirement.registration_id == course.registration_id)
    if not include_retired:
        query = query.where(Requirement.active.is_(True))
    return course, list(db.session.scalars(query.order_by(Requirement.active.desc(), Requirement.name,
                                                          Requirement.id)))


def get(actor, requirement_id: int) -> Requirement:
    row = db.session.get(Requirement, requirement_id)
    if row is None or row.registration_id != actor.registration_id:
        raise NotFound(_("No such requirement."))
    _managed_course(actor, row.course_id)
    return row


def technicians(course: Course) -> list[Membership]:
    """The course's technician memberships with their people (active first, then by name), in one query: the
    audience pickers and the roster."""
    return list(db.session.scalars(
        select(Membership).join(Person, Person.id == Membership.person_id)
        .where(Membership.course_id == course.id, Membership.role == TECHNICIAN,
               Person.registration_id == course.registration_id)
        .options(contains_eager(Membership.person))
        .order_by(Membership.active.desc(), *name_order())))


# --- Writing requirements ---------------------------------------------------------------------------------

def _ids(values) -> list[int]:
    out = []
    for value in values or []:
        text = str(value).strip()
        if not text.isdigit() or len(text) > 12:
            raise ValueError(text)
        out.append(int(text))
    return sorted(set(out))


def _clean(course: Course, form: dict) -> dict:
    """The requirement's values from a form (a dict of lists/strings), or a DomainError naming each field."""
    errors: dict = {}
    name = (form.get("name") or "").strip()
    if not name or len(name) > 200 or any(ord(ch) < 32 for ch in name):
        errors["name"] = _("Give a name of at most 200 characters on one line.")
    comps = status.course_competencies(course)
    by_id = {c.id: c for c in comps}
    parents = {c.parent_id for c in comps if c.parent_id is not None}
    try:
        competency_ids = _ids(form.get("competency_ids"))
        area_ids = _ids(form.get("area_ids"))
    except ValueError:
        errors["competency_ids"] = _("Choose competencies from the list.")
        competency_ids, area_ids = [], []
    if any(c not in by_id or c in parents for c in competency_ids):
        errors["competency_ids"] = _("Choose competencies of this course's frameworks.")
    if any(a not in parents for a in area_ids):
        errors["area_ids"] = _("Choose areas of this course's frameworks.")
    departments = sorted(set(form.get("departments") or []))
    if any(d not in DEPARTMENT_LABELS for d in departments):
        errors["departments"] = _("Choose departments from the list.")
    audience = form.get("audience") or EVERYONE
    audience_value, person_ids = None, []
    if audience not in AUDIENCES:
        errors["audience"] = _("Choose who the requirement is for.")
    elif audience == DEPARTMENT:
        audience_value = form.get("audience_department") or ""
        if audience_value not in DEPARTMENT_LABELS:
            errors["audience_department"] = _("Choose a department.")
    elif audience == JOB_ROLE:
        audience_value = form.get("audience_job_role") or ""
        if audience_value not in requirements.job_roles(course.registration):
            errors["audience_job_role"] = _("Choose a job role from the list.")
    elif audience == PEOPLE:
        try:
            person_ids = _ids(form.get("person_ids"))
        except ValueError:
            person_ids = None
        members = {m.person_id for m in technicians(course)}
        if not person_ids or not set(person_ids) <= members:
            errors["person_ids"] = _("Choose one or more technicians of this course.")
    due_on, due_days = None, None
    due_kind = form.get("due_kind") or "date"
    if due_kind == "date":
        try:
            due_on = date.fromisoformat((form.get("due_on") or "").strip())
            if not 2000 <= due_on.year <= 2100:
                raise ValueError
        except ValueError:
            errors["due_on"] = _("Give the due date as a date, e.g. 2026-12-31.")
    elif due_kind == "days":
        raw = (form.get("due_days") or "").strip()
        if not raw.isdigit() or not 0 <= int(raw) <= MAX_DUE_DAYS:
            errors["due_days"] = _("Give a whole number of days from 0 to %(most)s.", most=MAX_DUE_DAYS)
        else:
            due_days = int(raw)
    else:
        errors["due_kind"] = _("Choose a date or a number of days after assignment.")
    resolved = requirements.resolve(course, competency_ids, area_ids, departments) if not errors else []
    if not errors and not resolved:
        errors["competency_ids"] = _("Choose at least one competency, area or department.")
    if errors:
        raise DomainError(_("Some fields need attention."), code="invalid_requirement", fields=errors)
    return {"name": name, "competency_ids": resolved, "area_ids": area_ids, "departments": departments,
            "chosen_ids": competency_ids, "audience": audience, "audience_value": audience_value,
            "person_ids": person_ids, "due_on": due_on, "due_days": due_days}


def _apply(row: Requirement, clean: dict) -> None:
    # The explicit choice is kept apart from the resolved set so that the edit form shows what was chosen.
    row.name = clean["name"]
    row.competency_ids = clean["competency_ids"]
    row.chosen_ids = clean["chosen_ids"]
    row.area_ids = clean["area_ids"]
    row.departments = clean["departments"]
    row.audience, row.audience_value, row.person_ids = clean["audience"], clean["audience_value"], clean["person_ids"]
    row.due_on, row.due_days = clean["due_on"], clean["due_days"]


def create(actor, course_id: int, form: dict) -> Requirement:
    course = _managed_course(actor, course_id)
    clean = _clean(course, form)
    row = Requirement(registration_id=course.registration_id, course_id=course.id, created_by_id=actor.person.id,
                      active=True)
    _apply(row, clean)
    db.session.add(row)
    db.session.flush()
    audit.record(actor, "requirement.create", row, after=audit.snapshot(row, FIELDS), course_id=course.id)
    return row


def update(actor, requirement_id: int, form: dict) -> Requirement:
    row = get(actor, requirement_id)
    if not row.active:
        raise DomainError(_("A retired requirement cannot be changed."), code="retired", status=409)
    clean = _clean(row.course, form)
    before = audit.snapshot(row, FIELDS)
    _apply(row, clean)
    db.session.flush()
    audit.record(actor, "requirement.update", row, before=before, after=audit.snapshot(row, FIELDS),
                 course_id=row.course_id)
    return row


def retire(actor, requirement_id: int) -> Requirement:
    row = get(actor, requirement_id)
    if not row.active:
        return row
    before = audit.snapshot(row, FIELDS)
    row.active, row.retired_at = False, utcnow()
    db.session.flush()
    audit.record(actor, "requirement.retire", row, before=before, after=audit.snapshot(row, FIELDS),
                 course_id=row.course_id)
    return row


# --- People's attributes ----------------------------------------------------------------------------------

ATTRIBUTES = ("department", "job_role", "assigned_on")


def set_attributes(actor, course_id: int, person_ids, form: dict) -> list[Membership]:
    """Set department / job role / assignment date of some technicians of a course (only the fields given;
    an empty value clears). Audited per person."""
    course = _managed_course(actor, course_id)
    try:
        person_ids = _ids(person_ids)
    except ValueError:
        person_ids = []
    members = {m.person_id: m for m in technicians(course)}
    errors: dict = {}
    if not person_ids or not set(person_ids) <= set(members):
        errors["person_ids"] = _("Choose one or more technicians of this course.")
    changes: dict = {}
    if "department" in form:
        value = form.get("department") or None
        if value is not None and value not in DEPARTMENT_LABELS:
            errors["department"] = _("Choose a department from the list.")
        changes["department"] = value
    if "job_role" in form:
        value = form.get("job_role") or None
        if value is not None and value not in requirements.job_roles(course.registration):
            errors["job_role"] = _("Choose a job role from the list.")
        changes["job_role"] = value
    if "assigned_on" in form:
        raw = (form.get("assigned_on") or "").strip()
        try:
            value = date.fromisoformat(raw) if raw else None
            if value is not None and not 1970 <= value.year <= 2100:
                raise ValueError
        except ValueError:
            errors["assigned_on"] = _("Give the date as a date, e.g. 2026-08-01.")
            value = None
        changes["assigned_on"] = value
    if not errors and not changes:
        errors["department"] = _("Choose what to change.")
    if errors:
        raise DomainError(_("Some fields need attention."), code="invalid_attributes", fields=errors)
    changed = []
    for person_id in person_ids:
        membership = members[person_id]
        before = audit.snapshot(membership, ATTRIBUTES)
        for name, value in changes.items():
            setattr(membership, name, value)
        after = audit.snapshot(membership, ATTRIBUTES)
        if after != before:
            db.session.flush()
            audit.record(actor, "membership.attributes", membership, before=before, after=after,
                         course_id=course.id)
            changed.append(membership)
    return changed


def attributes_from_launch(membership: Membership, custom: dict, registration) -> None:
    """LTI custom parameters `pharmacy_department` / `pharmacy_job_role` set the attributes when sent with a
    known value (anything else is ignored: the launch must not fail on an LMS's typo)."""
    department = (custom or {}).get("pharmacy_department")
    job_role = (custom or {}).get("pharmacy_job_role")
    if isinstance(department, str) and department in DEPARTMENT_LABELS and membership.department != department:
        membership.department = department
    if (isinstance(job_role, str) and job_role in requirements.job_roles(registration)
            and membership.job_role != job_role):
        membership.job_role = job_role
