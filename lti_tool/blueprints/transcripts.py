"""Transcripts and credentials: a technician's transcript page and downloads, managers' course exports (matrix
CSV, ZIP of PDFs with a progress page), and the public verification page, JSON endpoint, status lists and issuer
profile. Views are thin: load, check, call one service, respond."""
import json
import tempfile
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select

from .. import formatting, tool_session
from ..downloads import file_response
from ..extensions import db
from ..i18n import N_, in_language
from ..lti import keys
from ..lti.roles import TECHNICIAN
from ..models import Membership, Person
from ..permissions import login_required
from ..services import credentials, scope, transcript_exports, transcripts, verification
from ..services.actors import Actor
from ..services.credentials import CredentialError
from ..submissions import once_per_submission
from ..tasks import enqueue_after_commit
from ..web import app_url, redirect_with_notice, viewer_zone

bp = Blueprint("transcripts", __name__)
# A transcript of a few hundred entries is 50-100 KB: kept in memory; a larger one spills to a temporary file.
PDF_SPOOL_BYTES = 256 * 1024
DOWNLOADS = {"pdf-letter": N_("PDF (US Letter)"), "pdf-a4": N_("PDF (A4)"), "csv": "CSV", "json": "JSON",
             "ob3": N_("Open Badges 3.0 credentials"), "clr": N_("Comprehensive Learner Record (CLR 2.0)")}


def _actor() -> Actor:
    return Actor.from_session(tool_session.current())


def _base() -> str:
    return request.url_root.rstrip("/")


def _attachment(body, mimetype: str, filename: str) -> Response:
    return file_response(body, mimetype, filename)


@bp.context_processor
def helpers():
    return {"us_date": lambda value: formatting.us_date(value, viewer_zone()), "hours": lambda h: f"{float(h):g} h"}


def _manages_course(actor) -> bool:
    return actor.course is not None and scope.manages(actor.person.id, actor.course.id)


@bp.route("/transcripts/")
@login_required
def index():
    actor = _actor()
    technicians = []
    if _manages_course(actor):
        technicians = list(db.session.scalars(
            select(Person).join(Membership, Membership.person_id == Person.id)
            .where(Membership.course_id == actor.course.id, Membership.active.is_(True),
                   Membership.role == TECHNICIAN).order_by(Person.name, Person.id)))
    return render_template("transcripts/index.html", technicians=technicians, manager=_manages_course(actor),
                           course=actor.course, me=actor.person)


@bp.route("/transcripts/people/<int:person_id>")
@login_required
def show(person_id):
    actor = _actor()
    data = transcripts.build(actor, person_id)
    return render_template("transcripts/show.html", t=data, person_id=person_id, downloads=DOWNLOADS)


@bp.route("/transcripts/people/<int:person_id>/download/<fmt>")
@login_required
def download(person_id, fmt):
    actor = _actor()
    if fmt not in DOWNLOADS:
        abort(404)
    base, title = _base(), current_app.config["TOOL_TITLE"]
    if fmt.startswith("pdf-"):
        # reportlab holds the pages until it numbers them ("page 3 of 12"), so the PDF cannot go out while it is
        # drawn; it is written to a spooled file (memory up to PDF_SPOOL_BYTES, then a temporary file) and sent
        # from there in blocks, never copied into one bytes object for the response.
        spool = tempfile.SpooledTemporaryFile(max_size=PDF_SPOOL_BYTES)
        try:
            data, _pdf = transcript_exports.pdf_for(actor, person_id, base, fmt[4:], out=spool)
        except BaseException:
            spool.close()
            raise
        return file_response(spool, "application/pdf", transcript_exports.file_name(data, "pdf"),
                             size=spool.tell())
    # Data exchange (CSV, JSON, signed credentials) stays in English whatever the page's language: other systems
    # read it, and a signed credential must not depend on who downloaded it.
    with in_language(language="en"):
        if fmt in ("csv", "json"):
            data = transcripts.build(actor, person_id)
            if fmt == "csv":
                return _attachment(transcript_exports.to_csv(data), "text/csv; charset=utf-8",
                                   transcript_exports.file_name(data, "csv"))
            return _attachment(transcript_exports.to_json(data), "application/json",
                               transcript_exports.file_name(data, "json"))
        if fmt == "ob3":
            bundle = credentials.ob3_bundle(actor, person_id, base, title)
            return _attachment(json.dumps(bundle, indent=2), "application/json", f"open-badges-{person_id}.json")
        _credential, token = credentials.clr_credential(actor, person_id, base, title)
    return _attachment(token, "application/vc+jwt", f"clr-{person_id}.jwt")


