"""Demo data for the development LMS: the demo course with its people, the shipped framework, and a record
worth looking at (sign-offs, one due for revalidation, one returned with comments, requests waiting, CE)."""
from datetime import date, timedelta

from sqlalchemy import select

from ..extensions import db
from ..lti import dev_platform
from ..lti.roles import map_roles
from ..models import Competency, Course, CourseFramework, Evidence, Membership, Person
from ..models.base import utcnow
from . import evidence as evidence_service
from . import reviews
from .actors import Actor
from .frameworks import ensure_default_framework


def _person(registration, key):
    persona = dev_platform.PERSONAS[key]
    sub = f"dev-{key}"
    person = db.session.scalars(select(Person).where(Person.registration_id == registration.id,
                                                     Person.sub == sub)).first()
    if person is None:
        person = Person(registration_id=registration.id, sub=sub)
        db.session.add(person)
    person.name, person.given_name = persona["name"], persona["given_name"]
    person.family_name, person.email = persona["family_name"], persona["email"]
    role, is_admin = map_roles(persona["roles"])
    person.is_admin = is_admin
    db.session.flush()
    return person, role


def _member(course, person, role):
    membership = db.session.scalars(select(Membership).where(Membership.person_id == person.id,
                                                             Membership.course_id == course.id)).first()
    if membership is None:
        membership = Membership(person_id=person.id, course_id=course.id, role=role, lti_roles=[],
                                source="roster")
        db.session.add(membership)
        db.session.flush()
    return membership


def load(registration) -> bool:
    """Create the demo course and record; False when it is already there (running it twice changes nothing)."""
    framework = ensure_default_framework()
    course = db.session.scalars(select(Course).where(Course.registration_id == registration.id,
                                                     Course.context_id == dev_platform.COURSE["id"])).first()
    if course is None:
        course = Course(registration_id=registration.id, context_id=dev_platform.COURSE["id"],
                        title=dev_platform.COURSE["title"], label=dev_platform.COURSE["label"],
                        deployment_id=registration.deployments[0].id if registration.deployments else None)
        db.session.add(course)
        db.session.flush()
    if not db.session.get(CourseFramework, (course.id, framework.id)):
        db.session.add(CourseFramework(course_id=course.id, framework_id=framework.id))
    actors = {}
    for key in ("tech", "tech2", "manager"):
        person, role = _person(registration, key)
        actors[key] = Actor(person=person, course=course, membership=_member(course, person, role))
    db.session.flush()
    if db.session.scalar(select(Evidence.id).where(Evidence.course_id == course.id).limit(1)):
        return False

    codes = {c.code: c.id for c in db.session.scalars(select(Competency).where(
        Competency.framework_id == framework.id))}
    now, today = utcnow(), date.today()

    def day(days_ago):
        return (today - timedelta(days=days_ago)).isoformat()

    def cross_training(actor, code, title, dept, days_ago, steps=True):
        checklist = db.session.get(Competency, codes[code]).checklist or []
        return evidence_service.create_draft(actor, "cross_training", {
            "title": title, "department": dept, "skills": [title], "trainer_name": "Morgan Ellis", "hours": 4,
            "start_date": day(days_ago), "end_date": day(days_ago),
            "checklist_steps": checklist if steps else [], "competency_ids": [codes[code]]})

    tess, ravi, boss = actors["tech"], actors["tech2"], actors["manager"]
    # Tess: garbing signed five and a half months ago (due for revalidation soon), cart fill achieved,
    # a returned item and one waiting for review.
    for code, title, dept, ago in (("USP797-02", "Garbing and gloved-fingertip test", "iv_room", 165),
                                   ("XT-CEN-01", "Cart fill on 4 West", "central", 40)):
        item = cross_training(tess, code, title, dept, ago)
        request = reviews.request_review(tess, item.id, now=now - timedelta(days=ago))[0]
        reviews.sign_off(boss, request.id, "competent", "observed",
                         db.session.get(Competency, codes[code]).checklist or [], comment="Observed start to finish.",
                         now=now - timedelta(days=ago))
    returned = cross_training(tess, "XT-CEN-03", "Controlled-substance vault count", "central", 6, steps=False)
    request = reviews.request_review(tess, returned.id, now=now - timedelta(days=5))[0]
    reviews.return_for_revision(boss, request.id, "Please add which vault and the second counter's name.",
                                now=now - timedelta(days=4))
    waiting = cross_training(tess, "XT-IV-01", "Aseptic technique in the IV room", "iv_room", 2)
    reviews.request_review(tess, waiting.id, now=now - timedelta(days=1))
    evidence_service.create_draft(tess, "certification", {
        "title": "PTCB CPhT", "credential": "ptcb_cpht", "number": "123456", "issuing_body": "PTCB",
        "issued_date": day(400), "expiry_date": (today + timedelta(days=330)).isoformat(),
        "competency_ids": [codes["CRED-CPHT"]]})
    for uan, hours, title in (("0197-0000-25-011-H03-T", 1.0, "Federal pharmacy law update"),
                              ("0197-0000-25-042-L01-T", 2.0, "Anticoagulation for technicians")):
        evidence_service.create_draft(tess, "continuing_education", {
            "title": title, "uan": uan, "hours": hours, "completion_date": day(30),
            "provider_name": "State Pharmacy Association", "competency_ids": [codes["A2-01"]]})
    # Ravi: one request waiting, so the manager's queue has two.
    item = cross_training(ravi, "USP797-02", "Garbing and gloved-fingertip test", "iv_room", 3)
    reviews.request_review(ravi, item.id, now=now - timedelta(days=2))
    db.session.flush()
    return True
