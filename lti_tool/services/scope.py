"""Tenant- and course-scoped lookups. Every read of learner data goes through here, so no view or service can
forget the scope: nothing of one registration (tenant) is visible from another, and a manager sees only the
technicians of courses they manage."""
from flask_babel import gettext as _
from sqlalchemy import exists, select

from ..extensions import db
from ..lti.roles import MANAGER_SIDE
from ..models import Course, Evidence, Membership, Person, Preceptor, ReviewRequest
from . import NotFound


def course(actor, course_id: int) -> Course:
    row = db.session.get(Course, course_id)
    if row is None or row.registration_id != actor.registration_id:
        raise NotFound(_("No such course."))
    return row


def person(actor, person_id: int) -> Person:
    row = db.session.get(Person, person_id)
    if row is None or row.registration_id != actor.registration_id:
        raise NotFound(_("No such person."))
    return row


def managed_course_ids(actor):
    """A select of the ids of courses where the actor holds an active manager-side membership."""
    return select(Membership.course_id).where(
        Membership.person_id == actor.person.id,
        Membership.active.is_(True),
        Membership.role.in_(MANAGER_SIDE),
    )


def manages(actor_person_id: int, course_id: int) -> bool:
    return bool(db.session.scalar(select(exists().where(
        Membership.person_id == actor_person_id,
        Membership.course_id == course_id,
        Membership.active.is_(True),
        Membership.role.in_(MANAGER_SIDE),
    ))))


def is_member(person_id: int, course_id: int) -> bool:
    return bool(db.session.scalar(select(exists().where(
        Membership.person_id == person_id, Membership.course_id == course_id, Membership.active.is_(True),
    ))))


def can_view_person(actor, target: Person, course_id: int | None = None) -> bool:
    """Oneself always; otherwise a manager-side member of a course (the given one, if any) that the target
    belongs to, in the same tenant."""
    if target.registration_id != actor.registration_id:
        return False
    if target.id == actor.person.id:
        return True
    courses = select(Membership.course_id).where(Membership.person_id == target.id)
    if course_id is not None:
        courses = courses.where(Membership.course_id == course_id)
    return bool(db.session.scalar(select(exists().where(
        Membership.person_id == actor.person.id,
        Membership.active.is_(True),
        Membership.role.in_(MANAGER_SIDE),
        Membership.course_id.in_(courses),
    ))))


def evidence(actor, evidence_id: int) -> Evidence:
    """An evidence item the actor may see: their own, or a technician's in a course the actor manages.
    Anything else is reported as not found, so ids of other tenants leak nothing."""
    row = db.session.get(Evidence, evidence_id)
    if row is None or row.person.registration_id != actor.registration_id:
        raise NotFound(_("No such evidence."))
    if row.person_id == actor.person.id or manages(actor.person.id, row.course_id) or _precepts(actor, row):
        return row
    raise NotFound(_("No such evidence."))


def _precepts(actor, row: Evidence) -> bool:
    """A preceptor sees the cross-training they are asked to review (a request for a competency they precept),
    e.g. to open its attachments."""
    return row.kind == "cross_training" and bool(db.session.scalar(select(exists().where(
        ReviewRequest.evidence_id == row.id, Preceptor.course_id == row.course_id,
        Preceptor.person_id == actor.person.id, Preceptor.competency_id == ReviewRequest.competency_id,
        Preceptor.active.is_(True))))) and is_member(actor.person.id, row.course_id)