@bp.route("/transcripts/courses/<int:course_id>/matrix.csv")
@login_required
def matrix_csv(course_id):
    with in_language(language="en"):  # data exchange: English, as the other CSVs
        text = transcript_exports.course_matrix_csv(_actor(), course_id)
    return _attachment(text, "text/csv; charset=utf-8", f"course-{course_id}-matrix.csv")


@bp.route("/transcripts/courses/<int:course_id>/exports", methods=["POST"])
@login_required
@once_per_submission
def start_export(course_id):
    actor = _actor()
    job = transcript_exports.create_zip_job(actor, course_id, request.form.get("page_size", "letter"), _base())
    # A queue worker builds it once this request is committed (and the sweep, should the queue lose the task).
    enqueue_after_commit("build_export", job.id)
    return redirect_with_notice("transcripts.export_page", "The export has started.", public_id=job.public_id)


@bp.route("/transcripts/exports/<uuid:public_id>")
@login_required
def export_page(public_id):
    job = transcript_exports.job_for(_actor(), public_id)
    return render_template("transcripts/export.html", job=job, progress=transcript_exports.progress(job))


@bp.route("/transcripts/exports/<uuid:public_id>.json")
@login_required
def export_progress(public_id):
    job = transcript_exports.job_for(_actor(), public_id)
    body = transcript_exports.progress(job)
    if body["status"] == "done":
        body["download_url"] = app_url("transcripts.export_download", public_id=job.public_id)
    return jsonify(body)


@bp.route("/transcripts/exports/<uuid:public_id>/download")
@login_required
def export_download(public_id):
    job = transcript_exports.job_for(_actor(), public_id)
    if job.status != "done" or not job.file_path:
        abort(409, _("The export is not finished yet."))
    return file_response(Path(job.file_path), "application/zip", f"transcripts-course-{job.course_id}.zip")


# --- public: verification, status lists, issuer ------------------------------------------------------------------

def _answer_json(answer) -> dict:
    return {**answer.result, "certifies": answer.certifies, "certification": answer.certification}


@bp.route("/verify/<uuid:public_id>.json")
def verify_json(public_id):
    return jsonify(_answer_json(verification.status_of(str(public_id))))


@bp.route("/verify/<uuid:public_id>")
def verify_page(public_id):
    answer = verification.status_of(str(public_id))
    return render_template("transcripts/verify.html", answers=[answer], overall=answer.status,
                           labels=credentials.STATUS_LABELS)


@bp.route("/verify", methods=["GET", "POST"])
def verify():
    if request.method == "GET":
        return render_template("transcripts/verify_form.html")
    presented = ""
    from_form = bool(request.form or request.files)
    try:
        presented = _presented()
        answers = verification.check(presented)
    except CredentialError as exc:
        if not from_form:
            return jsonify({"error": {"status": 400, "code": exc.code, "title": "Not a credential",
                                      "message": exc.message}}), 400
        shown = presented if isinstance(presented, str) and len(presented) < 100_000 else ""
        return render_template("transcripts/verify_form.html", error=exc.message, presented=shown), 400
    overall = verification.overall(answers)
    # A credential that is not what this tool signed (tampered, foreign, unknown) is the presenter's error.
    code = 422 if overall == credentials.INVALID else 200
    if from_form:
        return render_template("transcripts/verify.html", answers=answers, overall=overall,
                               labels=credentials.STATUS_LABELS), code
    if not answers.bundle:
        return jsonify(_answer_json(answers[0])), code
    return jsonify({"status": overall, "credentials": [_answer_json(a) for a in answers]}), code


def _presented():
    """The credential from an uploaded file or a form field (as downloaded: a JWT, a credential's JSON or the
    Open Badges bundle), a JSON body ({"credential": ...} or the credential itself) or raw text."""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        return upload.read(5_000_001)
    if request.form:
        return request.form.get("credential", "")
    if request.is_json:
        body = request.get_json(silent=True)
        if body is None:
            raise_bad_json()
        if isinstance(body, dict) and "credential" in body and len(body) == 1:
            return body["credential"]
        return body
    return request.get_data(as_text=True)


def raise_bad_json():
    raise CredentialError(_("The request body is not valid JSON."))


@bp.route("/credentials/status/<int:list_no>")
def status_list(list_no):
    token = credentials.status_list_jwt(_base(), list_no)
    response = Response(token, mimetype="application/vc+jwt")
    response.headers["Cache-Control"] = "max-age=300"
    return response


@bp.route("/credentials/issuer")
def issuer():
    return jsonify(credentials.issuer_profile(_base(), current_app.config["TOOL_TITLE"]))


@bp.route("/credentials/jwks")
def jwks():
    return jsonify(keys.jwks())
