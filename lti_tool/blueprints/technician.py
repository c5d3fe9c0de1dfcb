"""The technician's own pages: dashboard, recording evidence, an item's detail and history, the evidence list.

Technicians only: a manager or observer gets a readable 403 (managers follow technicians through the team pages).
Every change goes through the evidence and review services; a refused form is shown again with what was typed,
an error summary and a message next to each field, with status 400 and nothing written.
"""
from datetime import date

from flask import Blueprint, abort, current_app, g, redirect, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from .. import tool_session
from ..downloads import evidence_file
from ..extensions import db
from ..ids import parse_id
from ..models import Person
from ..models.evidence import DRAFT, RETURNED
from ..models.frameworks import EVIDENCE_KINDS
from ..permissions import check, is_technician
from ..services import DomainError, Forbidden, NotFound, attachments, attestation, reviews, scope
from ..services import evidence as evidence_service
from ..services.actors import Actor
from ..submissions import once_per_submission
from ..web import NOTICE_PARAM, app_url, redirect_with_notice
from . import technician_forms as forms
from . import technician_view as view

bp = Blueprint("technician", __name__, url_prefix="/me")

ONLY_TECHNICIANS = _l("These pages are a technician's own portfolio, opened from a course where you are a "
                      "technician. Managers follow their technicians through the review queue and team pages.")
EDITABLE = (DRAFT, RETURNED)


@bp.before_request
def technicians_only():
    check(is_technician, ONLY_TECHNICIANS)


def _actor() -> Actor:
    return Actor.from_session(tool_session.current())


def _own(actor, evidence_id: int):
    """The technician's own evidence item (anyone else's is not found)."""
    evidence = scope.evidence(actor, evidence_id)
    if evidence.person_id != actor.person.id:
        raise NotFound(_("No such evidence."))
    return evidence


# Room left in one request for the form's other fields and the multipart framing.
FORM_OVERHEAD = 64 * 1024


def _upload_limits() -> dict:
    """What the form says about files and what its script checks before upload: per file (the service's limit)
    and all files of one save together (the request limit, past which the whole save would be refused)."""
    request_limit = current_app.config.get("MAX_CONTENT_LENGTH")
    return {"types": ", ".join(attachments.ALLOWED_TYPES.values()), "mime": " ".join(attachments.ALLOWED_TYPES),
            "size": _size_text(attachments.max_bytes()), "max_bytes": attachments.max_bytes(),
            "max_total": request_limit - FORM_OVERHEAD if request_limit else "",
            "total_text": _size_text(request_limit) if request_limit else "",
            "count": evidence_service.MAX_ATTACHMENTS}


# --- Dashboard and list -----------------------------------------------------------------------------------

@bp.route("/")
def dashboard():
    actor = _actor()
    return render_template("technician/dashboard.html",
                           **view.dashboard(actor, date.today(), request.args.get("status") or None),
                           hours_text=view.hours_text, record_url=view.record_links())


@bp.route("/evidence")
def evidence_list():
    actor = _actor()
    kind = request.args.get("kind") or None
    state = request.args.get("status") or None
    if kind is not None and kind not in EVIDENCE_KINDS:
        kind = None
    if state is not None and state not in view.EVIDENCE_LABELS:
        state = None
    items = evidence_service.list_for_person(actor, actor.person.id, kind=kind, status=state,
                                             course_id=actor.course.id)
    tree = view.Tree.of(actor.course)
    return render_template("technician/list.html", evidence_items=items, kind=kind, state=state, tree=tree,
                           signed=attestation.evidence_states([ev.id for ev in items]),
                           kinds=forms.KINDS, labels=view.EVIDENCE_LABELS, day_text=view.day_text,
                           session_token=g.get("session_token", ""))


# --- Recording --------------------------------------------------------------------------------------------

def _leaf(actor, competency_id: int | None):
    """A competency that can be signed off in the actor's course, or None: an id from a link means nothing
    beyond the course."""
    if competency_id is None:
        return None
    return next((c for c in view.Tree.of(actor.course).leaves if c.id == competency_id), None)


@bp.route("/evidence/new")
def new_evidence():
    """Choose what to record. Opened for a competency (a deep link), only the kinds it accepts are offered, and
    when it accepts one kind the form opens at once."""
    competency = _leaf(_actor(), request.args.get("competency", type=parse_id))
    kinds = forms.KINDS
    if competency is not None:
        kinds = {k: v for k, v in forms.KINDS.items()
                 if not competency.evidence_kinds or k in competency.evidence_kinds} or forms.KINDS
        if len(kinds) == 1:
            carry = {NOTICE_PARAM: request.args[NOTICE_PARAM]} if request.args.get(NOTICE_PARAM) else {}
            return redirect(app_url("technician.record", kind=next(iter(kinds)), competency=competency.id,
                                    **carry), code=303)
    return render_template("technician/choose.html", kinds=kinds, competency=competency)


