"""AGS score outbox and NRPS roster sync against the Advantage test platform over real HTTP."""
import pytest
from sqlalchemy import func, select

from lti_tool.extensions import db
from lti_tool.models import Course, Membership, Person, Registration, ResourceLink, ScoreOutbox
from lti_tool.models.base import utcnow
from lti_tool.services import DomainError, grades, roster
from tests.support.advantage import AdvantagePlatform


@pytest.fixture(scope="session")
def advantage_platform(live_server):
    p = AdvantagePlatform(live_server + "/lti/jwks")
    yield p
    p.close()


@pytest.fixture
def adv(app, advantage_platform):
    """(platform, course) with the platform registered and a course that offers NRPS."""
    advantage_platform.reset()
    with app.app_context():
        reg = advantage_platform.register_in(db)
        course = Course(registration_id=reg.id, context_id="course-1", title="IV room",
                        nrps_url=advantage_platform.nrps_url)
        db.session.add(course)
        db.session.commit()
        course_id = course.id
    with app.app_context():
        yield advantage_platform, db.session.get(Course, course_id)
        db.session.rollback()


def _technician(course, sub="tech-1"):
    person = Person(registration_id=course.registration_id, sub=sub, name="Tess")
    db.session.add(person)
    db.session.flush()
    db.session.add(Membership(person_id=person.id, course_id=course.id, role="technician", lti_roles=[]))
    db.session.flush()
    return person


def _link(course, lineitem_url):
    link = ResourceLink(course_id=course.id, resource_link_id="rl-1", title="Garbing",
                        target={"type": "competency", "id": 1}, lineitem_url=lineitem_url)
    db.session.add(link)
    db.session.flush()
    return link


def test_scores_are_delivered_in_order_with_increasing_timestamps(adv):
    platform, course = adv
    person = _technician(course)
    link = _link(course, platform.add_lineitem())
    now = utcnow()
    grades.queue_score(course, person, link, activity="Submitted", grading="PendingManual", now=now)
    # Same instant: the second score must still carry a newer timestamp.
    grades.queue_score(course, person, link, activity="Completed", grading="FullyGraded", score_given=3,
                       score_maximum=4, comment="Signed off by Morgan Ellis (Manager): Competent", now=now)
    db.session.commit()
    counts = grades.deliver_due()
    assert counts["sent"] == 2
    accepted = platform.scores["1"]
    assert [s["activityProgress"] for s in accepted] == ["Submitted", "Completed"]
    assert accepted[1]["scoreGiven"] == 3 and accepted[1]["gradingProgress"] == "FullyGraded"
    assert accepted[0]["timestamp"] < accepted[1]["timestamp"]
    assert platform.token_requests == 1, "the access token is cached between calls"


def test_outbox_retries_after_platform_failure_and_loses_nothing(adv):
    platform, course = adv
    person = _technician(course)
    link = _link(course, platform.add_lineitem())
    grades.queue_score(course, person, link, activity="Submitted", grading="PendingManual")
    grades.queue_score(course, person, link, activity="Completed", grading="FullyGraded", score_given=4,
                       score_maximum=4)
    db.session.commit()
    platform.fail_scores = 1
    first = grades.deliver_due()
    assert first == {"sent": 0, "retried": 1, "failed": 0, "waiting": 1}
    row = db.session.scalars(select(ScoreOutbox).order_by(ScoreOutbox.id)).first()
    assert row.attempts == 1 and "503" in row.last_error and row.next_attempt_at > utcnow()
    assert grades.deliver_due() == {"sent": 0, "retried": 0, "failed": 0, "waiting": 1}, "backing off, in order"
    later = grades.deliver_due(now=row.next_attempt_at)
    assert later["sent"] == 2
    assert [s["activityProgress"] for s in platform.scores["1"]] == ["Submitted", "Completed"]


