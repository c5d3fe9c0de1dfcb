"""Recording evidence: drafts, edits, attachments, withdrawal and listing.

A technician records evidence for themself, in the course they are acting in, linked to competencies of a
framework that course uses and that accept the kind of evidence. Evidence can be changed only while it is a
draft or has been returned; every change bumps `revision` (a sign-off records which revision it attests to) and
is written to the audit log with before and after. Requesting review and signing off live in services/reviews.py.
"""
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..i18n import N_
from ..lti.roles import OBSERVER
from ..models import Attachment, Competency, Evidence, EvidenceCompetency
from ..models.evidence import DRAFT, RETURNED, SIGNED_OFF, SUBMITTED, WITHDRAWN
from ..models.frameworks import EVIDENCE_KINDS
from ..schemas.evidence import CREDENTIAL_COMPETENCY_CODES, editable_payload, load_evidence
from . import DomainError, Forbidden, NotFound, attachments, audit, scope, status

EDITABLE = (DRAFT, RETURNED)
STATUSES = (DRAFT, SUBMITTED, RETURNED, SIGNED_OFF, WITHDRAWN)
KIND_LABELS = {
    "cross_training": N_("cross-training"),
    "responsibility": N_("extra responsibility"),
    "qi_project": N_("quality-improvement project"),
    "certification": N_("certification"),
    "continuing_education": N_("continuing education"),
}
MAX_ATTACHMENTS = 20
CE_KIND = "continuing_education"
_AUDIT_FIELDS = ("person_id", "course_id", "kind", "title", "data", "status", "revision")
_NOT_EDITABLE = {
    SUBMITTED: "This evidence is waiting for review and cannot be changed until the review is returned or "
               "withdrawn.",
    SIGNED_OFF: "Signed-off evidence is never changed; record new evidence for anything new.",
    WITHDRAWN: "This evidence was withdrawn and cannot be changed.",
}


def snapshot(evidence: Evidence) -> dict:
    """What the audit log keeps of an evidence item."""
    return {**audit.snapshot(evidence, _AUDIT_FIELDS),
            "competency_ids": sorted(link.competency_id for link in evidence.competency_links)}


def _attachment_snapshot(att: Attachment) -> dict:
    return audit.snapshot(att, ("evidence_id", "filename", "content_type", "size", "sha256", "storage_key",
                                "description"))


# -- who may record -------------------------------------------------------------------------------------------

def _require_recorder(actor) -> None:
    """The actor acts through a course of their own tenant and is an active member of it (not an observer)."""
    course = actor.course
    if course is None:
        raise Forbidden(_("Open the tool from a course to record evidence."))
    if course.registration_id != actor.registration_id:
        raise NotFound(_("No such course."))
    membership = actor.membership
    if (membership is None or not membership.active or membership.course_id != course.id
            or membership.person_id != actor.person.id or not scope.is_member(actor.person.id, course.id)):
        raise Forbidden(_("Only members of this course can record evidence in it."))
    if membership.role == OBSERVER:
        raise Forbidden(_("Observers follow progress; they cannot record evidence."))


def _own_evidence(actor, evidence_id: int, *, lock: bool = True) -> Evidence:
    _require_recorder(actor)
    evidence = scope.evidence(actor, evidence_id)
    if evidence.person_id != actor.person.id:
        raise Forbidden(_("Only the technician who recorded this evidence can change it."))
    if evidence.course_id != actor.course.id:
        raise Forbidden(_("This evidence belongs to another course; open the tool from that course to change it."))
    if lock:
        # Serialise with a concurrent review request, which freezes the item (FOR UPDATE on PostgreSQL).
        db.session.refresh(evidence, with_for_update=True)
    return evidence


def _own_editable(actor, evidence_id: int) -> Evidence:
    evidence = _own_evidence(actor, evidence_id)
    if evidence.status not in EDITABLE:
        raise DomainError(_NOT_EDITABLE.get(evidence.status, "This evidence cannot be changed."), status=409,
                          code="not_editable")
    return evidence


# -- validation -----------------------------------------------------------------------------------------------