def _render_form(actor, kind, values, *, evidence=None, error=None, extra_errors=None, files_lost=False,
                 status=200):
    errors = dict(error.fields) if error is not None and isinstance(error.fields, dict) else {}
    errors = {k: (v if isinstance(v, str) else " ".join(map(str, v)) if isinstance(v, list) else str(v))
              for k, v in errors.items()}
    errors.update(extra_errors or {})
    items, by_field = forms.error_list(errors, kind, values.get("_cycle_map", ()))
    if error is not None and not items:
        items = [{"id": None, "label": _("Form"), "message": error.message}]
    tree = view.Tree.of(actor.course)
    groups = tree.choices(kind)
    steps_first = None
    if kind == "cross_training":
        with_steps = [c for g in groups for c in g["items"] if c.checklist]
        chosen = [c for c in with_steps if c.id in values.get("competency_ids", [])]
        steps_first = (chosen or with_steps or [None])[0]
    return render_template(
        "technician/form.html", kind=kind, kind_label=forms.KINDS[kind][0], explanation=forms.KINDS[kind][1],
        about=forms.ABOUT[kind],
        specs=forms.FIELDS[kind], values=values, groups=groups, errors=items, field_errors=by_field,
        trainers=view.trainer_options(actor) if kind == "cross_training" else [], evidence=evidence,
        limits=_upload_limits(), files_lost=files_lost, today=date.today().isoformat(),
        steps_first=steps_first.id if steps_first else None, pdsa_parts=forms.PDSA_PARTS,
    ), status


def _uploads():
    return [f for f in request.files.getlist("files") if f and f.filename]


def _save_files(actor, evidence_id: int, files, remove_ids=(), *, revised: bool) -> None:
    """The removals and uploads of one form save. `revised`: the save already made a new revision; with the
    fields they make one revision at most, so a first save with two photos stays revision 1."""
    for attachment_id in remove_ids:
        evidence_service.remove_attachment(actor, evidence_id, attachment_id, new_revision=not revised)
        revised = True
    for upload in files:
        try:
            evidence_service.add_attachment(actor, evidence_id, upload.filename, upload.stream,
                                            new_revision=not revised)
        except (Forbidden, NotFound):
            raise
        except DomainError as exc:
            message = (exc.fields or {}).get("file") or exc.message
            raise DomainError(exc.message, fields={"files": f"{upload.filename}: {message}"}) from exc
        revised = True


def _saved_message(evidence, submitted: bool) -> str:
    if submitted:
        return _("“%(title)s” was saved and sent for review.", title=evidence.title)
    return _("“%(title)s” was saved as a draft. Send it for review when it is ready.", title=evidence.title)


@bp.route("/evidence/new/<kind>", methods=["GET", "POST"])
@once_per_submission
def record(kind):
    if kind not in forms.KINDS:
        abort(404)
    actor = _actor()
    if request.method == "GET":
        chosen = _leaf(actor, request.args.get("competency", type=parse_id))
        accepts = chosen is not None and (not chosen.evidence_kinds or kind in chosen.evidence_kinds)
        values = forms.preset(kind, chosen) if accepts else forms.blank_values(kind)
        return _render_form(actor, kind, values)

    payload, values, parse_errors = forms.parse(kind, request.form)
    action = request.form.get("action", "draft")
    if action == "add_cycle":
        values["cycles"].append({})
        return _render_form(actor, kind, values)
    files = _uploads()
    try:
        evidence = evidence_service.create_draft(actor, kind, payload)
        if parse_errors:
            raise DomainError(_("Some fields need attention."), fields=parse_errors)
        _save_files(actor, evidence.id, files, revised=True)
        if action == "submit":
            reviews.request_review(actor, evidence.id)
    except (Forbidden, NotFound):
        raise
    except DomainError as exc:
        db.session.rollback()
        return _render_form(actor, kind, values, error=exc, extra_errors=parse_errors, files_lost=bool(files),
                            status=400)
    return redirect_with_notice("technician.evidence_detail", _saved_message(evidence, action == "submit"),
                                evidence_id=evidence.id)


