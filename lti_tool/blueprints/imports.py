"""The administrator's go-live import of prior records into the course they launched from: upload, dry run (every
row's problems and what would be created), import, and undo; downloadable templates.

Between the dry run and the import the uploaded file waits in the attachment storage under a random key; the
import form carries that key in a signed token (so nobody can point the import at another file), and the file is
deleted once imported. (A checked file that is never imported stays in the storage: a known gap.)
"""
import io

from flask import Blueprint, Response, current_app, render_template, request
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .. import tool_session
from ..extensions import db
from ..permissions import is_tool_admin, require
from ..services import DomainError, attachments, prior_records
from ..services.actors import Actor
from ..services.prior_records import columns, files
from ..web import redirect_with_notice
from .reports import helpers as report_helpers

bp = Blueprint("imports", __name__, url_prefix="/imports")
bp.context_processor(report_helpers)
ADMIN_ONLY = ("Importing prior records is for the LMS administrator (an institution or system Administrator in "
              "Canvas or Moodle), launched from the course the records belong to.")
only_admins = require(lambda s: is_tool_admin(s) and s.course is not None, ADMIN_ONLY)
STAGE_SALT = "prior-records-stage-v1"
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
                           fields=columns.FIELDS, kinds=columns.KIND_LABELS, shown_rows=SHOWN_ROWS), status


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
        key = attachments.storage().save(io.BytesIO(data))
        token = _serializer().dumps({"k": key, "f": upload.filename[:255], "o": options.__dict__,
                                     "p": tool_session.current().person.id})
    return _render(plan=plan, form=form, token=token)


@bp.route("/run", methods=["POST"])
@only_admins
def run():
    try:
        staged = _serializer().loads(request.form.get("token", ""), max_age=STAGE_MAX_AGE)
    except BadSignature:
        return _render(errors={"file": "The checked file has expired; choose it again and check it."}, status=400)
    if staged.get("p") != tool_session.current().person.id:
        return _render(errors={"file": "Check the file again before importing it."}, status=400)
    store = attachments.storage()
    if not store.exists(staged["k"]):
        return _render(errors={"file": "This file was already imported or has expired; check it again."},
                       status=409)
    with store.open(staged["k"]) as fh:
        data = fh.read()
    options = prior_records.Options(**staged["o"])
    try:
        batch = prior_records.run(_actor(), tool_session.current().course.id, staged["f"], data, options)
    except DomainError as exc:
        db.session.rollback()
        return _render(errors={"file": exc.message}, form={"kind": options.kind}, status=exc.status)
    attachments.delete_after_commit(staged["k"])
    created = batch.summary["created"]
    what = created["sign_offs"] if options.kind == "sign_offs" else created["evidence"]
    return redirect_with_notice("imports.index", f"Imported {what} record(s) from {batch.filename}; "
                                f"{batch.summary['skipped']} already imported; {created['people']} new "
                                "people (not launched yet).")


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