def _flatten(messages, prefix: str = "") -> dict[str, str]:
    """marshmallow's nested messages as {"field" or "field.0.sub": "message ..."}."""
    out: dict[str, str] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(messages, list | tuple):
        texts = [m for m in messages if isinstance(m, str)]
        if texts:
            out[prefix or "_schema"] = " ".join(texts)
        for n, m in enumerate(messages):
            if not isinstance(m, str):
                out.update(_flatten(m, f"{prefix}.{n}" if prefix else str(n)))
    else:
        out[prefix or "_schema"] = str(messages)
    return out


def _course_competencies(course, competency_ids: list[int]) -> dict[int, Competency]:
    """The given competencies that belong to a framework the course uses (and the tenant may see)."""
    if not competency_ids:
        return {}
    return {c.id: c for c in status.course_competencies(course, competency_ids)}


def _with_defaults(course, kind: str, data: dict, competency_ids: list[int]) -> list[int]:
    """A certification links its credential's competency by itself (PTCB CPhT -> CRED-CPHT); CE with no chosen
    competency links the course's continuing-education competency (one accepting CE only). Either stands without
    one when the course's frameworks have none."""
    if kind not in ("certification", "continuing_education"):
        return competency_ids
    wanted = CREDENTIAL_COMPETENCY_CODES.get(data.get("credential")) if kind == "certification" else None
    if kind == "continuing_education" and competency_ids:
        return competency_ids
    for competency in status.course_competencies(course):
        if (competency.code == wanted if wanted else
                kind == "continuing_education" and (competency.evidence_kinds or []) == [kind]):
            return list(dict.fromkeys([*competency_ids, competency.id]))
    return competency_ids


def _validate(actor, kind: str, payload, *, evidence_id: int | None = None):
    """Schema checks, then the rules that need the database. Raises DomainError with a message per field."""
    try:
        title, data, competency_ids = load_evidence(kind, payload)
    except ValidationError as exc:
        raise DomainError(_("Some fields need attention."), code="invalid", fields=_flatten(exc.messages)) from exc

    errors: dict[str, list[str]] = {}
    competency_ids = _with_defaults(actor.course, kind, data, competency_ids)
    found = _course_competencies(actor.course, competency_ids)
    missing = [str(i) for i in competency_ids if i not in found]
    if missing:
        errors.setdefault("competency_ids", []).append(
            _("Not a competency of this course's frameworks: %(ids)s.", ids=", ".join(missing)))
    for competency in found.values():
        if competency.evidence_kinds and kind not in competency.evidence_kinds:
            errors.setdefault("competency_ids", []).append(
                _("%(code)s %(title)s does not accept %(kind)s evidence.", code=competency.code,
                  title=competency.title, kind=_(KIND_LABELS[kind])))

    if kind == "cross_training":
        steps = set(data.get("checklist_steps") or [])
        allowed = {step for c in found.values() for step in (c.checklist or [])}
        unknown = [s for s in data.get("checklist_steps") or [] if s not in allowed]
        if steps and not allowed and not missing:
            errors.setdefault("checklist_steps", []).append(
                _("The linked competencies have no checklist; leave the observed steps empty."))
        elif unknown and allowed:
            errors.setdefault("checklist_steps", []).append(
                _("Not a step of the linked competencies' checklists: %(steps)s.", steps="; ".join(unknown)))
        trainer_id = data.get("trainer_person_id")
        if trainer_id is not None:
            if trainer_id == actor.person.id:
                errors.setdefault("trainer_person_id", []).append(_("You cannot be your own trainer."))
            elif not scope.is_member(trainer_id, actor.course.id):
                errors.setdefault("trainer_person_id", []).append(_("The trainer must be a member of this course."))

    if kind == CE_KIND:
        query = select(Evidence.id, Evidence.data).where(
            Evidence.person_id == actor.person.id, Evidence.course_id == actor.course.id,
            Evidence.kind == kind, Evidence.status != WITHDRAWN)
        if evidence_id is not None:
            query = query.where(Evidence.id != evidence_id)
        for other_id, other_data in db.session.execute(query):
            if (other_data or {}).get("uan") == data["uan"]:
                errors.setdefault("uan", []).append(
                    _("You already recorded this activity in this course (evidence %(id)s).", id=other_id))
                break

    if errors:
        raise DomainError(_("Some fields need attention."), code="invalid",
                          fields={k: " ".join(v) for k, v in errors.items()})
    return title, data, competency_ids


# -- drafting -------------------------------------------------------------------------------------------------

def _ce_uan(kind: str, data: dict) -> str | None:
    return data.get("uan") if kind == CE_KIND else None