def test_conflict_409_marks_score_superseded(adv):
    platform, course = adv
    person = _technician(course)
    link = _link(course, platform.add_lineitem())
    grades.queue_score(course, person, link, activity="Submitted", grading="PendingManual")
    db.session.commit()
    grades.deliver_due()
    row = db.session.scalars(select(ScoreOutbox)).first()
    # Replay the same timestamp as a new row: the platform answers 409.
    db.session.add(ScoreOutbox(registration_id=row.registration_id, course_id=row.course_id,
                               person_id=row.person_id, lineitem_url=row.lineitem_url, payload=row.payload,
                               score_timestamp=row.score_timestamp, next_attempt_at=utcnow()))
    db.session.commit()
    assert grades.deliver_due()["sent"] == 1
    rows = db.session.scalars(select(ScoreOutbox).order_by(ScoreOutbox.id)).all()
    assert rows[1].last_error == "superseded (409)"


def test_roster_follows_every_page_and_marks_leavers_inactive(adv):
    platform, course = adv
    for i in range(5):
        platform.member(f"m-{i}")
    platform.member("teacher-1", role="teacher")
    result = roster.sync_roster(course)
    assert result.pages == 3 and result.added == 6
    people = db.session.scalars(select(Person).where(Person.registration_id == course.registration_id)).all()
    assert len(people) == 6
    assert all(p.last_launch_at is None for p in people), "known from the roster, not launched yet"
    roles = {m.person.sub: m.role for m in db.session.scalars(select(Membership))}
    assert roles["teacher-1"] == "manager" and roles["m-0"] == "technician"

    # m-1 leaves the course, m-2 is suspended: both kept, both inactive.
    platform.members = [m for m in platform.members if m["user_id"] != "m-1"]
    platform.members[1]["status"] = "Inactive"
    result = roster.sync_roster(course)
    assert result.deactivated == 1 and result.updated == 1
    memberships = {m.person.sub: m for m in db.session.scalars(select(Membership))}
    assert len(memberships) == 6
    assert memberships["m-1"].active is False and memberships["m-2"].active is False
    assert memberships["m-0"].active is True


def test_a_member_who_leaves_keeps_their_records(adv):
    from lti_tool.models import Evidence

    platform, course = adv
    platform.member("leaver")
    roster.sync_roster(course)
    leaver = db.session.scalars(select(Person).where(Person.sub == "leaver")).one()
    db.session.add(Evidence(person_id=leaver.id, course_id=course.id, kind="certification", title="CPhT",
                            data={"credential": "ptcb_cpht"}, status="signed_off", revision=1))
    db.session.commit()
    platform.members = []
    assert roster.sync_roster(course).deactivated == 1
    db.session.commit()
    assert db.session.scalars(select(Person).where(Person.sub == "leaver")).one().id == leaver.id
    assert [e.title for e in db.session.scalars(select(Evidence).where(Evidence.person_id == leaver.id))] == ["CPhT"]
    membership = db.session.scalars(select(Membership).where(Membership.person_id == leaver.id)).one()
    assert membership.active is False
    platform.member("leaver")
    assert roster.sync_roster(course).updated == 1, "re-enrolled: the same person and membership, active again"
    assert db.session.get(Membership, membership.id).active is True


def test_roster_failure_is_a_plain_domain_error(adv):
    platform, course = adv
    reg = db.session.get(Registration, course.registration_id)
    reg.auth_token_url = platform.base + "/no-such-token-endpoint"
    db.session.flush()
    with pytest.raises(DomainError) as err:
        roster.sync_roster(course)
    assert "could not be read from the LMS" in err.value.message
    assert db.session.scalars(select(Membership)).all() == []


def test_timestamps_differ_on_the_wire_within_one_millisecond(adv):
    platform, course = adv
    person = _technician(course)
    link = _link(course, platform.add_lineitem())
    base = utcnow().replace(microsecond=123456)
    first = grades.queue_score(course, person, link, activity="Submitted", grading="PendingManual", now=base)
    second = grades.queue_score(course, person, link, activity="Completed", grading="FullyGraded",
                                now=base.replace(microsecond=123789))
    assert first.payload["timestamp"] < second.payload["timestamp"]


NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"


def _nrps(platform):
    return lambda body: {**body, NRPS_CLAIM: {"context_memberships_url": platform.nrps_url,
                                              "service_versions": ["2.0"]}}


def test_manager_launch_reads_the_roster(app, live_server, advantage_platform, http):
    from tests.support.platform import CANVAS_ROLES

    advantage_platform.reset()
    with app.app_context():
        advantage_platform.register_in(db)
    for i in range(3):
        advantage_platform.member(f"never-launched-{i}")
    resp, _, _ = advantage_platform.launch(http, live_server, roles=CANVAS_ROLES["teacher"], sub="boss",
                                           context_id="course-1", claims=_nrps(advantage_platform))
    assert resp.status_code == 303
    assert advantage_platform.nrps_requests == 2
    with app.app_context():
        subs = {m.person.sub: (m.role, m.source) for m in db.session.scalars(select(Membership))}
    assert subs["never-launched-0"] == ("technician", "roster")
    assert subs["boss"] == ("manager", "launch"), "the launching manager was not in the roster and stays"
    # A second launch within the hour does not call the LMS again.
    advantage_platform.launch(http, live_server, roles=CANVAS_ROLES["teacher"], sub="boss",
                              context_id="course-1", claims=_nrps(advantage_platform))
    assert advantage_platform.nrps_requests == 2


def test_roster_failure_on_launch_is_shown_not_fatal(app, live_server, advantage_platform, http):
    from tests.support.platform import CANVAS_ROLES

    advantage_platform.reset()
    with app.app_context():
        reg = advantage_platform.register_in(db)
        reg.auth_token_url = advantage_platform.base + "/broken"
        db.session.commit()
    resp, _, _ = advantage_platform.launch(http, live_server, roles=CANVAS_ROLES["teacher"], sub="boss",
                                           context_id="course-1", claims=_nrps(advantage_platform))
    assert resp.status_code == 303
    page = http.get(live_server + resp.headers["Location"])
    assert page.status_code == 200
    assert "The course roster could not be updated" in page.text
    with app.app_context():
        course = db.session.scalars(select(Course)).one()
        assert "access token" in course.roster_error
        assert len(db.session.scalars(select(Membership)).all()) == 1


def test_workflow_sends_scores_on_request_sign_off_and_revocation(adv):
    """The gradebook follows the review workflow: Submitted/PendingManual on request, Completed/FullyGraded with
    the rating and signer on sign-off, back to Pending on revocation, all delivered to the platform in order."""
    from lti_tool.services import reviews
    from tests.conftest import Factory
    from tests.support.competency_world import World

    platform, course = adv
    world = World(Factory(), registration=db.session.get(Registration, course.registration_id))
    lineitem = platform.add_lineitem("Garbing", maximum=4)
    db.session.add(ResourceLink(course_id=world.course.id, resource_link_id="rl-garb", title="Garbing",
                                target={"type": "competency", "id": world.garb.id}, lineitem_url=lineitem))
    db.session.flush()
    request = world.submitted()[0]
    sign_off = reviews.sign_off(world.manager, request.id, "competent", "observed", [], comment="Well done")
    reviews.revoke(world.manager, sign_off.id, "Wrong technician selected")
    db.session.commit()
    rows = db.session.scalars(select(ScoreOutbox).order_by(ScoreOutbox.id)).all()
    assert [(r.payload["activityProgress"], r.payload["gradingProgress"]) for r in rows] == [
        ("Submitted", "PendingManual"), ("Completed", "FullyGraded"), ("InProgress", "Pending")]
    assert grades.deliver_due()["sent"] == 3
    sent = platform.scores["1"]
    assert sent[1]["scoreGiven"] == 3 and sent[1]["scoreMaximum"] == 4
    assert world.manager.person.display_name in sent[1]["comment"] and "Competent" in sent[1]["comment"]
    assert "due for revalidation by" in sent[1]["comment"], "the garbing competency revalidates every 6 months"
    assert sent[2]["comment"] == "Sign-off revoked: Wrong technician selected"
    assert all(s["userId"] == world.tech.person.sub for s in sent)
    assert sent[0]["timestamp"] < sent[1]["timestamp"] < sent[2]["timestamp"]


