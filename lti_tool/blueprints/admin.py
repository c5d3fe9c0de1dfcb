"""The LMS administrator's pages: the registration and its deployments, the tool's URLs and signing keys, outbound
health, frameworks (list, tree, import, export), settings and the role mapping; plus the choice of frameworks
for a course, open to the course's managers too. Everything works on the administrator's own registration."""
import re
from datetime import UTC, datetime
from functools import wraps

from flask import Blueprint, abort, render_template, request
from flask_babel import gettext as _

from .. import formatting, tool_session
from ..downloads import file_response
from ..extensions import db
from ..ids import id_or_none
from ..ids import ids as id_list
from ..lti.roles import TOOL_ROLES
from ..lti.urls import tool_urls
from ..models import Registration
from ..permissions import can_choose_course_frameworks, is_course_manager, is_tool_admin
from ..services import DomainError, Forbidden, NotFound, case_api, frameworks, scope
from ..services import admin as service
from ..services import settings as tenant_settings
from ..services.actors import Actor
from ..services.framework_io import FrameworkImportError
from ..services.framework_io.common import describe
from ..submissions import once_per_submission
from ..web import redirect_with_notice, viewer_zone

bp = Blueprint("admin", __name__, url_prefix="/admin")

ADMIN_ONLY = ("The administration pages are for the LMS administrator (an institution or system Administrator "
              "in Canvas or Moodle). Your role does not include them; ask your LMS administrator for help.")
COURSE_FRAMEWORKS_ONLY = ("Choosing a course's frameworks is for the course's managers and the LMS administrator. "
                          "Your role in this course does not include it.")
MAX_IMPORT_BYTES = 5 * 1024 * 1024
EXPORTS = {
    # format: (label, mimetype, file name suffix)
    "case": ("CASE 1.1 JSON", "application/json", "case.json"),
    "moodle-csv": ("Moodle CSV", "text/csv", "moodle.csv"),
    "native": ("Native JSON", "application/json", "framework.json"),
}


