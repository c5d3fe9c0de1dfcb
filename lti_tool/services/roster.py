"""Course rosters from the LMS (LTI Names and Role Provisioning Services).

Technicians who never launched the tool still appear (as "not launched yet"); members who leave the course are
marked inactive, never deleted, so their records stay.
"""
import logging
from dataclasses import dataclass
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..lti.advantage import DbServiceConnector, PlatformError, membership_pages
from ..lti.roles import map_roles
from ..models import Course, Membership, Person
from ..models.base import utcnow
from . import DomainError, audit

log = logging.getLogger(__name__)


@dataclass
class RosterResult:
    added: int = 0
    updated: int = 0
    deactivated: int = 0
    pages: int = 0


def sync_roster(course: Course, actor=None) -> RosterResult:
    """Read every page of the course's membership and bring people and memberships up to date."""
    if not course.nrps_url:
        raise DomainError(_("The LMS has not offered the course roster to the tool. An LMS administrator can switch "
                          "on Names and Role Provisioning for the tool."), code="nrps_unavailable")
    registration = course.registration
    connector = DbServiceConnector(registration)
    result = RosterResult()
    memberships = {m.person_id: m for m in db.session.scalars(
        select(Membership).where(Membership.course_id == course.id))}
    seen_person_ids = set()
    now = utcnow()
    try:
        for members, _context in membership_pages(connector, course.nrps_url):
            result.pages += 1
            subs = [str(m.get("user_id")) for m in members if m.get("user_id")]
            people = {p.sub: p for p in db.session.scalars(
                select(Person).where(Person.registration_id == registration.id, Person.sub.in_(subs)))}
            for member in members:
                sub = str(member.get("user_id") or "")
                role, is_admin = map_roles(member.get("roles") or [], registration.role_mapping)
                if not sub or role is None:
                    continue
                person = people.get(sub)
                if person is None:
                    person = Person(registration_id=registration.id, sub=sub, is_admin=False)
                    db.session.add(person)
                    people[sub] = person
                person.name = member.get("name") or person.name
                person.given_name = member.get("given_name") or person.given_name
                person.family_name = member.get("family_name") or person.family_name
                person.email = member.get("email") or person.email
                db.session.flush()
                seen_person_ids.add(person.id)
                active = (member.get("status") or "Active") == "Active"
                membership = memberships.get(person.id)
                if membership is None:
                    membership = Membership(person_id=person.id, course_id=course.id, role=role,
                                            lti_roles=member.get("roles") or [], active=active, source="roster")
                    db.session.add(membership)
                    memberships[person.id] = membership
                    result.added += 1
                elif membership.role != role or membership.active != active:
                    membership.role, membership.active = role, active
                    membership.lti_roles = member.get("roles") or []
                    result.updated += 1
    except PlatformError as exc:
        raise DomainError(f"The course roster could not be read from the LMS: {exc.message}",
                          status=502, code="nrps_failed") from exc
    for person_id, membership in memberships.items():
        if person_id not in seen_person_ids and membership.active:
            membership.active = False
            result.deactivated += 1
    course.roster_synced_at = now
    course.roster_error = None
    db.session.flush()
    audit.record(actor, "roster.synced", course, after=result.__dict__, course_id=course.id)
    return result


STALE_AFTER = timedelta(hours=1)


def is_stale(course: Course, now=None) -> bool:
    now = now or utcnow()
    return course.roster_synced_at is None or now - course.roster_synced_at >= STALE_AFTER


def sync_if_stale(course: Course, actor=None, now=None) -> str | None:
    """A worker's roster refresh (after a manager's launch, and hourly): a roster older than an hour is read
    again. A failure is rolled back, remembered on the course and returned in plain words, never raised."""
    if not course.nrps_url or not is_stale(course, now):
        return None
    course_id = course.id
    try:
        sync_roster(course, actor)
        db.session.commit()
        return None
    except DomainError as exc:
        db.session.rollback()
        log.warning("Roster sync for course %s failed: %s", course_id, exc.message)
        course = db.session.get(Course, course_id)
        course.roster_error = exc.message
        course.roster_synced_at = None
        db.session.commit()
        return exc.message
