"""The manager's pages: review queue, review page, bulk sign-off, team matrix, a technician's detail, sign-off
revocation and correction, and named preceptors. Managers only (manager-side members of the course)."""
import re
from datetime import UTC, datetime

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from markupsafe import Markup

from .. import formatting, tool_session
from ..downloads import evidence_file, file_response
from ..extensions import db
from ..ids import id_or_none, ids, parse_id
from ..models.reviews import METHODS
from ..permissions import can_review, is_course_manager, require
from ..schemas.evidence import CREDENTIALS, DEPARTMENTS, DERIVED_KEYS, RESPONSIBILITY_ROLES
from ..services import DomainError, attestation, evidence, matrix, requirements, review_queue, reviews, status
from ..services.actors import Actor
from ..services.csv_cells import to_csv
from ..services.evidence import KIND_LABELS
from ..services.placements import DEPARTMENT_LABELS
from ..submissions import once_per_submission
from ..web import redirect_with_notice, viewer_zone

bp = Blueprint("manager", __name__, url_prefix="/team")
only_managers = require(
    is_course_manager,
    _l("The review queue, the team matrix and the other team pages are for this course's managers. Your role in "
    "this course does not include them."))
# The review queue and review pages are also open to the technicians the course names preceptors.
only_reviewers = require(
    can_review,
    _l("The review queue is for this course's managers and named preceptors. Your role in this course does not "
    "include it."))

METHOD_LABELS = {
    "observed": _l("Observed"),
    "demonstrated": _l("Demonstrated"),
    "verified_document": _l("Verified document"),
    "attested": _l("Attested"),
}
assert set(METHOD_LABELS) == set(METHODS)
REQUEST_STATUS_LABELS = {"open": _l("Open"), "signed_off": _l("Signed off"), "returned": _l("Returned"),
                         "withdrawn": _l("Withdrawn")}
EVIDENCE_STATUS_LABELS = {"draft": _l("Draft"), "submitted": _l("Submitted for review"), "returned": _l("Returned"),
                          "signed_off": _l("Signed off"), "withdrawn": _l("Withdrawn")}
FIELD_LABELS = {
    "department": _l("Department"), "department_other": _l("Department (other)"), "skills": _l("Skills"),
    "trainer_name": _l("Trainer"), "hours": _l("Hours"), "start_date": _l("Start date"), "end_date": _l("End date"),
    "checklist_steps": _l("Checklist steps practiced"), "notes": _l("Notes"), "role": _l("Role"),
    "role_other": _l("Role (other)"),
    "scope": _l("Scope"), "supervisor": _l("Supervisor"), "problem": _l("Problem"), "aim": _l("Aim"),
    "measures": _l("Measures"),
    "pdsa_cycles": _l("PDSA cycles"), "results": _l("Results"), "team": _l("Team"), "credential": _l("Credential"),
    "credential_other": _l("Credential (other)"), "number": _l("Number"), "issuing_body": _l("Issuing body"),
    "state": _l("State"), "issued_date": _l("Issued"), "expiry_date": _l("Expires"),
    "uan": _l("ACPE activity number (UAN)"),
    "completion_date": _l("Completed"), "provider_name": _l("Provider"),
    "sterile_compounding": _l("Sterile-compounding content"), "plan": _l("Plan"), "do": _l("Do"), "study": _l("Study"),
    "act": _l("Act"), "date": _l("Date"), "trainer_person_id": None, "credential_label": None, "issuer": _l("Issuer"),
}
VALUE_LABELS = {"department": DEPARTMENTS, "role": RESPONSIBILITY_ROLES,
                "credential": {k: v[0] for k, v in CREDENTIALS.items()}}


QUEUE_PAGE = 50  # requests per page of the review queue (keyset pages: "Next" carries the last one's id)


def _actor():
    return Actor.from_session(tool_session.current())


def _course_id() -> int:
    return tool_session.current().course.id


# --- Template helpers -------------------------------------------------------------------------------------

def ago(moment: datetime | None, now: datetime | None = None) -> str:
    return formatting.ago(moment, now)


