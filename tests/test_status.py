"""Competency status per technician, every transition with time moved forward, tenant settings, and the query
count of the status computation."""
from datetime import UTC, datetime, timedelta

import pytest

from lti_tool.extensions import db
from lti_tool.models import Competency, CourseFramework
from lti_tool.services import DomainError, Forbidden, NotFound, reviews, settings, status
from tests.support.competency_world import T0, World, audit_rows, count_queries, make_framework

DAY = timedelta(days=1)
SIGNED = T0 + 3 * DAY
EXPIRES = datetime(2025, 7, 18, 9, 0, tzinfo=UTC)  # SIGNED + 6 months (IV-GARB)


@pytest.fixture
def world(make):
    return World(make)


def state(world, as_of, competency=None, person=None):
    person = person or world.tech.person
    return status.statuses_for(person, world.course, as_of=as_of)[(competency or world.garb).id]


def test_every_transition_through_the_workflow_and_time(world):
    assert state(world, T0).status == "not_started"

    ev = world.evidence(world.tech, [world.garb])  # created T0 - 30 days
    assert state(world, T0).status == "in_progress"
    assert state(world, T0 - 31 * DAY).status == "not_started"

    [request] = reviews.request_review(world.tech, ev.id, now=T0)
    waiting = state(world, T0 + DAY / 2)
    assert waiting.status == "awaiting_review" and waiting.open_request_ids == (request.id,)

    reviews.return_for_revision(world.manager, request.id, "Add the fingertip result.", now=T0 + DAY)
    assert state(world, T0 + DAY).status == "in_progress"
    assert state(world, T0 + DAY / 2).status == "awaiting_review"  # it was open then
    ev.revision = 2
    [again] = reviews.request_review(world.tech, ev.id, now=T0 + 2 * DAY)
    assert state(world, T0 + 2 * DAY).status == "awaiting_review"

    so = reviews.sign_off(world.manager, again.id, "competent", "observed", now=SIGNED)
    assert so.expires_at == EXPIRES
    achieved = state(world, SIGNED)
    assert achieved.status == "achieved" and achieved.held and achieved.sign_off_id == so.id
    assert (achieved.achieved_at, achieved.expires_at) == (SIGNED, EXPIRES)
    assert not achieved.awaiting_review and not achieved.in_progress
    assert state(world, SIGNED - timedelta(seconds=1)).status == "awaiting_review"  # not signed yet then
    assert state(world, T0 - DAY).status == "in_progress"  # drafted, not yet submitted

    # Default warning window: 30 days.
    assert state(world, EXPIRES - timedelta(days=30, seconds=1)).status == "achieved"
    assert state(world, EXPIRES - timedelta(days=30)).status == "due_for_revalidation"
    assert state(world, EXPIRES - timedelta(seconds=1)).status == "due_for_revalidation"
    expired = state(world, EXPIRES)
    assert expired.status == "expired" and not expired.held and expired.sign_off_id == so.id

    # Renewal: new evidence is awaiting review while expired -> still expired, flagged.
    renewal = world.submitted(now=EXPIRES + DAY)[0]
    pending = state(world, EXPIRES + 2 * DAY)
    assert pending.status == "expired" and pending.awaiting_review
    renewed_at = EXPIRES + 10 * DAY
    new = reviews.sign_off(world.manager, renewal.id, "trainer", "observed", now=renewed_at)
    after = state(world, renewed_at)
    assert after.status == "achieved" and after.sign_off_id == new.id
    assert after.expires_at == datetime(2026, 1, 28, 9, 0, tzinfo=UTC)
    assert state(world, EXPIRES + 5 * DAY).status == "expired"  # the past is unchanged


def test_renewal_while_due_moves_the_expiry(world):
    world.signed(now=SIGNED)
    assert state(world, EXPIRES - 10 * DAY).status == "due_for_revalidation"
    renewed = world.signed(now=EXPIRES - 10 * DAY)
    now = EXPIRES - 9 * DAY
    entry = state(world, now)
    assert entry.status == "achieved" and entry.sign_off_id == renewed.id and entry.expires_at > EXPIRES
    assert state(world, EXPIRES + DAY).status == "achieved"


def test_warning_window_is_a_tenant_setting(world, make):
    world.signed(now=SIGNED)
    assert state(world, EXPIRES - 20 * DAY).status == "due_for_revalidation"
    with pytest.raises(Forbidden):
        settings.update(world.manager, {"revalidation_warning_days": 10})
    admin_person = make.person(world.reg, is_admin=True)
    from lti_tool.services.actors import Actor

    admin = Actor(person=admin_person)
    with pytest.raises(DomainError) as exc:
        settings.update(admin, {"revalidation_warning_days": -1, "colour": "blue"})
    assert set(exc.value.fields) == {"revalidation_warning_days", "colour"}
    with pytest.raises(DomainError):
        settings.update(admin, {"revalidation_warning_days": True})

    saved = settings.update(admin, {"revalidation_warning_days": 10})
    assert saved["revalidation_warning_days"] == 10 and saved["time_zone"] == "America/New_York"
    assert saved["organization_name"] is None
    [entry] = audit_rows("settings.update")
    assert entry.before == {} and entry.after == {"revalidation_warning_days": 10}
    assert entry.actor_id == admin_person.id and entry.actor_role == "admin"
    assert state(world, EXPIRES - 20 * DAY).status == "achieved"
    assert state(world, EXPIRES - 10 * DAY).status == "due_for_revalidation"
    # Another tenant keeps the default.
    assert settings.get(make.registration(), "revalidation_warning_days") == 30
    assert settings.get(None, "revalidation_warning_days") == 30