def _only(rule, message):
    """401 without a session; 403 with a readable message when the rule says no."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            session = tool_session.current()
            if session is None:
                abort(401)
            if not rule(session):
                abort(403, message)
            return view(*args, **kwargs)

        return wrapped

    return decorator


admin_only = _only(is_tool_admin, ADMIN_ONLY)


def _actor() -> Actor:
    return Actor.from_session(tool_session.current())


def _failed(exc: DomainError) -> int:
    """Undo whatever a refused change flushed, so the page re-renders from a clean transaction."""
    db.session.rollback()
    return exc.status


# --- Template helpers -------------------------------------------------------------------------------------

def ago(moment: datetime | None) -> str:
    return formatting.ago(moment) if moment is not None else "never"


def until(moment: datetime | None) -> str:
    return formatting.until(moment)


def when(moment: datetime | None) -> str:
    return formatting.us_datetime(moment, viewer_zone()) if moment else ""


@bp.context_processor
def helpers():
    return {"ago": ago, "when": when, "until": until, "role_label": service.role_label, "exports": EXPORTS}


# --- Home -------------------------------------------------------------------------------------------------

def _render_index(problem: str | None = None, status: int = 200):
    actor = _actor()
    keys = service.published_keys(actor)
    return render_template(
        "admin/index.html", overview=service.overview(actor), urls=tool_urls(), keys=keys,
        signing_kid=service.signing_kid(actor) if keys else None, health=service.health(actor),
        stuck_attempts=service.STUCK_ATTEMPTS, overdue_minutes=int(service.OVERDUE.total_seconds() // 60),
        now=datetime.now(UTC), problem=problem), status


@bp.route("/")
@admin_only
def index():
    return _render_index()


@bp.route("/deployments/<int:deployment_pk>/status", methods=["POST"])
@admin_only
@once_per_submission
def deployment_status(deployment_pk):
    active = request.form.get("active")
    if active not in ("0", "1"):
        abort(400, _("Say whether the deployment should be enabled or disabled."))
    try:
        row = service.set_deployment_active(_actor(), deployment_pk, active == "1")
    except DomainError as exc:
        return _render_index(exc.message, _failed(exc))
    state = "enabled: launches through it work again" if row.active else \
        "disabled: launches through it are refused until you enable it"
    return redirect_with_notice("admin.index", f"Deployment {row.deployment_id} {state}.")


@bp.route("/scores/retry", methods=["POST"])
@admin_only
@once_per_submission
def retry_scores():
    ids = None
    if request.form.get("all") != "1":
        ids = id_list(request.form.getlist("score"))
    try:
        count = service.retry_scores(_actor(), ids)
    except DomainError as exc:
        return _render_index(exc.message, _failed(exc))
    noun = "score" if count == 1 else "scores"
    return redirect_with_notice("admin.index", f"{count} {noun} queued to be sent to the gradebook again now. "
                                "The delivery worker sends them on its next run (within a minute).")


# --- Frameworks -------------------------------------------------------------------------------------------

def _render_frameworks(errors=None, form=None, status=200):
    actor = _actor()
    rows = frameworks.list_frameworks(actor)
    counts = frameworks.competency_counts(r.id for r in rows)
    return render_template("admin/frameworks.html", frameworks=rows, counts=counts, errors=errors or [],
                           form=form or {}, max_mb=MAX_IMPORT_BYTES // (1024 * 1024),
                           registration_id=actor.registration_id), status


@bp.route("/frameworks")
@admin_only
def frameworks_page():
    return _render_frameworks()


@bp.route("/frameworks/import", methods=["POST"])
@admin_only
@once_per_submission
def import_framework():
    upload = request.files.get("file")
    form = {"version": request.form.get("version", "").strip()}
    if upload is None or not upload.filename:
        return _render_frameworks([{"field": "file", "message": "Choose a file to import."}], form, 400)
    raw = upload.stream.read(MAX_IMPORT_BYTES + 1)
    if len(raw) > MAX_IMPORT_BYTES:
        return _render_frameworks([{"field": "file", "message": f"The file is larger than "
                                    f"{MAX_IMPORT_BYTES // (1024 * 1024)} MB; nothing was imported."}], form, 400)
    if len(form["version"]) > 50:
        return _render_frameworks([{"field": "version", "message": "The version can be at most 50 characters."}],
                                  form, 400)
    try:
        result = frameworks.import_framework(_actor(), raw, filename=upload.filename,
                                             version=form["version"] or None)
    except FrameworkImportError as exc:
        status = _failed(exc)
        problems = [{"field": "file", "message": f"{upload.filename}: {describe(e)}"} for e in exc.errors]
        return _render_frameworks(problems, form, status)
    except DomainError as exc:
        return _render_frameworks([{"field": "file", "message": exc.message}], form, _failed(exc))
    fw = result.framework
    message = (f"Imported {fw.name} (version {fw.version}) from {upload.filename}: {result.competencies} "
               "competencies.")
    if result.warnings:
        message += " Please check: " + " ".join(result.warnings)
    return redirect_with_notice("admin.framework", message, framework_id=fw.id)


@bp.route("/frameworks/<int:framework_id>")
@admin_only
def framework(framework_id):
    tree = frameworks.get_tree(_actor(), framework_id)
    return render_template("admin/framework.html", tree=tree, fw=tree.framework, total=len(tree))


@bp.route("/frameworks/<int:framework_id>/public", methods=["POST"])
@admin_only
def framework_public(framework_id):
    public = request.form.get("public")
    if public not in ("0", "1"):
        abort(400, _("Say whether the framework should be public on the CASE API."))
    fw = case_api.set_public(_actor(), framework_id, public == "1")
    state = ("public: anyone can read it over the CASE API" if fw.is_public
             else "private again: the CASE API no longer serves it")
    return redirect_with_notice("admin.framework", f"{fw.name} {fw.version} is {state}.", framework_id=fw.id)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "framework"


@bp.route("/frameworks/<int:framework_id>/export/<fmt>")
@admin_only
def export_framework(framework_id, fmt):
    if fmt not in EXPORTS:
        raise NotFound(_("Unknown export format."))
    actor = _actor()
    fw = frameworks.get_framework(actor, framework_id)
    text = frameworks.export_framework(actor, fw.id, fmt)
    _label, mimetype, suffix = EXPORTS[fmt]
    return file_response(text, mimetype, f"{_slug(fw.code)}-{_slug(fw.version)}-{suffix}")


# --- Course frameworks (managers of the course, or the administrator) -------------------------------------

def _course_for_page(session, actor):
    """The course whose frameworks are chosen: the session's course, or (administrators only) another course of
    the tenant named by ?course=."""
    raw = request.values.get("course", "").strip()
    if not raw:
        return session.course
    course_id = id_or_none(raw)
    if course_id is None:
        raise NotFound(_("No such course."))
    if (session.course is None or session.course.id != course_id) and not is_tool_admin(session):
        raise Forbidden(_("You can choose the frameworks of the course you opened the tool from only."))
    return scope.course(actor, course_id)


@bp.route("/course-frameworks", methods=["GET", "POST"])
@_only(can_choose_course_frameworks, COURSE_FRAMEWORKS_ONLY)
@once_per_submission
def course_frameworks():
    session = tool_session.current()
    actor = _actor()
    course = _course_for_page(session, actor)
    if course is None or (request.args.get("pick") and is_tool_admin(session)):
        # An administrator launched outside a course: pick one of the tenant's courses first.
        return render_template("admin/course_pick.html", courses=service.tenant_courses(actor))
    errors, status = {}, 200
    chosen = None
    if request.method == "POST":
        chosen = [v for v in request.form.getlist("framework") if v.strip()]
        try:
            result = frameworks.choose_course_frameworks(actor, course.id, chosen)
        except DomainError as exc:
            status = _failed(exc)
            errors = {"framework_ids": (exc.fields or {}).get("framework_ids") or exc.message}
        else:
            names = ", ".join(f.name + " " + f.version for f in result)
            values = {"course": course.id} if request.values.get("course") else {}
            return redirect_with_notice("admin.course_frameworks",
                                        f"{course.display_title} now uses: {names}.", **values)
    available = frameworks.list_frameworks(actor)
    current = frameworks.course_frameworks(actor, course.id)
    # Ticked: what the course's managers chose (nothing while the course follows the default).
    selected = {str(i) for i in frameworks.chosen_framework_ids(course)} if chosen is None else set(chosen)
    return render_template(
        "admin/course_frameworks.html", course=course, available=available, current=current, selected=selected,
        counts=frameworks.competency_counts(f.id for f in available), errors=errors,
        by_default=not frameworks.chosen_framework_ids(course), team_manager=is_course_manager(session),
        pass_course=bool(request.values.get("course")), is_admin=is_tool_admin(session)), status


# --- Settings ---------------------------------------------------------------------------------------------

def _render_settings(errors=None, form=None, status=200):
    actor = _actor()
    registration = db.session.get(Registration, actor.registration_id)
    current = tenant_settings.effective(registration)
    values = {"revalidation_warning_days": str(current["revalidation_warning_days"]),
              "time_zone": current["time_zone"], "organization_name": current["organization_name"] or "",
              "lms_name": registration.name, "email_enabled": current["email_enabled"],
              "email_sender_name": current["email_sender_name"],
              "reminder_days": ", ".join(map(str, current["reminder_days"])), **service.role_choices(registration),
              "job_roles": "\n".join(current["job_roles"])}
    values.update(form or {})
    return render_template(
        "admin/settings.html", values=values, errors=errors or {}, lti_roles=service.LTI_ROLES,
        lti_role_labels=service.LTI_ROLE_LABELS, tool_roles=TOOL_ROLES, default_role=service.default_role,
        other_overrides=service.other_overrides(registration), low=service.WARNING_DAYS[0],
        high=service.WARNING_DAYS[1], actor=actor, us_time_zones=tenant_settings.US_TIME_ZONES), status


@bp.route("/settings")
@admin_only
def settings():
    return _render_settings()


@bp.route("/settings/revalidation", methods=["POST"])
@admin_only
@once_per_submission
def save_revalidation():
    raw = request.form.get("revalidation_warning_days", "")
    try:
        saved = service.update_warning_days(_actor(), raw)
    except DomainError as exc:
        status = _failed(exc)
        errors = {"revalidation_warning_days": (exc.fields or {}).get("revalidation_warning_days") or exc.message}
        return _render_settings(errors, {"revalidation_warning_days": raw}, status)
    days = saved["revalidation_warning_days"]
    return redirect_with_notice("admin.settings", f"Competencies now show as due for revalidation {days} "
                                f"day{'s' if days != 1 else ''} before their sign-off expires.")


@bp.route("/settings/time-zone", methods=["POST"])
@admin_only
@once_per_submission
def save_time_zone():
    raw = request.form.get("time_zone", "")
    try:
        tenant_settings.update(_actor(), {"time_zone": raw})
    except DomainError as exc:
        status = _failed(exc)
        errors = {"time_zone": (exc.fields or {}).get("time_zone") or exc.message}
        return _render_settings(errors, {"time_zone": raw}, status)
    return redirect_with_notice("admin.settings", f"Times are now shown in {raw.replace('_', ' ')} time.")


@bp.route("/settings/organization", methods=["POST"])
@admin_only
def save_organization():
    raw = request.form.get("organization_name", "")
    try:
        saved = tenant_settings.update(_actor(), {"organization_name": raw})
    except DomainError as exc:
        status = _failed(exc)
        errors = {"organization_name": (exc.fields or {}).get("organization_name") or exc.message}
        return _render_settings(errors, {"organization_name": raw}, status)
    name = saved["organization_name"]
    return redirect_with_notice("admin.settings", f"Transcripts and credentials now name “{name}”." if name else
                                "Transcripts and credentials name the LMS registration again.")


@bp.route("/settings/email", methods=["POST"])
@admin_only
def save_email():
    form = {"email_enabled": request.form.get("email_enabled") == "on",
            "email_sender_name": request.form.get("email_sender_name", ""),
            "reminder_days": request.form.get("reminder_days", "")}
    try:
        days = [int(part) for part in form["reminder_days"].replace(",", " ").split()]
    except ValueError:
        days = None
    try:
        tenant_settings.update(_actor(), {**form, "reminder_days": days})
    except DomainError as exc:
        status = _failed(exc)
        return _render_settings(exc.fields or {"_form": exc.message}, form, status)
    return redirect_with_notice("admin.settings", "E-mail settings saved." if form["email_enabled"] else
                                "E-mail settings saved. The tool sends no e-mail for this LMS; notices stay in the "
                                "tool.")


@bp.route("/settings/job-roles", methods=["POST"])
@admin_only
@once_per_submission
def save_job_roles():
    """The job roles managers give technicians and requirements target: one per line."""
    raw = request.form.get("job_roles", "")
    try:
        tenant_settings.update(_actor(), {"job_roles": [line.strip() for line in raw.splitlines() if line.strip()]})
    except DomainError as exc:
        status = _failed(exc)
        return _render_settings({"job_roles": (exc.fields or {}).get("job_roles") or exc.message},
                                {"job_roles": raw}, status)
    return redirect_with_notice("admin.settings", _("Job roles saved."))


@bp.route("/settings/roles", methods=["POST"])
@admin_only
@once_per_submission
def save_roles():
    choices = {role: request.form.get(f"role-{role}") for role in service.LTI_ROLES}
    try:
        service.update_role_mapping(_actor(), choices)
    except DomainError as exc:
        status = _failed(exc)
        errors = {f"role-{k}": v for k, v in (exc.fields or {}).items()} or {"_form": exc.message}
        return _render_settings(errors, {k: v or "" for k, v in choices.items()}, status)
    return redirect_with_notice("admin.settings", "Role mapping saved. It applies from each person's next launch.")