def when(moment: datetime | None, with_time: bool = True) -> str:
    if moment is None:
        return ""
    return formatting.us_datetime(moment, viewer_zone()) if with_time else formatting.us_date(moment, viewer_zone())


ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def evidence_fields(item) -> list[tuple[str, object]]:
    """(label, value) pairs of an evidence item's data, in a readable form; derived keys left out."""
    out = []
    for key, value in (item.data or {}).items():
        if key in DERIVED_KEYS and key != "issuer":
            continue
        label = FIELD_LABELS.get(key, key.replace("_", " ").capitalize())
        if label is None or value in (None, "", []):
            continue
        if key in VALUE_LABELS and isinstance(value, str):
            value = _(VALUE_LABELS[key].get(value, value))  # stored English; shown translated
        if isinstance(value, bool):
            value = _("Yes") if value else _("No")
        elif isinstance(value, str) and ISO_DATE.fullmatch(value):
            value = formatting.us_date(value)  # stored as ISO text (JSON); shown as "Nov 30, 2026"
        out.append((label, value))
    return out


def _plain_label(key: str) -> str:
    return FIELD_LABELS.get(key) or key.replace("_", " ").capitalize()


# A matrix page is 50 x 130 cells with the shipped framework: each is a class and a code (the key spells the codes
# out once), joined here rather than looped over in Jinja, which was most of the page's time. The class is
# unquoted when it is one word and </td> left out (both optional in HTML: the next cell or </tr> closes it) so that a
# page of 50 stays under 200 KB. An overdue requirement adds its mark.
def _cell(abbr: str, hit: bool, overdue: bool) -> Markup:
    classes = [abbr.lower(), *(["hit"] if hit else []), *(["ovd"] if overdue else [])]
    text = abbr + (f" {matrix.OVERDUE_MARK}" if overdue else "") + ("✱" if hit else "")
    attribute = classes[0] if len(classes) == 1 else '"' + " ".join(classes) + '"'
    return Markup(f"<td class={attribute}>{text}")


_CELLS = {(code, hit, overdue): _cell(abbr, hit, overdue) for code, abbr in matrix.ABBREVIATIONS.items()
          for hit in (False, True) for overdue in (False, True)}


def matrix_cells(row, marked_by_table: bool = False) -> Markup:
    """`marked_by_table`: the filter is one status, so its matches are exactly the cells of that status and the
    table marks them (data-hit, manager.css) instead of each cell: with "not started" that was most of 5,000
    cells, 38 KB of a page that must stay under 200 KB."""
    matches = () if marked_by_table else row.matches
    return Markup("".join([_CELLS[cell.status, cell.competency_id in matches, cell.overdue] for cell in row.cells]))


def table_marked_status(filters) -> str | None:
    """The status code (lower-case abbreviation) whose cells are the matches, when the filter is exactly one
    status; None when matches need marking cell by cell (expiring windows, overdue and required)."""
    if filters.status in matrix.ABBREVIATIONS and not filters.expiring_days:
        return matrix.ABBREVIATIONS[filters.status].lower()
    return None


@bp.context_processor
def helpers():
    return {
        "ago": ago, "when": when, "when_day": formatting.us_date, "matrix_cells": matrix_cells,
        "table_marked_status": table_marked_status,
        "evidence_fields": evidence_fields, "plain_label": _plain_label,
        "status_labels": status.FILTER_LABELS, "status_abbr": matrix.ABBREVIATIONS, "statuses": status.STATUSES,
        "filter_statuses": status.STATUSES + status.REQUIREMENT_FILTERS, "overdue_mark": matrix.OVERDUE_MARK,
        # Kinds and departments are kept in English (stored, exported); pages show them in the viewer's language.
        "method_labels": METHOD_LABELS, "kind_labels": {k: _(v) for k, v in KIND_LABELS.items()},
        "department_labels": {k: _(v) for k, v in DEPARTMENT_LABELS.items()},
        "request_status_labels": REQUEST_STATUS_LABELS, "evidence_status_labels": EVIDENCE_STATUS_LABELS,
        # Preceptors share the queue and review pages; the team's other pages are for managers.
        "team_manager": is_course_manager(tool_session.current()),
    }