@bp.route("/evidence/<int:evidence_id>/edit", methods=["GET", "POST"])
@once_per_submission
def edit_evidence(evidence_id):
    actor = _actor()
    evidence = _own(actor, evidence_id)
    if evidence.status not in EDITABLE:
        return redirect_with_notice("technician.evidence_detail",
                                    _("This evidence is %(status)s and cannot be changed.",
                                      status=view.EVIDENCE_LABELS[evidence.status].lower()), "error",
                                    evidence_id=evidence.id)
    kind = evidence.kind
    if request.method == "GET":
        values = forms.values_from_evidence(evidence, [link.competency_id for link in evidence.competency_links])
        return _render_form(actor, kind, values, evidence=evidence)

    payload, values, parse_errors = forms.parse(kind, request.form)
    action = request.form.get("action", "draft")
    if action == "add_cycle":
        values["cycles"].append({})
        return _render_form(actor, kind, values, evidence=evidence)
    files = _uploads()
    try:
        revision = request.form.get("revision", type=parse_id)
        before = evidence.revision
        evidence_service.update_draft(actor, evidence.id, payload, expected_revision=revision)
        if parse_errors:
            raise DomainError(_("Some fields need attention."), fields=parse_errors)
        _save_files(actor, evidence.id, files, request.form.getlist("remove_attachment", type=parse_id),
                    revised=evidence.revision != before)
        if action == "submit":
            reviews.request_review(actor, evidence.id)
    except (Forbidden, NotFound):
        raise
    except DomainError as exc:
        db.session.rollback()
        evidence = _own(actor, evidence_id)
        return _render_form(actor, kind, values, evidence=evidence, error=exc, extra_errors=parse_errors,
                            files_lost=bool(files), status=400)
    return redirect_with_notice("technician.evidence_detail", _saved_message(evidence, action == "submit"),
                                evidence_id=evidence.id)


# --- One item ---------------------------------------------------------------------------------------------

@bp.route("/evidence/<int:evidence_id>")
def evidence_detail(evidence_id):
    actor = _actor()
    evidence = _own(actor, evidence_id)
    requests, sign_offs = view.reviews_of(evidence)
    trainer_id = (evidence.data or {}).get("trainer_person_id")
    people = {}
    if trainer_id:
        people = {p.id: p.display_name for p in db.session.scalars(
            select(Person).where(Person.id == trainer_id, Person.registration_id == actor.registration_id))}
    returned = [r for r in requests if r.status == "returned" and r.return_comment]
    signed = attestation.evidence_states([evidence.id]).get(evidence.id)
    return render_template(
        "technician/detail.html", evidence=evidence, kind_label=forms.KINDS[evidence.kind][0],
        status_label=signed.label if signed else view.EVIDENCE_LABELS[evidence.status], signed=signed,
        fields=view.field_rows(evidence, people),
        competencies=[link.competency for link in evidence.competency_links], requests=requests,
        request_labels=view.REQUEST_LABELS, sign_offs=view.sign_off_rows(sign_offs),
        returned=returned[-3:], history=view.history(evidence, requests, sign_offs, actor.person.id),
        editable=evidence.status in EDITABLE, moment_text=view.moment_text, day_text=view.day_text,
        size_text=_size_text,
    )


def _size_text(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"
    return f"{max(1, round(size / 1024))} KB"


def _action(evidence_id, fn, success: str):
    """Run one service call for a button on the detail page; a refusal comes back as a message there."""
    try:
        fn()
    except (Forbidden, NotFound):
        raise
    except DomainError as exc:
        db.session.rollback()
        return redirect_with_notice("technician.evidence_detail", exc.message, "error", evidence_id=evidence_id)
    return redirect_with_notice("technician.evidence_detail", success, evidence_id=evidence_id)


@bp.route("/evidence/<int:evidence_id>/request-review", methods=["POST"])
@once_per_submission
def request_review(evidence_id):
    actor = _actor()
    evidence = _own(actor, evidence_id)
    return _action(evidence.id, lambda: reviews.request_review(actor, evidence.id),
                   _("Sent for review. You will see the outcome here and on your dashboard."))


@bp.route("/evidence/<int:evidence_id>/withdraw", methods=["POST"])
@once_per_submission
def withdraw_evidence(evidence_id):
    actor = _actor()
    evidence = _own(actor, evidence_id)
    reason = (request.form.get("reason") or "").strip() or None
    return _action(evidence.id, lambda: evidence_service.withdraw(actor, evidence.id, reason),
                   _("The evidence was withdrawn. It stays in your record but counts for nothing."))


@bp.route("/requests/<int:request_id>/withdraw", methods=["POST"])
@once_per_submission
def withdraw_request(request_id):
    actor = _actor()
    evidence_id = request.form.get("evidence_id", type=parse_id)
    evidence = _own(actor, evidence_id) if evidence_id else None
    if evidence is None:
        abort(400, _("The form did not say which evidence the request belongs to."))
    return _action(evidence.id, lambda: reviews.withdraw_request(actor, request_id),
                   _("The review request was withdrawn. You can change the evidence and send it again."))


@bp.route("/evidence/<int:evidence_id>/attachments/<int:attachment_id>")
def download(evidence_id, attachment_id):
    actor = _actor()
    evidence = _own(actor, evidence_id)
    attachment, stream = evidence_service.open_attachment(actor, attachment_id)
    if attachment.evidence_id != evidence.id:
        stream.close()
        raise NotFound(_("No such attachment."))
    return evidence_file(attachment, stream)