def _flush_unique_activity() -> None:
    """Flush; a second live record of one CE activity (two requests that both passed the check in _validate)
    is refused by the database and answered like the check's own refusal. The caller's request rolls back."""
    try:
        db.session.flush()
    except IntegrityError as exc:
        message = "You already recorded this activity in this course."
        raise DomainError(_("Some fields need attention."), status=409, code="duplicate_activity",
                          fields={"uan": message}) from exc


def create_draft(actor, kind: str, payload, *, person_id: int | None = None) -> Evidence:
    """Record a new draft for the actor, in the actor's course."""
    _require_recorder(actor)
    if person_id is not None and person_id != actor.person.id:
        raise Forbidden(_("You can record evidence only for yourself."))
    title, data, competency_ids = _validate(actor, kind, payload)
    evidence = Evidence(person_id=actor.person.id, course_id=actor.course.id, kind=kind, title=title, data=data,
                        status=DRAFT, revision=1, ce_uan=_ce_uan(kind, data))
    evidence.competency_links = [EvidenceCompetency(competency_id=cid) for cid in competency_ids]
    db.session.add(evidence)
    _flush_unique_activity()
    audit.record(actor, "evidence.create", evidence, after=snapshot(evidence))
    return evidence


def update_draft(actor, evidence_id: int, payload, *, expected_revision: int | None = None) -> Evidence:
    """Change a draft or returned item. `payload` holds the fields to change (null clears an optional one);
    the whole item is validated again. Gives a 409 if `expected_revision` is not the current revision."""
    evidence = _own_editable(actor, evidence_id)
    if expected_revision is not None and expected_revision != evidence.revision:
        raise DomainError(_("This evidence was changed since you opened it; reload it and make your change again."),
                          status=409, code="stale_revision")
    if not isinstance(payload, dict):
        raise DomainError(_("Send the changes as an object of fields."), code="invalid")
    payload = dict(payload)
    if "kind" in payload:
        if payload.pop("kind") != evidence.kind:
            raise DomainError(_("Some fields need attention."), code="invalid",
                              fields={"kind": "The kind of evidence cannot be changed; record new evidence."})
    current_ids = [link.competency_id for link in evidence.competency_links]
    merged = {**editable_payload(evidence.title, evidence.data, current_ids), **payload}
    title, data, competency_ids = _validate(actor, evidence.kind, merged, evidence_id=evidence.id)
    if title == evidence.title and data == evidence.data and set(competency_ids) == set(current_ids):
        return evidence

    before = snapshot(evidence)
    evidence.title = title
    evidence.data = data
    keep = [link for link in evidence.competency_links if link.competency_id in competency_ids]
    have = {link.competency_id for link in keep}
    evidence.competency_links = keep + [EvidenceCompetency(competency_id=cid) for cid in competency_ids
                                        if cid not in have]
    evidence.ce_uan = _ce_uan(evidence.kind, data)
    evidence.revision += 1
    _flush_unique_activity()
    audit.record(actor, "evidence.update", evidence, before=before, after=snapshot(evidence))
    return evidence


def withdraw(actor, evidence_id: int, reason: str | None = None) -> Evidence:
    """Withdraw a draft or returned item: it stays in the record, marked withdrawn, and counts for nothing."""
    evidence = _own_evidence(actor, evidence_id)
    if evidence.status == SUBMITTED:
        raise DomainError(_("This evidence is waiting for review; withdraw the review request first."), status=409,
                          code="under_review")
    if evidence.status not in EDITABLE:
        raise DomainError(_NOT_EDITABLE[evidence.status], status=409, code="not_withdrawable")
    if reason is not None and len(reason) > 2000:
        raise DomainError(_("Some fields need attention."), code="invalid",
                          fields={"reason": "At most 2000 characters."})
    before = snapshot(evidence)
    evidence.status = WITHDRAWN
    db.session.flush()
    after = snapshot(evidence)
    if reason:
        after["reason"] = reason.strip()
    audit.record(actor, "evidence.withdraw", evidence, before=before, after=after)
    return evidence


# -- attachments ----------------------------------------------------------------------------------------------

