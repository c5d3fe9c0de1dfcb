"""Requirements pages (issue 15): the course's requirements (create, edit, retire) and the roster of technicians
with the department, job role and assignment date requirements target (set one by one or for several at once).
Managers of the course and the tenant's administrators; the rules live in services/requirement_edits.py."""
from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from .. import formatting, tool_session
from ..extensions import db
from ..models.requirements import AUDIENCES, DEPARTMENT, EVERYONE, JOB_ROLE, PEOPLE
from ..permissions import is_course_manager, is_tool_admin, require
from ..services import DomainError, matrix, requirement_edits, requirements
from ..services.actors import Actor
from ..services.placements import DEPARTMENT_LABELS
from ..submissions import once_per_submission
from ..web import redirect_with_notice, viewer_zone

bp = Blueprint("requirements", __name__, url_prefix="/team/requirements")


def _may_manage(session) -> bool:
    return is_course_manager(session) or (is_tool_admin(session) and session.course is not None)


only_managers = require(_may_manage, _l("Requirements are set by this course's managers and the LMS "
                                        "administrator. Your role in this course does not include them."))
AUDIENCE_LABELS = {EVERYONE: _l("Every technician in the course"), DEPARTMENT: _l("A department"),
                   JOB_ROLE: _l("A job role"), PEOPLE: _l("Named technicians")}
assert set(AUDIENCE_LABELS) == set(AUDIENCES)


def _actor():
    return Actor.from_session(tool_session.current())


def _course_id() -> int:
    return tool_session.current().course.id


def _form_values() -> dict:
    form = request.form
    return {"name": form.get("name", ""), "competency_ids": form.getlist("competency_ids"),
            "area_ids": form.getlist("area_ids"), "departments": form.getlist("departments"),
            "audience": form.get("audience", EVERYONE), "audience_department": form.get("audience_department", ""),
            "audience_job_role": form.get("audience_job_role", ""), "person_ids": form.getlist("person_ids"),
            "due_kind": form.get("due_kind", "date"), "due_on": form.get("due_on", ""),
            "due_days": form.get("due_days", "")}


def _form_of(row) -> dict:
    return {"name": row.name, "competency_ids": [str(i) for i in row.chosen_ids or []],
            "area_ids": [str(i) for i in row.area_ids or []], "departments": list(row.departments or []),
            "audience": row.audience,
            "audience_department": row.audience_value if row.audience == DEPARTMENT else "",
            "audience_job_role": row.audience_value if row.audience == JOB_ROLE else "",
            "person_ids": [str(i) for i in row.person_ids or []],
            "due_kind": "days" if row.due_days is not None else "date",
            "due_on": row.due_on.isoformat() if row.due_on else "", "due_days": str(row.due_days or "")}


def describe_due(row) -> str:
    if row.due_on is not None:
        return _("By %(date)s", date=formatting.us_date(row.due_on))
    return _("Within %(days)s days of assignment", days=row.due_days)


def describe_audience(row, people: dict) -> str:
    if row.audience == DEPARTMENT:
        return _("Department: %(name)s", name=DEPARTMENT_LABELS.get(row.audience_value, row.audience_value))
    if row.audience == JOB_ROLE:
        return _("Job role: %(name)s", name=row.audience_value)
    if row.audience == PEOPLE:
        return ", ".join(people[p].person.display_name for p in row.person_ids or [] if p in people)
    return str(AUDIENCE_LABELS[EVERYONE])


@bp.context_processor
def helpers():
    return {"describe_due": describe_due, "describe_audience": describe_audience,
            "audience_labels": AUDIENCE_LABELS, "department_labels": DEPARTMENT_LABELS,
            "team_manager": is_course_manager(tool_session.current()),
            "us_date": lambda value: formatting.us_date(value, viewer_zone())}


def _failed(exc: DomainError) -> int:
    db.session.rollback()
    return exc.status


@bp.route("/")
@only_managers
def index():
    actor = _actor()
    course, rows = requirement_edits.for_course(actor, _course_id())
    members = requirement_edits.technicians(course)
    return render_template("requirements/index.html", rows=rows, course=course, members=members,
                           people={m.person_id: m for m in members}, tree=matrix.course_tree(course),
                           job_roles=requirements.job_roles(course.registration), errors={}, form={})


def _edit_page(row, form, errors, http_status):
    actor = _actor()
    course, _rows = requirement_edits.for_course(actor, _course_id(), include_retired=False)
    return render_template("requirements/edit.html", row=row, form=form, errors=errors,
                           tree=matrix.course_tree(course), members=requirement_edits.technicians(course),
                           job_roles=requirements.job_roles(course.registration)), http_status


@bp.route("/new", methods=["GET", "POST"])
@only_managers
@once_per_submission
def new():
    form = {"audience": EVERYONE, "due_kind": "date"}
    errors, http_status = {}, 200
    if request.method == "POST":
        form = _form_values()
        try:
            row = requirement_edits.create(_actor(), _course_id(), form)
        except DomainError as exc:
            http_status = _failed(exc)
            errors = {**exc.fields, "_form": exc.message}
        else:
            return redirect_with_notice("requirements.index", _("Requirement “%(name)s” saved.", name=row.name))
    return _edit_page(None, form, errors, http_status)


@bp.route("/<int:requirement_id>", methods=["GET", "POST"])
@only_managers
@once_per_submission
def edit(requirement_id: int):
    row = requirement_edits.get(_actor(), requirement_id)
    form, errors, http_status = _form_of(row), {}, 200
    if request.method == "POST":
        form = _form_values()
        try:
            row = requirement_edits.update(_actor(), requirement_id, form)
        except DomainError as exc:
            http_status = _failed(exc)
            errors = {**exc.fields, "_form": exc.message}
            row = requirement_edits.get(_actor(), requirement_id)
        else:
            return redirect_with_notice("requirements.index", _("Requirement “%(name)s” saved.", name=row.name))
    return _edit_page(row, form, errors, http_status)


@bp.route("/<int:requirement_id>/retire", methods=["POST"])
@only_managers
@once_per_submission
def retire(requirement_id: int):
    row = requirement_edits.retire(_actor(), requirement_id)
    return redirect_with_notice("requirements.index",
                                _("Requirement “%(name)s” retired: it no longer applies.", name=row.name))


@bp.route("/people", methods=["POST"])
@only_managers
@once_per_submission
def people():
    """Set department / job role / assignment date of the chosen technicians (only the fields ticked to change,
    or every field when sent from one technician's page)."""
    actor, course_id = _actor(), _course_id()
    person_ids = request.form.getlist("person_ids")
    changes = {name: request.form.get(name, "") for name in requirement_edits.ATTRIBUTES
               if request.form.get("change_" + name) == "1"}
    back = request.form.get("back")
    try:
        changed = requirement_edits.set_attributes(actor, course_id, person_ids, changes)
    except DomainError as exc:
        db.session.rollback()
        message = " ".join([exc.message, *[str(v) for v in exc.fields.values()]])
        if back == "technician" and len(person_ids) == 1 and person_ids[0].isdigit():
            return redirect_with_notice("manager.technician", message, "error", person_id=int(person_ids[0]))
        return redirect_with_notice("requirements.index", message, "error")
    message = (ngettext("Saved for %(num)s technician.", "Saved for %(num)s technicians.", len(changed))
               if changed else _("Nothing changed."))
    if back == "technician" and len(person_ids) == 1:
        return redirect_with_notice("manager.technician", message, person_id=int(person_ids[0]))
    return redirect_with_notice("requirements.index", message)

