"""Named preceptors: a course manager names an active technician as preceptor/trainer for some of the course's
competencies; they may then sign off other technicians' cross-training there (services.reviews enforces that).
Moodle sends non-editing teachers as learners, so this is how trainers who are not LMS teachers sign off."""
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import exists, select
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..lti.roles import TECHNICIAN
from ..models import Membership, Preceptor
from . import DomainError, Forbidden, NotFound, audit, scope
from .status import _aware, course_competencies

CROSS_TRAINING = "cross_training"


def membership(person_id: int, course_id: int) -> Membership | None:
    return db.session.scalar(select(Membership).where(
        Membership.person_id == person_id, Membership.course_id == course_id, Membership.active.is_(True)))


def is_preceptor(person_id: int, course_id: int, competency_id: int) -> bool:
    return bool(db.session.scalar(select(exists().where(
        Preceptor.person_id == person_id, Preceptor.course_id == course_id,
        Preceptor.competency_id == competency_id, Preceptor.active.is_(True)))))


def precepted(person_id: int, course_id: int):
    """A select of the competency ids someone is an active preceptor for in a course."""
    return select(Preceptor.competency_id).where(
        Preceptor.course_id == course_id, Preceptor.person_id == person_id, Preceptor.active.is_(True))


def precepts_any(person_id: int, course_id: int) -> bool:
    """An active member of the course named preceptor for at least one of its competencies."""
    return membership(person_id, course_id) is not None and named_any(person_id, course_id)


def named_any(person_id: int, course_id: int) -> bool:
    """Named preceptor for at least one competency of the course (for a caller that knows the membership is
    active)."""
    return bool(db.session.scalar(select(named_any_clause(person_id, course_id))))


def named_any_clause(person_id, course_id):
    """named_any as an SQL expression (values or columns): the session reads it with the membership."""
    return exists().where(Preceptor.course_id == course_id, Preceptor.person_id == person_id,
                          Preceptor.active.is_(True))


def reviewer_scope(actor, course_id: int):
    """(course, competency ids the actor reviews there): None for a manager of the course (every competency);
    for a named preceptor a select of the competencies they precept (cross-training only, never their own
    evidence: review_queue and reviews._signing_role apply that). Anyone else: Forbidden (a member) or
    NotFound. The one rule behind the review queue, the review page and the queue's filters."""
    course = scope.course(actor, course_id)
    if scope.manages(actor.person.id, course.id):
        return course, None
    if not scope.is_member(actor.person.id, course.id):
        raise NotFound(_("No such course."))
    if not precepts_any(actor.person.id, course.id):
        raise Forbidden(_("Only managers and named preceptors review evidence."))
    return course, precepted(actor.person.id, course.id)


def may_review(actor, row) -> bool:
    """A preceptor reviews another technician's cross-training for a competency they precept."""
    return (row.person_id != actor.person.id and row.evidence.kind == CROSS_TRAINING
            and is_preceptor(actor.person.id, row.course_id, row.competency_id))


def _managed_course(actor, course_id: int):
    course = scope.course(actor, course_id)
    if not scope.manages(actor.person.id, course.id):
        if scope.is_member(actor.person.id, course.id):
            raise Forbidden(_("Only the course's managers can name preceptors."))
        raise NotFound(_("No such course."))
    return course


def name_preceptor(actor, course_id: int, person_id: int, competency_ids, now: datetime | None = None):
    """Name an active technician of the course as preceptor/trainer for some of its competencies."""
    now = _aware(now)
    course = _managed_course(actor, course_id)
    person = scope.person(actor, person_id)
    member = membership(person.id, course.id)
    if member is None:
        raise NotFound(_("No such technician in this course."))
    if member.role != TECHNICIAN:
        raise DomainError(_("Only technicians are named preceptors; managers already sign off."),
                          code="not_a_technician")
    ids = list(dict.fromkeys(competency_ids or []))
    if not ids:
        raise DomainError(_("Choose at least one competency."), code="nothing_selected")
    found = {c.id for c in course_competencies(course, ids)}
    if set(ids) != found:
        raise DomainError(_("Some competencies are not in this course's frameworks."),
                          code="competency_not_in_course", fields={"competency_ids": sorted(set(ids) - found)})
    existing = {p.competency_id: p for p in db.session.scalars(select(Preceptor).where(
        Preceptor.course_id == course.id, Preceptor.person_id == person.id, Preceptor.competency_id.in_(ids)))}
    named = []
    for competency_id in ids:
        row = existing.get(competency_id)
        if row is not None and row.active:
            named.append(row)
            continue
        before = audit.snapshot(row, ("active", "named_by_id", "named_at")) if row is not None else None
        if row is None:
            row = Preceptor(course_id=course.id, person_id=person.id, competency_id=competency_id)
            db.session.add(row)
        row.active, row.named_by_id, row.named_at = True, actor.person.id, now
        db.session.flush()
        audit.record(actor, "preceptor.name", row, before=before,
                     after=audit.snapshot(row, ("person_id", "competency_id", "active", "named_by_id", "named_at")),
                     course_id=course.id)
        named.append(row)
    return named


def remove_preceptor(actor, course_id: int, person_id: int, competency_ids=None) -> int:
    """Stop someone being preceptor for the given competencies (all of them when None). Returns how many."""
    course = _managed_course(actor, course_id)
    person = scope.person(actor, person_id)
    query = select(Preceptor).where(Preceptor.course_id == course.id, Preceptor.person_id == person.id,
                                    Preceptor.active.is_(True))
    if competency_ids is not None:
        query = query.where(Preceptor.competency_id.in_(list(competency_ids)))
    rows = db.session.scalars(query.order_by(Preceptor.id)).all()
    for row in rows:
        row.active = False
        db.session.flush()
        audit.record(actor, "preceptor.remove", row, before={"active": True}, after={"active": False},
                     course_id=course.id)
    return len(rows)


def course_preceptors(actor, course_id: int) -> list[Preceptor]:
    """The course's active preceptors, for its members to see who may sign off what."""
    course = scope.course(actor, course_id)
    if not scope.is_member(actor.person.id, course.id):
        raise NotFound(_("No such course."))
    return list(db.session.scalars(
        select(Preceptor).where(Preceptor.course_id == course.id, Preceptor.active.is_(True))
        .options(joinedload(Preceptor.person), joinedload(Preceptor.competency))
        .order_by(Preceptor.person_id, Preceptor.competency_id)))
