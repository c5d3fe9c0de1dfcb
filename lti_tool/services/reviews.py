"""The review workflow: request, withdraw, sign off (one or many), return for revision, revoke, correct; named
preceptors; the manager's review queue.

Integrity rules (issue 3, items 5, 7, 10, 11):
- Nobody signs off their own evidence. Signers are manager-side members (lti.roles.MANAGER_SIDE) of the
  request's course, or a preceptor named for that competency in that course, who may sign off only other
  technicians' cross-training evidence. The technician must still be an active member of that course.
- Things the actor cannot see (another tenant's, another course's) are NotFound; things they can see but may
  not do are Forbidden.
- A SignOff row is never updated. Revocation is a SignOffRevocation row; a correction is a new SignOff with
  `corrects_id` and a reason. Each sign-off stores the signer's name and role at the time, the evidence
  revision, a SHA-256 of the canonical JSON of the evidence and a snapshot of it.
- Every change writes an audit row, through the request's course.
- Races: a review request is locked (SELECT ... FOR UPDATE on PostgreSQL) and then closed with a
  compare-and-set UPDATE (`WHERE status = 'open'`), which is what serialises writers on SQLite, where FOR
  UPDATE is a no-op; the unique constraint on sign_offs.review_request_id is the last line. The loser gets
  DomainError code "already_signed_off" (409). The compare-and-set is the first write of a sign-off, so on
  SQLite the loser waits on the writer lock instead of deadlocking.
- After any DomainError the caller rolls the transaction back (the request boundary does): bulk_sign_off is
  all-or-nothing on that basis and checks every item before writing anything.
"""
from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..lti.roles import MANAGER_SIDE
from ..models import (
    Competency,
    Course,
    Evidence,
    ReviewRequest,
    SignOff,
    SignOffRevocation,
)
from ..models.evidence import DRAFT, RETURNED, SIGNED_OFF, SUBMITTED
from ..models.reviews import METHODS, OPEN, SIGNED, WITHDRAWN
from ..models.reviews import RETURNED as REQUEST_RETURNED
from . import DomainError, Forbidden, NotFound, audit, grades, scope, status_store
from .attestation import evidence_document, evidence_hash, snapshot
from .preceptors import (
    CROSS_TRAINING,
    course_preceptors,
    is_preceptor,
    membership,
    name_preceptor,
    remove_preceptor,
)
from .review_queue import review_queue
from .status import _aware, course_competencies, expiry_for

# The workflow's API; naming preceptors lives in services.preceptors and is part of it.
__all__ = ["bulk_sign_off", "correct", "course_preceptors", "name_preceptor", "remove_preceptor",
           "request_review", "return_for_revision", "review_queue", "revoke", "sign_off", "withdraw_request"]

PRECEPTOR = "preceptor"
REQUEST_FIELDS = ("id", "evidence_id", "competency_id", "course_id", "person_id", "status", "evidence_revision",
                  "requested_at", "resolved_at", "resolved_by_id", "return_comment")
SIGN_OFF_FIELDS = ("id", "review_request_id", "person_id", "competency_id", "course_id", "evidence_id",
                   "signer_id", "signer_name", "signer_role", "rating_code", "rating_label", "proficient", "method",
                   "checklist_seen", "comment", "evidence_revision", "evidence_hash", "signed_at", "expires_at",
                   "corrects_id", "correction_reason")


# How a request's or an evidence item's state reads inside a sentence ("it was returned").
REQUEST_STATE_WORDS = {"open": _l("open"), "signed_off": _l("signed off"), "returned": _l("returned"),
                       "withdrawn": _l("withdrawn")}
EVIDENCE_STATE_WORDS = {"draft": _l("draft"), "submitted": _l("submitted"), "returned": _l("returned"),
                        "signed_off": _l("signed off"), "withdrawn": _l("withdrawn")}


# --- Permissions ------------------------------------------------------------------------------------------