def _ids(values) -> list[int]:
    return ids(values)


def _failed(exc: DomainError) -> int:
    """After a refused change: undo whatever was flushed, so the page re-renders from a clean transaction."""
    db.session.rollback()
    return exc.status


# --- Review queue -----------------------------------------------------------------------------------------

@bp.route("/queue")
@only_reviewers
def queue():
    actor, course_id = _actor(), _course_id()
    department = request.args.get("department") or None
    if department not in (None, *DEPARTMENT_LABELS):
        raise DomainError(_("Not a known department."), fields={"department": _("Not a known department.")})
    search = " ".join((request.args.get("q") or "").split())
    if len(search) > matrix.SEARCH_MAX:
        message = _("Type at most %(n)d characters of a name.", n=matrix.SEARCH_MAX)
        raise DomainError(message, fields={"q": message})
    filters = review_queue.QueueFilters(
        competency_id=(_ids([request.args.get("competency", "")]) or [None])[0], department=department,
        person_id=(_ids([request.args.get("technician", "")]) or [None])[0], search=search)
    after = (_ids([request.args.get("after", "")]) or [None])[0]
    page = review_queue.queue_page(actor, course_id, filters, after=after, per_page=QUEUE_PAGE)
    return render_template("manager/queue.html", q=page, f=filters, now=datetime.now(UTC),
                           search_max=matrix.SEARCH_MAX)


@bp.route("/bulk", methods=["GET", "POST"])
@only_managers
@once_per_submission
def bulk():
    actor, course_id = _actor(), _course_id()
    ids = _ids(request.values.getlist("request"))
    if not ids:
        return redirect_with_notice("manager.queue", _("Choose at least one review request to sign off together."),
                                    "error")
    form = {"rating": request.form.get("rating", ""), "method": request.form.get("method", ""),
            "comment": request.form.get("comment", ""), "checklist": request.form.getlist("checklist_seen"),
            "confirm": request.form.get("confirm") == "yes"}
    errors, problems, http_status = {}, {}, 200
    if request.method == "POST":
        if not form["rating"]:
            errors["rating"] = _("Choose a rating.")
        if not form["method"]:
            errors["method"] = _("Choose how competence was assessed.")
        if not form["confirm"]:
            errors["confirm"] = _("Confirm that you assessed each technician listed.")
        if not errors:
            try:
                signed = reviews.bulk_sign_off(actor, ids, form["rating"], form["method"], form["checklist"],
                                               form["comment"])
            except DomainError as exc:
                http_status = _failed(exc)
                problems = (exc.fields or {}).get("requests") or {}
                errors = {k: v for k, v in (exc.fields or {}).items() if k != "requests" and isinstance(v, str)}
                errors["_form"] = exc.message
            else:
                return redirect_with_notice("manager.bulk_done", _(
                    "%(signed)d of %(total)d review requests signed off.", signed=len(signed), total=len(ids)),
                    s=[s.id for s in signed])
        else:
            http_status = 400
    rows = matrix.selected_requests(actor, course_id, ids)
    competencies = {r.competency_id: r.competency for r in rows}
    competency = next(iter(competencies.values())) if len(competencies) == 1 else None
    return render_template("manager/bulk.html", rows=rows, competency=competency,
                           competencies=list(competencies.values()), form=form, errors=errors,
                           problems={int(k): v for k, v in problems.items()}, now=datetime.now(UTC)), http_status


@bp.route("/bulk/done")
@only_managers
def bulk_done():
    signed = matrix.sign_offs_by_id(_actor(), _course_id(), _ids(request.args.getlist("s")))
    return render_template("manager/bulk_done.html", signed=signed)


# --- Review page ------------------------------------------------------------------------------------------

