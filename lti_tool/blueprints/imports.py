"""The administrator's go-live import of prior records into the course they launched from: upload, dry run (every
row's problems and what would be created), import as a background task with a progress page, and undo;
downloadable templates.

Between the dry run and the import the uploaded file waits in the attachment storage under a "checked" batch;
the import form carries that batch in a signed token (so nobody can start an import of another person's check).
Import queues the batch for a queue worker (services/prior_records/jobs.py); the progress page refreshes itself
(a meta refresh: no JavaScript needed inside the LMS frame) until the import is applied or has failed. Checked
files nobody imports are purged after a day (tasks.jobs.purge_storage).
"""

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .. import tool_session
from ..extensions import db
from ..permissions import is_tool_admin, require
from ..services import DomainError, prior_records
from ..services.actors import Actor
from ..services.prior_records import columns, files
from ..services.prior_records import jobs as import_jobs
from ..submissions import once_per_submission
from ..tasks import enqueue_after_commit
from ..web import redirect_with_notice
from .reports import helpers as report_helpers

bp = Blueprint("imports", __name__, url_prefix="/imports")
bp.context_processor(report_helpers)
ADMIN_ONLY = ("Importing prior records is for the LMS administrator (an institution or system Administrator in "
              "Canvas or Moodle), launched from the course the records belong to.")
only_admins = require(lambda s: is_tool_admin(s) and s.course is not None, ADMIN_ONLY)
STAGE_SALT = "prior-records-stage-v2"
STAGE_MAX_AGE = 3600
SHOWN_ROWS = 500


def _actor() -> Actor:
    return Actor.from_session(tool_session.current())


def _serializer():
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=STAGE_SALT)


def _options() -> prior_records.Options:
    kind = request.form.get("kind", "")
    mapping = {}
    for field in columns.FIELDS.get(kind, ()):
        chosen = (request.form.get(f"map_{field.key}") or "").strip()
        if chosen:
            mapping[field.key] = chosen[:200]
    return prior_records.Options(kind=kind, mapping=mapping,
                                 technician=(request.form.get("technician") or "").strip()[:320])


def _render(plan=None, errors=None, form=None, token=None, status=200):
    actor = _actor()
    batches = prior_records.recent(actor)
    return render_template("imports/index.html", plan=plan, errors=errors or {}, form=form or {}, token=token,
                           batches=batches, blockers={b.id: prior_records.blockers(b) for b in batches
                                                      if b.status == "applied"},
                           fields=columns.FIELDS, kinds=columns.KIND_LABELS, shown_rows=SHOWN_ROWS,
                           unmatched=prior_records.unmatched_people(actor)), status


@bp.route("/")
@only_admins
def index():
    return _render()


@bp.route("/templates/<kind>.csv")
@only_admins
def template(kind: str):
    if kind not in columns.FIELDS:
        raise DomainError(_("No such template."), status=404, code="not_found")
    response = Response(prior_records.template_csv(kind), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="prior-{kind.replace("_", "-")}-template.csv"'
    return response


@bp.route("/check", methods=["POST"])
@only_admins
def check():
    """The dry run: nothing is written; the file waits (under a signed key) for the import button."""
    options = _options()
    form = {"kind": options.kind, "technician": options.technician, "mapping": options.mapping}
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _render(errors={"file": "Choose a CSV or Excel (.xlsx) file."}, form=form, status=400)
    data = upload.stream.read(files.MAX_BYTES + 1)
    try:
        plan = prior_records.preview(_actor(), tool_session.current().course.id, upload.filename, data, options)
    except DomainError as exc:
        db.session.rollback()
        key = "kind" if exc.code == "invalid_kind" else "file"
        return _render(errors={key: exc.message, **{f"map_{k}": v for k, v in (exc.fields or {}).items()
                                                    if k != "kind"}}, form=form, status=exc.status)
    token = None
    if plan.ok and plan.to_create:
        batch = import_jobs.stage(_actor(), plan, data, options)
        token = _serializer().dumps({"b": batch.id, "p": tool_session.current().person.id})
    return _render(plan=plan, form=form, token=token)


@bp.route("/run", methods=["POST"])
@only_admins
@once_per_submission
def run():
    """Queue the checked file; a queue worker imports it once this request is committed (or the sweep, should
    the queue lose the task)."""
    try:
        staged = _serializer().loads(request.form.get("token", ""), max_age=STAGE_MAX_AGE)
    except BadSignature:
        return _render(errors={"file": _("The checked file has expired; choose it again and check it.")},
                       status=400)
    if staged.get("p") != tool_session.current().person.id:
        return _render(errors={"file": _("Check the file again before importing it.")}, status=400)
    try:
        batch = import_jobs.queue(_actor(), staged["b"])
    except DomainError as exc:
        db.session.rollback()
        if exc.status == 404:
            return _render(errors={"file": _("This file has expired; check it again.")}, status=409)
        return _render(errors={"file": exc.message}, status=exc.status)
    if batch.status == "queued":
        enqueue_after_commit("import_records", batch.id)
    return redirect_with_notice("imports.progress_page", _("The import of %(name)s has started.",
                                                           name=batch.filename), batch_id=batch.id)


@bp.route("/<int:batch_id>")
@only_admins
def progress_page(batch_id: int):
    batch = import_jobs.batch_for(_actor(), batch_id)
    return render_template("imports/progress.html", batch=batch, progress=import_jobs.progress(batch),
                           kinds=columns.KIND_LABELS)


@bp.route("/<int:batch_id>.json")
@only_admins
def progress_json(batch_id: int):
    return jsonify(import_jobs.progress(import_jobs.batch_for(_actor(), batch_id)))


@bp.route("/<int:batch_id>/undo", methods=["POST"])
@only_admins
def undo(batch_id: int):
    try:
        batch = prior_records.undo(_actor(), batch_id)
    except DomainError as exc:
        db.session.rollback()
        if exc.status == 404:
            raise
        return _render(errors={"_form": exc.message}, status=exc.status)
    return redirect_with_notice("imports.index", f"Undid the import of {batch.filename}: its records are removed.")
