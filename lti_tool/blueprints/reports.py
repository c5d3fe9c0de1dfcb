"""Reports for inspections (competency roster, compliance summary, person file: each a page, a US Letter PDF
and a CSV, for any as-of date) and the audit log viewer. A course's managers see their course; the tenant's
administrator sees the course they launched from, and the whole tenant's audit log."""
from flask import Blueprint, Response, current_app, render_template, request
from markupsafe import Markup

from .. import formatting, tool_session
from ..i18n import in_language
from ..permissions import can_read_audit_log, can_see_reports, is_course_manager, is_tool_admin, require
from ..services import DomainError, audit_log, report_chart, report_pdf, reports, status
from ..services.actors import Actor
from ..services.csv_cells import to_csv
from ..web import viewer_zone

bp = Blueprint("reports", __name__, url_prefix="/reports")
REPORTS_ONLY = ("Reports are for this course's managers and the LMS administrator. Your role in this course does "
                "not include them.")
only_reporters = require(can_see_reports, REPORTS_ONLY)
only_auditors = require(can_read_audit_log, REPORTS_ONLY)


def _actor() -> Actor:
    return Actor.from_session(tool_session.current())


def _course_id() -> int:
    return tool_session.current().course.id


def _download(body, mimetype: str, filename: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _as_of():
    return reports.parse_as_of(request.args.get("as_of"))


@bp.context_processor
def helpers():
    """Local US dates in the viewer's zone; also used by the import page (blueprints/imports.py)."""
    tz = viewer_zone()
    return {"us_date": lambda v: formatting.us_date(v, tz), "us_datetime": lambda v: formatting.us_datetime(v, tz),
            "standing_labels": reports.STANDING_LABELS,
            "has_imports": "imports.index" in current_app.view_functions}


@bp.route("/")
@only_auditors
def index():
    session = tool_session.current()
    return render_template("reports/index.html", reports_open=can_see_reports(session),
                           admin=is_tool_admin(session), manager=is_course_manager(session))


@bp.route("/roster")
@only_reporters
def roster():
    actor, course_id = _actor(), _course_id()
    report = reports.roster(actor, course_id, request.args.get("set") or None, _as_of())
    stamp = report.day.isoformat()
    fmt = request.args.get("format")
    if fmt == "csv":
        with in_language(language="en"):  # CSV is data exchange: English
            return _download(to_csv(reports.ROSTER_HEADER, reports.roster_csv_rows(report)), "text/csv",
                             f"competency-roster-{stamp}.csv")
    if fmt == "pdf":
        return _download(report_pdf.roster_pdf(report), "application/pdf", f"competency-roster-{stamp}.pdf")
    sets = reports.competency_sets(report.course)
    raw_page = request.args.get("page", "1")
    rows, number, pages = report.page(int(raw_page) if raw_page.isdigit() and len(raw_page) < 7 else 1)
    return render_template("reports/roster.html", r=report, sets=sets, rows=rows, page=number, pages=pages)


@bp.route("/summary")
@only_reporters
def summary():
    report = reports.summary(_actor(), _course_id(), _as_of())
    stamp = report.day.isoformat()
    fmt = request.args.get("format")
    if fmt == "csv":
        with in_language(language="en"):  # CSV is data exchange: English
            return _download(to_csv(reports.SUMMARY_HEADER, reports.summary_csv_rows(report)), "text/csv",
                             f"compliance-summary-{stamp}.csv")
    if fmt == "pdf":
        return _download(report_pdf.summary_pdf(report), "application/pdf", f"compliance-summary-{stamp}.pdf")
    chart = Markup(report_chart.svg(report_pdf.chart_series(report),
                                    "Percent current at each month end over the last 12 months"))
    return render_template("reports/summary.html", r=report, chart=chart)


@bp.route("/people/<int:person_id>")
@only_reporters
def person(person_id: int):
    report = reports.person_file(_actor(), _course_id(), person_id, _as_of())
    stamp = report.day.isoformat()
    fmt = request.args.get("format")
    if fmt == "csv":
        with in_language(language="en"):  # CSV is data exchange: English
            return _download(to_csv(reports.PERSON_HEADER, reports.person_csv_rows(report)), "text/csv",
                             f"person-file-{person_id}-{stamp}.csv")
    if fmt == "pdf":
        return _download(report_pdf.person_pdf(report), "application/pdf", f"person-file-{person_id}-{stamp}.pdf")
    return render_template("reports/person.html", r=report, standing_label=reports.standing_label,
                           role_label=audit_log.role_label)


@bp.route("/audit")
@only_auditors
def audit():
    session = tool_session.current()
    actor = _actor()
    # The administrator reads the whole tenant; a manager their course.
    course_id = None if is_tool_admin(session) else _course_id()
    errors, status_code = {}, 200
    try:
        filters = audit_log.parse_filters(request.args)
    except DomainError as exc:
        if exc.code != "invalid_filter":
            raise
        errors, status_code, filters = dict(exc.fields), 400, audit_log.AuditFilters()
    if request.args.get("format") == "csv" and not errors:
        with in_language(language="en"):  # CSV is data exchange: English
            return _download(to_csv(audit_log.CSV_HEADER, audit_log.csv_rows(actor, course_id, filters)), "text/csv",
                             "audit-log.csv")
    page = audit_log.page(actor, course_id, filters)
    competencies = status.course_competencies(session.course) if session.course is not None else []
    return render_template("reports/audit.html", p=page, options=audit_log.options(actor, course_id),
                           competencies=competencies,
                           errors=errors, args=request.args, tenant=course_id is None,
                           can_open_person=can_see_reports(session)), status_code