@bp.route("/review/<int:request_id>", methods=["GET", "POST"])
@only_reviewers
@once_per_submission
def review(request_id: int):
    actor, course_id = _actor(), _course_id()
    form = {"rating": request.form.get("rating", ""), "method": request.form.get("method", ""),
            "comment": request.form.get("comment", ""), "checklist": request.form.getlist("checklist_seen")}
    errors, http_status = {}, 200
    if request.method == "POST":
        decision = request.form.get("decision")
        context = matrix.review_request(actor, course_id, request_id)
        who, what = context.request.person.display_name, context.competency.code
        try:
            if decision == "return":
                if not form["comment"].strip():
                    errors["comment"] = _("Say what the technician should revise: a comment is required to return.")
                else:
                    reviews.return_for_revision(actor, request_id, form["comment"])
                    return redirect_with_notice("manager.queue", _(
                        "Returned to %(name)s with your comments (%(code)s).", name=who, code=what))
            elif decision == "sign_off":
                if not form["rating"]:
                    errors["rating"] = _("Choose a rating.")
                if not form["method"]:
                    errors["method"] = _("Choose how competence was assessed.")
                if not errors:
                    made = reviews.sign_off(actor, request_id, form["rating"], form["method"], form["checklist"],
                                            form["comment"])
                    return redirect_with_notice(
                        "manager.queue", _("Signed off %(code)s for %(name)s: %(rating)s.", code=what, name=who,
                                           rating=made.rating_label))
            else:
                errors["decision"] = _("Choose Sign off or Return with comments.")
            http_status = 400
        except DomainError as exc:
            http_status = _failed(exc)
            errors = {k: v for k, v in (exc.fields or {}).items() if isinstance(v, str)}
            if exc.code == "invalid_checklist":
                errors["checklist"] = exc.message
            errors["_form"] = exc.message
    context = matrix.review_request(actor, course_id, request_id)
    return render_template("manager/review.html", ctx=context, form=form, errors=errors, now=datetime.now(UTC),
                           signed=attestation.evidence_states([context.evidence.id])), http_status


@bp.route("/attachments/<int:attachment_id>")
@only_reviewers
def attachment(attachment_id: int):
    row, stream = evidence.open_attachment(_actor(), attachment_id)
    return evidence_file(row, stream, inline=request.args.get("download") != "1")


# --- Team matrix ------------------------------------------------------------------------------------------

@bp.route("/", endpoint="matrix")
@only_managers
def matrix_page():
    actor, course_id = _actor(), _course_id()
    errors, http_status = {}, 200
    try:
        filters = matrix.parse_filters(request.args)
        page = matrix.team_matrix(actor, course_id, filters)
    except DomainError as exc:
        if exc.code != "invalid_filter":
            raise
        errors, http_status = dict(exc.fields), 400
        page = matrix.team_matrix(actor, course_id, matrix.MatrixFilters())
    return render_template("manager/matrix.html", m=page, errors=errors, args=request.args,
                           expiring_choices=matrix.EXPIRING_CHOICES, search_max=matrix.SEARCH_MAX), http_status


@bp.route("/matrix.csv")
@only_managers
def matrix_csv():
    """"Export this view": the matrix of the filters on the page, every page of them, as CSV. Filters that are
    not valid answer 400 with what is wrong (the page shows them; a download has nothing to show them in)."""
    filters = matrix.parse_filters(request.args)
    header, rows = matrix.export_view(_actor(), _course_id(), filters)
    stamp = formatting.us_date(datetime.now(UTC), viewer_zone()).replace(",", "").replace(" ", "-")
    return file_response(to_csv(header, rows), "text/csv; charset=utf-8", f"team-matrix-{stamp}.csv")


# --- A technician -----------------------------------------------------------------------------------------

@bp.route("/technicians/<int:person_id>")
@only_managers
def technician(person_id: int):
    detail = matrix.technician_detail(_actor(), _course_id(), person_id)
    # From a matrix cell: that competency's area opens and its row is marked (#competency-<id> scrolls to it).
    focus = id_or_none(request.args.get("competency", ""))
    return render_template("manager/technician.html", d=detail, now=datetime.now(UTC), focus=focus,
                           job_roles=requirements.job_roles(tool_session.current().course.registration),
                           signed=attestation.evidence_states([item.id for item in detail.evidence]))


