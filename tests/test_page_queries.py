"""Pages cost the same number of SQL statements whatever the size of the record: the technician's dashboard
(career pathways read the stored status instead of judging the history again)."""
from datetime import timedelta

from sqlalchemy import event, select

from lti_tool.extensions import db
from lti_tool.models import Competency, Evidence, EvidenceCompetency, Membership, Person
from lti_tool.services import reviews, status
from lti_tool.services.actors import Actor
from tests.test_technician_pages import actor_for, tech  # noqa: F401  (fixtures)


def _statements(app, call) -> tuple[int, object]:
    seen = []

    def before(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE")):
            seen.append(statement)

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", before)
    try:
        result = call()
    finally:
        with app.app_context():
            event.remove(db.engine, "before_cursor_execute", before)
    return len(seen), result


def _manager(technician) -> Actor:
    """The course's manager, made directly: a launch would refresh the roster in the background, and the
    statements counted here are every thread's."""
    person = db.session.scalar(select(Person).where(Person.sub == "manager-1"))
    if person is None:
        person = Person(registration_id=technician.person.registration_id, sub="manager-1", name="Morgan Lee")
        db.session.add(person)
        db.session.flush()
        db.session.add(Membership(person_id=person.id, course_id=technician.course.id, role="manager",
                                  lti_roles=[]))
        db.session.flush()
    return actor_for("manager-1")


def _record(app, n: int, tag: str):
    """n cross-training items for the technician, half of them signed off by a manager."""
    with app.app_context():
        actor = actor_for("tech-1")
        manager = _manager(actor)
        codes = db.session.scalars(select(Competency).where(Competency.code.like("XT-%"))
                                   .order_by(Competency.code)).all()
        leaves = [c for c in codes if not c.children
                  and (not c.evidence_kinds or "cross_training" in c.evidence_kinds)][:max(n, 1)]
        for i in range(n):
            item = Evidence(person_id=actor.person.id, course_id=actor.course.id, kind="cross_training",
                            title=f"{tag} {i}", data={"department": "iv_room", "hours": 4,
                                                      "start_date": "2026-01-05", "end_date": "2026-01-06"},
                            status="draft", revision=1,
                            created_at=status.now_utc() - timedelta(days=30))
            item.competency_links = [EvidenceCompetency(competency_id=leaves[i % len(leaves)].id)]
            db.session.add(item)
            db.session.flush()
            if i % 2:
                requests = reviews.request_review(actor, item.id, now=status.now_utc() - timedelta(days=3))
                reviews.sign_off(manager, requests[0].id, "competent", "observed",
                                 now=status.now_utc() - timedelta(days=2))
        db.session.commit()


def test_the_dashboard_costs_the_same_statements_for_a_small_and_a_large_record(app, tech):  # noqa: F811
    _record(app, 2, "few")
    small, page = _statements(app, lambda: tech.get("/me/"))
    assert page.status_code == 200 and "few 1" not in page.text  # the dashboard, not a list
    _record(app, 30, "many")
    large, page = _statements(app, lambda: tech.get("/me/"))
    assert page.status_code == 200
    assert large == small
    # Session 2, course tree 1, stored status 1 (shared with the pathways), drafts 1, returned 1, pathways 2
    # (competencies; evidence with links and attestation); the one CE computation (recorded and verified hours,
    # the verified and pending certifications) and the re-assessment list (signed-off evidence and their
    # attestation states) added 6 when they landed: the 10 is the next step, this bound keeps them flat.
    assert large <= 16, large