def test_revoked_sign_offs_do_not_count_from_the_revocation(world):
    so = world.signed(now=T0)
    reviews.revoke(world.manager, so.id, "Wrong person", now=T0 + 5 * DAY)
    assert state(world, T0 + 4 * DAY).status == "achieved"
    revoked = state(world, T0 + 5 * DAY)
    # Never "not started" and never held: the record says a sign-off stood and was withdrawn.
    assert revoked.status == "needs_reassessment" and revoked.label == "Needs re-assessment"
    assert revoked.revoked and revoked.last_sign_off_id == so.id and not revoked.held
    now = status.statuses_for(world.tech.person, world.course)[world.garb.id]  # the stored status
    assert (now.status, now.revoked, now.last_sign_off_id) == ("needs_reassessment", True, so.id)


def test_a_non_proficient_rating_does_not_achieve(world):
    world.signed(rating="supervised", now=T0)
    entry = state(world, T0 + DAY)
    assert entry.status == "in_progress" and entry.in_progress and entry.expires_at is None


def test_corrections_supersede_from_when_they_are_made(world):
    so = world.signed(now=T0)
    reviews.correct(world.manager, so.id, "Not proficient yet", rating="not_yet", now=T0 + 3 * DAY)
    assert state(world, T0 + 2 * DAY).status == "achieved"
    corrected = state(world, T0 + 3 * DAY)
    assert corrected.status == "needs_reassessment" and corrected.corrected and corrected.in_progress

    low = world.signed(competency=world.audit_comp, rating="supervised", now=T0)
    fixed = reviews.correct(world.manager, low.id, "Was competent", rating="competent", now=T0 + DAY)
    entry = state(world, T0 + 2 * DAY, world.audit_comp)
    assert entry.status == "achieved" and entry.sign_off_id == fixed.id
    assert entry.expires_at == datetime(2026, 1, 15, 9, 0, tzinfo=UTC)  # 12 months from the assessment


def test_competency_without_revalidation_never_expires(world):
    world.signed(competency=world.cart, now=T0)
    assert state(world, T0 + timedelta(days=3650), world.cart).status == "achieved"


def test_an_older_longer_valid_sign_off_is_not_shadowed(world):
    world.signed(competency=world.audit_comp, now=T0)
    world.signed(competency=world.audit_comp, rating="supervised", now=T0 + DAY)
    entry = state(world, T0 + 2 * DAY, world.audit_comp)
    assert entry.status == "achieved" and entry.in_progress  # the later weaker rating is a flag, not a loss


def test_status_counts_sign_offs_from_any_course_of_the_tenant(world, make):
    other = make.course(world.reg)
    db.session.add(CourseFramework(course_id=other.id, framework_id=world.framework.id))
    make.member(other, world.tech.person, "technician")
    world.signed(now=T0)
    assert status.statuses_for(world.tech.person, other, as_of=T0 + DAY)[world.garb.id].status == "achieved"
    foreign = World(make)
    with pytest.raises(NotFound):
        status.statuses_for(world.tech.person, foreign.course)


def test_add_months_clamps_to_the_end_of_the_month():
    assert status.add_months(datetime(2024, 1, 31, tzinfo=UTC), 1) == datetime(2024, 2, 29, tzinfo=UTC)
    assert status.add_months(datetime(2025, 1, 31, tzinfo=UTC), 1) == datetime(2025, 2, 28, tzinfo=UTC)
    assert status.add_months(datetime(2025, 11, 30, tzinfo=UTC), 3) == datetime(2026, 2, 28, tzinfo=UTC)
    assert status.add_months(datetime(2025, 6, 15, tzinfo=UTC), 12) == datetime(2026, 6, 15, tzinfo=UTC)


def test_naive_datetimes_are_refused(world):
    with pytest.raises(ValueError):
        status.statuses_for(world.tech.person, world.course, as_of=datetime(2025, 1, 1))


# --- Team view and access ---------------------------------------------------------------------------------