@bp.route("/sign-offs/<int:sign_off_id>", methods=["GET", "POST"])
@only_managers
@once_per_submission
def sign_off(sign_off_id: int):
    actor, course_id = _actor(), _course_id()
    row = matrix.sign_off(actor, course_id, sign_off_id)
    action = request.form.get("action")
    form = {"reason": request.form.get("reason", ""), "rating": request.form.get("rating", row.rating_code),
            "method": request.form.get("method", row.method),
            "comment": request.form.get("comment", row.comment or ""),
            "checklist": (request.form.getlist("checklist_seen") if request.method == "POST"
                          else list(row.checklist_seen or []))}
    errors, http_status = {}, 200
    if request.method == "POST":
        person_id = row.person_id
        try:
            if action == "revoke":
                reviews.revoke(actor, sign_off_id, form["reason"])
                return redirect_with_notice("manager.technician", _("Sign-off revoked; it no longer counts."),
                                            person_id=person_id)
            if action == "correct":
                reviews.correct(actor, sign_off_id, form["reason"], rating=form["rating"], method=form["method"],
                                checklist_seen=form["checklist"], comment=form["comment"])
                return redirect_with_notice("manager.technician", _("Sign-off corrected; the correction now counts."),
                                            person_id=person_id)
            errors["_form"] = _("Choose Revoke or Correct.")
            http_status = 400
        except DomainError as exc:
            http_status = _failed(exc)
            errors = {k: v for k, v in (exc.fields or {}).items() if isinstance(v, str)}
            errors["_form"] = exc.message
        row = matrix.sign_off(actor, course_id, sign_off_id)
    return render_template("manager/sign_off.html", s=row, correction=matrix.correction_of(row.id), form=form,
                           action=action, errors=errors), http_status


# --- Preceptors -------------------------------------------------------------------------------------------

@bp.route("/preceptors", methods=["GET", "POST"])
@only_managers
@once_per_submission
def preceptors():
    actor, course_id = _actor(), _course_id()
    form = {"person": request.form.get("person", ""), "competencies": _ids(request.form.getlist("competency"))}
    errors, http_status = {}, 200
    if request.method == "POST":
        if id_or_none(form["person"]) is None:
            errors["person"] = _("Choose a technician.")
        if not form["competencies"]:
            errors["competency"] = _("Choose at least one competency.")
        if not errors:
            try:
                named = reviews.name_preceptor(actor, course_id, parse_id(form["person"]), form["competencies"])
            except DomainError as exc:
                http_status = _failed(exc)
                errors = {("competency" if k == "competency_ids" else k): (v if isinstance(v, str) else exc.message)
                          for k, v in (exc.fields or {}).items()}
                errors["_form"] = exc.message
            else:
                who = named[0].person.display_name if named else _("The technician")
                return redirect_with_notice("manager.preceptors", ngettext(
                    "%(name)s is now preceptor for %(num)d competency.",
                    "%(name)s is now preceptor for %(num)d competencies.", len(named), name=who))
        else:
            http_status = 400
    current = reviews.course_preceptors(actor, course_id)
    grouped: dict = {}
    for row in current:
        grouped.setdefault(row.person_id, (row.person, []))[1].append(row)
    return render_template("manager/preceptors.html", grouped=list(grouped.values()),
                           technicians=matrix.course_technicians(actor, course_id),
                           tree=matrix.course_tree(tool_session.current().course), form=form,
                           errors=errors), http_status


@bp.route("/preceptors/remove", methods=["POST"])
@only_managers
@once_per_submission
def remove_preceptor():
    actor = _actor()
    person_id = _ids([request.form.get("person", "")])
    competency_ids = _ids(request.form.getlist("competency"))
    if not person_id or not competency_ids:
        raise DomainError(_("Choose the preceptor and competency to remove."))
    removed = reviews.remove_preceptor(actor, _course_id(), person_id[0], competency_ids)
    return redirect_with_notice("manager.preceptors", _("Preceptor removed.") if removed else
                                _("Nothing to remove: that preceptor was already removed."),
                                "success" if removed else "warning")