def _signing_role(actor, course, competency_id: int, evidence: Evidence, what) -> str:
    """The role in which the actor may sign off (or return, or correct) this competency on this evidence."""
    if course.registration_id != actor.registration_id:
        raise NotFound(what)
    if evidence.person_id == actor.person.id:
        raise Forbidden(_("Nobody can sign off their own evidence."), code="own_evidence")
    member = membership(actor.person.id, course.id)
    if member is not None and member.role in MANAGER_SIDE:
        role = member.role
    elif member is not None and is_preceptor(actor.person.id, course.id, competency_id):
        if evidence.kind != CROSS_TRAINING:
            raise Forbidden(_("Preceptors sign off cross-training only; ask a manager to review this evidence."),
                            code="preceptor_scope")
        role = PRECEPTOR
    else:
        raise NotFound(what)
    if not scope.is_member(evidence.person_id, course.id):
        raise Forbidden(_("The technician is no longer an active member of this course."), code="not_a_member")
    return role


def _lock_request(actor, request_id: int) -> ReviewRequest:
    row = db.session.execute(
        select(ReviewRequest).where(ReviewRequest.id == request_id)
        .with_for_update(of=ReviewRequest).execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if row is None or row.course.registration_id != actor.registration_id:
        raise NotFound(_("No such review request."))
    return row


def _closed(row: ReviewRequest) -> DomainError:
    if row.status == SIGNED:
        return DomainError(_("This request has already been signed off by someone else."), status=409,
                           code="already_signed_off")
    return DomainError(_("This request is no longer open (it was %(status)s).",
                         status=str(REQUEST_STATE_WORDS.get(row.status, row.status))), status=409,
                       code="request_closed")


def _close(actor, row: ReviewRequest, status: str, now: datetime, comment: str | None = None):
    """Compare-and-set the request from open to `status`: exactly one writer wins, on every database."""
    before = audit.snapshot(row, REQUEST_FIELDS)
    values = {"status": status, "resolved_at": now, "resolved_by_id": actor.person.id}
    if comment is not None:
        values["return_comment"] = comment
    result = db.session.execute(
        update(ReviewRequest).where(ReviewRequest.id == row.id, ReviewRequest.status == OPEN).values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.refresh(row)
        raise _closed(row)
    status_store.touch(row.person_id, [row.competency_id])  # the UPDATE bypassed the unit of work
    db.session.refresh(row)
    audit.record(actor, f"review_request.{status}", row, before=before,
                 after=audit.snapshot(row, REQUEST_FIELDS), course_id=row.course_id)


def _settle_evidence(actor, evidence: Evidence, fallback: str):
    """Evidence is submitted while any request on it is open; once attested it stays signed off (frozen);
    otherwise it takes `fallback` (returned after a return, draft after a withdrawal)."""
    open_left = db.session.scalar(select(exists().where(
        ReviewRequest.evidence_id == evidence.id, ReviewRequest.status == OPEN)))
    attested = db.session.scalar(select(exists().where(SignOff.evidence_id == evidence.id)))
    new = SUBMITTED if open_left else SIGNED_OFF if attested else fallback
    if evidence.status != new:
        before = {"status": evidence.status}
        evidence.status = new
        db.session.flush()
        audit.record(actor, "evidence.status", evidence, before=before, after={"status": new},
                     course_id=evidence.course_id)


def _text(value, message: str, code: str) -> str:
    value = value.strip() if isinstance(value, str) else ""
    if not value:
        raise DomainError(message, code=code, fields={code.removesuffix("_required"): message})
    return value


# --- Technician side --------------------------------------------------------------------------------------

def request_review(actor, evidence_id: int, now: datetime | None = None) -> list[ReviewRequest]:
    """Submit one's own draft or returned evidence: one open review request per linked competency."""
    now = _aware(now)
    evidence = scope.evidence(actor, evidence_id)
    if evidence.person_id != actor.person.id:
        raise Forbidden(_("Only the technician who recorded this evidence can ask for its review."), code="not_owner")
    if not scope.is_member(actor.person.id, evidence.course_id):
        raise Forbidden(_("You are no longer an active member of this evidence's course."), code="not_a_member")
    if evidence.status not in (DRAFT, RETURNED):
        raise DomainError(_("This evidence is %(status)s; only a draft or returned item can be sent for review.",
                            status=str(EVIDENCE_STATE_WORDS.get(evidence.status, evidence.status))), status=409,
                          code="not_submittable")
    competency_ids = [link.competency_id for link in evidence.competency_links]
    if not competency_ids:
        raise DomainError(_("Link the evidence to at least one competency before asking for review."),
                          code="no_competencies")
    in_course = {c.id: c for c in course_competencies(evidence.course, competency_ids)}
    missing = [c for c in competency_ids if c not in in_course]
    if missing:
        raise DomainError(_("Some linked competencies are not in this course's frameworks."),
                          code="competency_not_in_course", fields={"competency_ids": missing})
    refused = [c.code for c in in_course.values() if c.evidence_kinds and evidence.kind not in c.evidence_kinds]
    if refused:
        raise DomainError(_("%(kind)s evidence does not count toward %(codes)s.",
                            kind=evidence.kind.replace("_", " ").capitalize(), codes=", ".join(refused)),
                          code="kind_not_accepted", fields={"competency_ids": refused})
    # Compare-and-set the evidence status first: a double click submits once.
    before_status = evidence.status
    result = db.session.execute(
        update(Evidence).where(Evidence.id == evidence.id, Evidence.status.in_((DRAFT, RETURNED)))
        .values(status=SUBMITTED, submitted_at=now).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise DomainError(_("This evidence has just been sent for review."), status=409, code="not_submittable")
    status_store.touch(evidence.person_id, competency_ids)  # the UPDATE bypassed the unit of work
    db.session.refresh(evidence)
    audit.record(actor, "evidence.submit", evidence, before={"status": before_status},
                 after={"status": SUBMITTED, "revision": evidence.revision}, course_id=evidence.course_id)
    already_open = set(db.session.scalars(select(ReviewRequest.competency_id).where(
        ReviewRequest.evidence_id == evidence.id, ReviewRequest.status == OPEN)))
    created = []
    for competency_id in competency_ids:
        if competency_id in already_open:
            continue
        row = ReviewRequest(evidence_id=evidence.id, competency_id=competency_id, course_id=evidence.course_id,
                            person_id=evidence.person_id, status=OPEN, evidence_revision=evidence.revision,
                            requested_at=now)
        db.session.add(row)
        db.session.flush()
        audit.record(actor, "review_request.create", row, after=audit.snapshot(row, REQUEST_FIELDS),
                     course_id=row.course_id)
        grades.on_review_requested(row, now)
        created.append(row)
    return created


def withdraw_request(actor, request_id: int, now: datetime | None = None) -> ReviewRequest:
    """The technician takes back an open request; evidence with nothing left open goes back to draft."""
    now = _aware(now)
    row = _lock_request(actor, request_id)
    if row.person_id != actor.person.id:
        if scope.manages(actor.person.id, row.course_id):
            raise Forbidden(_("Only the technician can withdraw their request; return it instead."),
                            code="not_owner")
        raise NotFound(_("No such review request."))
    if row.status != OPEN:
        raise _closed(row)
    _close(actor, row, WITHDRAWN, now)
    _settle_evidence(actor, row.evidence, DRAFT)
    return row


# --- Manager / preceptor side -----------------------------------------------------------------------------

def _checked_level(competency: Competency, rating) -> dict:
    level = competency.framework.level(rating) if isinstance(rating, str) else None
    if level is None:
        codes = ", ".join(lvl["code"] for lvl in competency.framework.scale or [])
        raise DomainError(_("Choose a rating on the %(framework)s scale (%(codes)s).",
                            framework=competency.framework.name, codes=codes),
                          code="invalid_rating", fields={"rating": _("Not a level of this framework's scale.")})
    return level


def _checked_method(method) -> str:
    if method not in METHODS:
        raise DomainError(_("Choose how competence was assessed: %(methods)s.", methods=", ".join(METHODS)),
                          code="invalid_method", fields={"method": _("Not a known method.")})
    return method


def _checked_steps(competency: Competency, steps) -> list:
    steps = list(steps or [])
    unknown = [s for s in steps if not isinstance(s, str) or s not in (competency.checklist or [])]
    if unknown:
        raise DomainError(_("%(n)d checklist step(s) are not in %(code)s's checklist.", n=len(unknown),
                            code=competency.code),
                          code="invalid_checklist", fields={"checklist_seen": [str(s) for s in unknown]})
    seen = set(steps)
    return [s for s in competency.checklist if s in seen]  # the checklist's own order, no duplicates


def _prepare(actor, row: ReviewRequest, rating, method, checklist_seen) -> dict:
    """Every check of a sign-off, before anything is written."""
    evidence = row.evidence
    role = _signing_role(actor, row.course, row.competency_id, evidence, _("No such review request."))
    if row.status != OPEN:
        raise _closed(row)
    if evidence.revision != row.evidence_revision:
        raise DomainError(_("The evidence changed after it was submitted; ask the technician to resubmit."),
                          status=409, code="evidence_changed")
    competency = row.competency
    return {"role": role, "level": _checked_level(competency, rating), "method": _checked_method(method),
            "steps": _checked_steps(competency, checklist_seen)}


def _write_sign_off(actor, row: ReviewRequest, plan: dict, comment, now: datetime) -> SignOff:
    _close(actor, row, SIGNED, now)  # first write: the compare-and-set that decides the race
    evidence, competency, level = row.evidence, row.competency, plan["level"]
    document = evidence_document(evidence)
    sign_off = SignOff(
        review_request_id=row.id, person_id=row.person_id, competency_id=row.competency_id,
        course_id=row.course_id, evidence_id=evidence.id, signer_id=actor.person.id,
        signer_name=actor.person.display_name, signer_role=plan["role"], rating_code=level["code"],
        rating_label=level.get("label") or level["code"], proficient=bool(level.get("proficient")),
        method=plan["method"], checklist_seen=plan["steps"], comment=(comment or "").strip() or None,
        evidence_revision=evidence.revision, evidence_hash=evidence_hash(document),
        evidence_snapshot=snapshot(evidence, document), signed_at=now,
        expires_at=expiry_for(competency, now, bool(level.get("proficient"))),
    )
    db.session.add(sign_off)
    try:
        db.session.flush()
    except IntegrityError as exc:  # someone else's sign-off landed first (unique review_request_id)
        raise DomainError(_("This request has already been signed off by someone else."), status=409,
                          code="already_signed_off") from exc
    audit.record(actor, "sign_off.create", sign_off, after=audit.snapshot(sign_off, SIGN_OFF_FIELDS),
                 course_id=row.course_id)
    _settle_evidence(actor, evidence, SIGNED_OFF)
    grades.on_signed_off(sign_off, now)
    return sign_off


def sign_off(actor, request_id: int, rating: str, method: str, checklist_seen=(), comment: str | None = None,
             now: datetime | None = None) -> SignOff:
    """Attest one review request: a rating on the framework's scale, the method, the checklist steps seen."""
    now = _aware(now)
    row = _lock_request(actor, request_id)
    plan = _prepare(actor, row, rating, method, checklist_seen)
    return _write_sign_off(actor, row, plan, comment, now)


def bulk_sign_off(actor, request_ids, rating: str, method: str, checklist_seen=(), comment: str | None = None,
                  now: datetime | None = None) -> list[SignOff]:
    """Sign off several requests for the same competency with one rating: all or nothing.

    Every request is locked (in id order, so two bulk sign-offs cannot deadlock) and checked first; if any
    fails, DomainError code "bulk_refused" lists each failing id with its reason in `fields["requests"]` and
    nothing is written. A race lost after the checks raises too, and the caller's rollback undoes the rest.
    """
    now = _aware(now)
    ids = list(dict.fromkeys(request_ids or []))
    if not ids:
        raise DomainError(_("Choose at least one review request."), code="nothing_selected")
    rows = {r.id: r for r in db.session.scalars(
        select(ReviewRequest).where(ReviewRequest.id.in_(ids)).order_by(ReviewRequest.id)
        .with_for_update(of=ReviewRequest).execution_options(populate_existing=True))}
    problems, plans = {}, {}
    for request_id in ids:
        row = rows.get(request_id)
        if row is None or row.course.registration_id != actor.registration_id:
            problems[request_id] = {"code": "not_found", "message": "No such review request."}
            continue
        try:
            plans[request_id] = _prepare(actor, row, rating, method, checklist_seen)
        except DomainError as exc:
            problems[request_id] = {"code": exc.code, "message": exc.message}
    competencies = {rows[i].competency_id for i in plans}
    if len(competencies) > 1:
        raise DomainError(_("A bulk sign-off covers one competency; these requests are for several."),
                          code="mixed_competencies")
    if problems:
        raise DomainError(_("Nothing was signed off: %(problems)d of %(total)d request(s) cannot be.",
                            problems=len(problems), total=len(ids)),
                          code="bulk_refused", fields={"requests": problems})
    return [_write_sign_off(actor, rows[i], plans[i], comment, now) for i in ids]


def return_for_revision(actor, request_id: int, comment: str, now: datetime | None = None) -> ReviewRequest:
    """Send evidence back with comments. Returning concerns the whole item: every open request on it is
    returned and the evidence becomes editable (the technician revises, which bumps its revision, and
    resubmits). Evidence that already carries a sign-off stays frozen: only this request is returned, and the
    technician records new evidence for that competency."""
    now = _aware(now)
    comment = _text(comment, _("Give a comment saying what to revise."), "comment_required")
    row = _lock_request(actor, request_id)
    _signing_role(actor, row.course, row.competency_id, row.evidence, _("No such review request."))
    if row.status != OPEN:
        raise _closed(row)
    evidence = row.evidence
    attested = db.session.scalar(select(exists().where(SignOff.evidence_id == evidence.id)))
    _close(actor, row, REQUEST_RETURNED, now, comment)
    if not attested:
        siblings = db.session.scalars(
            select(ReviewRequest).where(ReviewRequest.evidence_id == evidence.id, ReviewRequest.status == OPEN)
            .order_by(ReviewRequest.id).with_for_update(of=ReviewRequest)
            .execution_options(populate_existing=True)).all()
        for sibling in siblings:
            _close(actor, sibling, REQUEST_RETURNED, now, comment)
    _settle_evidence(actor, evidence, RETURNED)
    return row


def _lock_sign_off(actor, sign_off_id: int) -> SignOff:
    row = db.session.execute(
        select(SignOff).where(SignOff.id == sign_off_id).with_for_update(of=SignOff)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if row is None or row.person.registration_id != actor.registration_id:
        raise NotFound(_("No such sign-off."))
    return row


def _correction_of(sign_off_id: int) -> SignOff | None:
    return db.session.scalar(select(SignOff).where(SignOff.corrects_id == sign_off_id))


def revoke(actor, sign_off_id: int, reason: str, now: datetime | None = None) -> SignOffRevocation:
    """Withdraw an attestation (it stops counting from `now`). Manager-side members of its course only."""
    now = _aware(now)
    row = _lock_sign_off(actor, sign_off_id)
    if row.person_id == actor.person.id:
        raise Forbidden(_("Nobody can revoke a sign-off of their own evidence."), code="own_evidence")
    if not scope.manages(actor.person.id, row.course_id):
        if is_preceptor(actor.person.id, row.course_id, row.competency_id):
            raise Forbidden(_("Only the course's managers can revoke a sign-off."))
        raise NotFound(_("No such sign-off."))
    reason = _text(reason, _("Give a reason for the revocation."), "reason_required")
    if row.revocation is not None:
        raise DomainError(_("This sign-off has already been revoked."), status=409, code="already_revoked")
    if _correction_of(row.id) is not None:
        raise DomainError(_("This sign-off was corrected; revoke the correction instead."), status=409,
                          code="already_corrected")
    revocation = SignOffRevocation(sign_off_id=row.id, revoked_by_id=actor.person.id, reason=reason,
                                   revoked_at=now)
    db.session.add(revocation)
    try:
        db.session.flush()
    except IntegrityError as exc:
        raise DomainError(_("This sign-off has already been revoked."), status=409, code="already_revoked") from exc
    audit.record(actor, "sign_off.revoke", revocation, before=audit.snapshot(row, SIGN_OFF_FIELDS),
                 after={"sign_off_id": row.id, "reason": reason, "revoked_at": now,
                        "revoked_by_id": actor.person.id}, course_id=row.course_id)
    grades.on_lapsed(row, f"Sign-off revoked: {reason}", now)
    return revocation


_UNSET = object()


def correct(actor, sign_off_id: int, reason: str, *, rating=_UNSET, method=_UNSET, checklist_seen=_UNSET,
            comment=_UNSET, now: datetime | None = None) -> SignOff:
    """Replace a sign-off's rating, method, checklist or comment by a new SignOff that names it
    (`corrects_id`) and says why. The original stays as it was; it no longer counts once corrected.

    The correction attests the same evidence revision (hash and snapshot are carried over) and keeps the
    original assessment date for expiry: fixing a record does not extend a competency's validity.
    """
    now = _aware(now)
    original = _lock_sign_off(actor, sign_off_id)
    role = _signing_role(actor, db.session.get(Course, original.course_id), original.competency_id,
                         original.evidence, "sign-off")
    reason = _text(reason, _("Give a reason for the correction."), "reason_required")
    if original.revocation is not None:
        raise DomainError(_("A revoked sign-off cannot be corrected; sign off new evidence instead."), status=409,
                          code="revoked")
    if _correction_of(original.id) is not None:
        raise DomainError(_("This sign-off was already corrected; correct the latest version."), status=409,
                          code="already_corrected")
    competency = original.competency
    level = _checked_level(competency, original.rating_code if rating is _UNSET else rating)
    new_method = _checked_method(original.method if method is _UNSET else method)
    steps = _checked_steps(competency, original.checklist_seen if checklist_seen is _UNSET else checklist_seen)
    new_comment = original.comment if comment is _UNSET else ((comment or "").strip() or None)
    if (level["code"], new_method, steps, new_comment) == (original.rating_code, original.method,
                                                           list(original.checklist_seen or []), original.comment):
        raise DomainError(_("The correction changes nothing."), code="nothing_to_correct")
    assessed_at = _assessed_at(original)
    correction = SignOff(
        review_request_id=None, person_id=original.person_id, competency_id=original.competency_id,
        course_id=original.course_id, evidence_id=original.evidence_id, signer_id=actor.person.id,
        signer_name=actor.person.display_name, signer_role=role, rating_code=level["code"],
        rating_label=level.get("label") or level["code"], proficient=bool(level.get("proficient")),
        method=new_method, checklist_seen=steps, comment=new_comment,
        evidence_revision=original.evidence_revision, evidence_hash=original.evidence_hash,
        evidence_snapshot=original.evidence_snapshot, signed_at=now,
        expires_at=expiry_for(competency, assessed_at, bool(level.get("proficient"))),
        corrects_id=original.id, correction_reason=reason,
    )
    db.session.add(correction)
    try:
        db.session.flush()
    except IntegrityError as exc:  # sign_offs.corrects_id is unique: a concurrent correction won
        raise DomainError(_("This sign-off was already corrected; correct the latest version."), status=409,
                          code="already_corrected") from exc
    audit.record(actor, "sign_off.correct", correction, before=audit.snapshot(original, SIGN_OFF_FIELDS),
                 after=audit.snapshot(correction, SIGN_OFF_FIELDS), course_id=original.course_id)
    if correction.proficient:
        grades.on_signed_off(correction, now)
    else:
        grades.on_lapsed(correction, f"Sign-off corrected: {reason}", now)
    return correction


def _assessed_at(sign_off: SignOff) -> datetime:
    """When the assessment behind a (possibly corrected, possibly many times) sign-off was made."""
    while sign_off.corrects_id is not None:
        sign_off = db.session.get(SignOff, sign_off.corrects_id)
    return sign_off.signed_at