def test_competencies_without_a_graded_link_send_nothing(adv):
    from tests.conftest import Factory
    from tests.support.competency_world import World

    _, course = adv
    world = World(Factory(), registration=db.session.get(Registration, course.registration_id))
    world.submitted()
    assert db.session.scalars(select(ScoreOutbox)).all() == []


def test_expiry_is_noted_once_and_sends_the_column_back_to_pending(adv):
    from datetime import timedelta

    from lti_tool.models import AuditEntry
    from tests.conftest import Factory
    from tests.support.competency_world import T0, World

    platform, course = adv
    world = World(Factory(), registration=db.session.get(Registration, course.registration_id))
    db.session.add(ResourceLink(course_id=world.course.id, resource_link_id="rl-garb", title="Garbing",
                                target={"type": "competency", "id": world.garb.id},
                                lineitem_url=platform.add_lineitem()))
    db.session.flush()
    sign_off = world.signed(now=T0)  # garbing revalidates every 6 months
    renewed_ok = world.signed(competency=world.audit_comp, now=T0)  # 12 months; renewed below
    world.signed(competency=world.audit_comp, now=T0 + timedelta(days=300))
    db.session.commit()
    before = db.session.scalar(select(func.count()).select_from(ScoreOutbox))
    assert grades.queue_expiries(now=T0 + timedelta(days=200)) == 1
    assert grades.queue_expiries(now=T0 + timedelta(days=200)) == 0, "noted once"
    assert grades.queue_expiries(now=T0 + timedelta(days=400)) == 1, "the renewed one expires later, renewed"
    notes = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "sign_off.expired")
                               .order_by(AuditEntry.id)).all()
    assert [(n.entity_id, n.after["renewed"]) for n in notes] == [(sign_off.id, False), (renewed_ok.id, True)]
    new_rows = db.session.scalars(select(ScoreOutbox).order_by(ScoreOutbox.id).offset(before)).all()
    assert len(new_rows) == 1 and new_rows[0].payload["gradingProgress"] == "Pending"
    assert "revalidation is due" in new_rows[0].payload["comment"]


def test_cli_sync_roster_and_deliver_scores(app, adv):
    platform, course = adv
    platform.member("m-1")
    platform.member("m-2")
    person = _technician(course, sub="cli-tech")
    link = _link(course, platform.add_lineitem())
    grades.queue_score(course, person, link, activity="Submitted", grading="PendingManual")
    db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["lti", "sync-roster", "--course-id", str(course.id)])
    assert result.exit_code == 0, result.output
    assert "2 added, 0 updated, 1 marked inactive (1 pages)" in result.output
    result = runner.invoke(args=["lti", "deliver-scores"])
    assert result.exit_code == 0 and "sent 1" in result.output
    assert len(platform.scores["1"]) == 1
    result = runner.invoke(args=["lti", "worker", "--once"])
    assert result.exit_code == 0 and "Periodic jobs done." in result.output, result.output


def test_cli_sync_roster_reports_failures(app, adv):
    platform, course = adv
    reg = db.session.get(Registration, course.registration_id)
    reg.auth_token_url = platform.base + "/broken"
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["lti", "sync-roster"])
    assert result.exit_code == 1
    assert "could not be read from the LMS" in result.output
    assert "1 course(s) could not be synchronised" in result.output