def add_attachment(actor, evidence_id: int, filename: str, stream, *, description: str | None = None,
                   new_revision: bool = True) -> Attachment:
    """Attach a file (PDF, PNG, JPEG, WebP or HEIC by content; at most ATTACHMENT_MAX_BYTES) to a draft or
    returned item. Bumps the item's revision, unless `new_revision` is False: the file is part of a save that
    already made this revision in the same transaction (one form save is one revision, so a first save with two
    photos is revision 1; nobody could have reviewed the states in between)."""
    evidence = _own_editable(actor, evidence_id)
    if len(evidence.attachments) >= MAX_ATTACHMENTS:
        raise DomainError(_("An evidence item can have at most %(n)d attachments.", n=MAX_ATTACHMENTS), status=409,
                          code="too_many_attachments")
    if description is not None:
        description = description.strip() or None
        if description and len(description) > 1000:
            raise DomainError(_("Some fields need attention."), code="invalid",
                              fields={"description": "At most 1000 characters."})
    stored = attachments.store_upload(stream)
    if any(att.sha256 == stored.sha256 for att in evidence.attachments):
        attachments.storage().delete(stored.key)
        raise DomainError(_("This file is already attached to this evidence."), status=409, code="duplicate_file",
                          fields={"file": "This file is already attached to this evidence."})
    attachment = Attachment(filename=attachments.clean_filename(filename), content_type=stored.content_type,
                            size=stored.size, sha256=stored.sha256, storage_key=stored.key,
                            uploaded_by_id=actor.person.id, description=description)
    evidence.attachments.append(attachment)
    if new_revision:
        evidence.revision += 1
    db.session.flush()
    audit.record(actor, "attachment.add", attachment,
                 after={**_attachment_snapshot(attachment), "evidence_revision": evidence.revision})
    return attachment


def remove_attachment(actor, evidence_id: int, attachment_id: int, *, new_revision: bool = True) -> None:
    """Remove an attachment from a draft or returned item; its file is deleted when the change commits.
    `new_revision` as for add_attachment."""
    evidence = _own_editable(actor, evidence_id)
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None or attachment.evidence_id != evidence.id:
        raise NotFound(_("No such attachment."))
    audit.record(actor, "attachment.remove", attachment,
                 before={**_attachment_snapshot(attachment), "evidence_revision": evidence.revision},
                 after={"evidence_revision": evidence.revision + (1 if new_revision else 0)})
    key = attachment.storage_key
    evidence.attachments.remove(attachment)
    db.session.delete(attachment)
    if new_revision:
        evidence.revision += 1
    db.session.flush()
    attachments.delete_after_commit(key)


def open_attachment(actor, attachment_id: int):
    """(Attachment, binary stream) for someone who may see the evidence (its technician or a course manager)."""
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound(_("No such attachment."))
    scope.evidence(actor, attachment.evidence_id)
    return attachment, attachments.storage().open(attachment.storage_key)


# -- reading --------------------------------------------------------------------------------------------------

def list_for_person(actor, person_id: int, *, kind: str | None = None, status: str | None = None,
                    course_id: int | None = None, include_withdrawn: bool = False) -> list[Evidence]:
    """A technician's evidence, newest first. Oneself: everything; a manager: only items in courses they
    manage. Withdrawn items are left out unless asked for."""
    target = scope.person(actor, person_id)
    if kind is not None and kind not in EVIDENCE_KINDS:
        raise DomainError(_("Unknown evidence kind."), code="invalid",
                          fields={"kind": _("Unknown kind '%(kind)s'.", kind=kind)})
    if status is not None and status not in STATUSES:
        raise DomainError(_("Unknown status."), code="invalid",
                          fields={"status": _("Unknown status '%(status)s'.", status=status)})
    query = select(Evidence).where(Evidence.person_id == target.id)
    if target.id != actor.person.id:
        if not scope.can_view_person(actor, target, course_id):
            raise NotFound(_("No such person."))
        query = query.where(Evidence.course_id.in_(scope.managed_course_ids(actor)))
    if course_id is not None:
        query = query.where(Evidence.course_id == course_id)
    if kind is not None:
        query = query.where(Evidence.kind == kind)
    if status is not None:
        query = query.where(Evidence.status == status)
    elif not include_withdrawn:
        query = query.where(Evidence.status != WITHDRAWN)
    query = query.options(selectinload(Evidence.competency_links), selectinload(Evidence.attachments))
    return list(db.session.scalars(query.order_by(Evidence.created_at.desc(), Evidence.id.desc())))