def test_team_statuses_access(world, make):
    world.signed(now=T0)
    team = status.team_statuses(world.manager, world.course, as_of=T0 + DAY)
    assert set(team) == {world.tech.person.id, world.tech2.person.id}
    assert team[world.tech.person.id][world.garb.id].status == "achieved"
    assert team[world.tech2.person.id][world.garb.id].status == "not_started"
    assert status.summary(team[world.tech.person.id])["achieved"] == 1

    mine = status.team_statuses(world.tech, world.course.id, [world.tech.person.id], as_of=T0 + DAY)
    assert mine[world.tech.person.id][world.garb.id].status == "achieved"
    with pytest.raises(Forbidden):
        status.team_statuses(world.tech, world.course, [world.tech2.person.id])
    with pytest.raises(Forbidden):
        status.team_statuses(world.tech, world.course)
    with pytest.raises(NotFound):
        status.team_statuses(make.actor(make.course(world.reg), "manager"), world.course)
    with pytest.raises(NotFound):
        status.team_statuses(world.manager, world.course, [make.person(world.reg).id])
    other = World(make)
    with pytest.raises(NotFound):
        status.team_statuses(other.manager, world.course)
    with pytest.raises(NotFound):
        status.team_statuses(world.manager, world.course, [other.tech.person.id])
    only = status.team_statuses(world.manager, world.course, competency_ids=[world.cart.id])
    assert {c for per in only.values() for c in per} == {world.cart.id}


def _grow(world, make, people: int, competencies: int, tag: str):
    """Add technicians with evidence in every state, and competencies, to the course."""
    extra = []
    for n in range(competencies):
        row = Competency(framework_id=world.framework.id, code=f"EXTRA-{tag}-{n}", title=f"Extra {n}",
                         revalidation_months=12, position=10 + n)
        db.session.add(row)
        extra.append(row)
    db.session.flush()
    techs = [make.actor(world.course, "technician") for _ in range(people)]
    for i, tech in enumerate(techs):
        for j, comp in enumerate(extra):
            kind = (i + j) % 4
            if kind == 0:
                world.signed(competency=comp, actor=tech, now=T0)
            elif kind == 1:
                world.submitted(actor=tech, competencies=[comp])
            elif kind == 2:
                world.evidence(tech, [comp])
    return techs, extra


def test_status_query_count_does_not_grow_with_people_or_competencies(world, make):
    world.signed(now=T0)
    _grow(world, make, 1, 1, "a")
    db.session.expire_all()
    with count_queries() as small_team:
        small = status.team_statuses(world.manager, world.course.id, as_of=T0 + DAY)
    with count_queries() as one_small:
        status.statuses_for(world.tech.person, world.course, as_of=T0 + DAY)

    _grow(world, make, 8, 15, "b")
    db.session.expire_all()
    with count_queries() as big_team:
        big = status.team_statuses(world.manager, world.course.id, as_of=T0 + DAY)
    with count_queries() as one_big:
        status.statuses_for(world.tech.person, world.course, as_of=T0 + DAY)

    assert sum(len(v) for v in small.values()) < sum(len(v) for v in big.values())
    assert len(big) == 11 and all(len(v) == 19 for v in big.values())
    assert {e.status for v in big.values() for e in v.values()} >= {"achieved", "awaiting_review",
                                                                     "in_progress", "not_started"}
    assert big_team[0] == small_team[0]
    assert one_big[0] == one_small[0]
    assert big_team[0] <= 10  # the history's four queries (the fourth: requirements in effect) and the lookups


def test_frameworks_of_other_tenants_are_never_counted(world, make):
    other_reg = make.registration()
    framework, (foreign,) = make_framework(other_reg, code="foreign", competencies=[{"code": "F", "title": "F"}])
    db.session.add(CourseFramework(course_id=world.course.id, framework_id=framework.id))
    db.session.flush()
    assert foreign.id not in status.statuses_for(world.tech.person, world.course)


def test_statuses_made_without_the_constructor_equal_the_constructors():
    # status._made skips the frozen dataclass's __init__ (pages build thousands): the object must be the same,
    # with every default, and replacing fields must leave the original untouched.
    signed = datetime(2026, 3, 1, tzinfo=UTC)
    values = {"competency_id": 7, "status": status.ACHIEVED, "sign_off_id": 3, "achieved_at": signed,
              "expires_at": signed + 180 * DAY, "signer_name": "Pat", "signer_role": "Pharmacist"}
    built, made = status.CompetencyStatus(**values), status._made(values)
    assert made == built and hash(made) == hash(built) and vars(made) == vars(built)
    assert made.open_request_ids == () and made.overdue is False and made.label == built.label
    later = status._made({"status": status.EXPIRED, "overdue": True}, made)
    assert later == status.CompetencyStatus(**{**values, "status": status.EXPIRED, "overdue": True})
    assert made.status == status.ACHIEVED and not made.overdue
    with pytest.raises(AttributeError):
        made.status = status.EXPIRED  # still frozen
    moved = status.at(made, signed + 179 * DAY, timedelta(days=30))
    assert moved.status == status.DUE_FOR_REVALIDATION and vars(moved).keys() == vars(built).keys()
