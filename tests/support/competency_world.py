"""A small competency world for review, status, integrity and pathway tests: one tenant, one course using one
framework, a manager, technicians, and helpers to add evidence and sign it off. Rows are built directly with the
models (the evidence service is tested on its own)."""
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, select

from lti_tool.extensions import db
from lti_tool.models import (
    AuditEntry,
    Competency,
    CourseFramework,
    Evidence,
    EvidenceCompetency,
    Framework,
)
from lti_tool.services import reviews

SCALE = [
    {"code": "not_yet", "label": "Not yet competent", "proficient": False},
    {"code": "supervised", "label": "Competent with supervision", "proficient": False},
    {"code": "competent", "label": "Competent", "proficient": True},
    {"code": "trainer", "label": "Can train others", "proficient": True},
]
GARB_STEPS = ["Hand hygiene", "Garbing order", "Gloved-fingertip sample"]
T0 = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)


def make_framework(registration=None, code="pt-test", competencies=()):
    """A framework with SCALE and the given competencies (dicts of Competency fields)."""
    framework = Framework(registration_id=registration.id if registration else None, code=code,
                          name=f"Framework {code}", version="1", scale=SCALE)
    db.session.add(framework)
    db.session.flush()
    rows = []
    for position, fields in enumerate(competencies):
        row = Competency(framework_id=framework.id, position=position, **fields)
        db.session.add(row)
        rows.append(row)
    db.session.flush()
    return framework, rows


class World:
    def __init__(self, make, registration=None):
        self.make = make
        self.reg = registration or make.registration()
        self.course = make.course(self.reg)
        self.framework, (self.garb, self.cart, self.audit_comp) = make_framework(self.reg, competencies=[
            {"code": "IV-GARB", "title": "Garbing and gloved-fingertip testing", "departments": ["iv_room"],
             "checklist": GARB_STEPS, "revalidation_months": 6, "evidence_kinds": ["cross_training"]},
            {"code": "CEN-CART", "title": "Cart fill", "departments": ["central"], "checklist": []},
            {"code": "REG-AUDIT", "title": "Controlled-substance audit", "departments": ["central"],
             "revalidation_months": 12},
        ])
        db.session.add(CourseFramework(course_id=self.course.id, framework_id=self.framework.id))
        db.session.flush()
        self.manager = make.actor(self.course, "manager")
        self.tech = make.actor(self.course, "technician")
        self.tech2 = make.actor(self.course, "technician")

    def evidence(self, person, competencies, kind="cross_training", status="draft", data=None, course=None,
                 title="Evidence", created_at=T0 - timedelta(days=30)):
        person = getattr(person, "person", person)
        row = Evidence(person_id=person.id, course_id=(course or self.course).id, kind=kind, title=title,
                       created_at=created_at,
                       data=data if data is not None else {"department": "iv_room", "hours": 8}, status=status,
                       revision=1)
        row.competency_links = [EvidenceCompetency(competency_id=c.id) for c in competencies]
        db.session.add(row)
        db.session.flush()
        return row

    def submitted(self, actor=None, competencies=None, now=T0, **kw):
        """Evidence of `actor` (default the first technician) sent for review; returns its requests."""
        actor = actor or self.tech
        ev = self.evidence(actor, competencies or [self.garb], **kw)
        return reviews.request_review(actor, ev.id, now=now)

    def signed(self, competency=None, actor=None, signer=None, rating="competent", now=T0, **kw):
        request = self.submitted(actor, [competency or self.garb], now=now, **kw)[0]
        return reviews.sign_off(signer or self.manager, request.id, rating, "observed", [], now=now)


def audit_rows(action=None, entity=None):
    query = select(AuditEntry).order_by(AuditEntry.id)
    if action:
        query = query.where(AuditEntry.action == action)
    if entity is not None:
        query = query.where(AuditEntry.entity_type == entity.__tablename__, AuditEntry.entity_id == entity.id)
    return list(db.session.scalars(query))


@contextmanager
def count_queries():
    """Count the SQL statements executed inside the block: `with count_queries() as n: ...; n[0]`."""
    counter = [0]

    def before(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE")):
            counter[0] += 1

    engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", before)
