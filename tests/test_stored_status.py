"""The stored status (models/status.py, services/status_store.py): equal to the status judged from the history
for random histories, kept by every workflow step in the same transaction, rebuilt by a command, and what the
matrix filters query."""
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from lti_tool.extensions import db
from lti_tool.models import Evidence, EvidenceCompetency, Requirement, ReviewRequest, SignOff, StoredStatus
from lti_tool.models.evidence import DRAFT, RETURNED
from lti_tool.models.reviews import OPEN
from lti_tool.services import matrix, requirement_edits, reviews, status, status_store
from tests.support.competency_world import World, count_queries

DAY = timedelta(days=1)
FIELDS = ("status", "sign_off_id", "achieved_at", "expires_at", "signer_name", "signer_role", "awaiting_review",
          "in_progress", "last_sign_off_id", "revoked", "corrected", "required_by", "requirement_id")
FLAGS = ("overdue", "required_due")  # the clock's part of a requirement, compared beside the stored fields


@pytest.fixture
def world(make):
    return World(make)


def _comparable(entry):
    return tuple(getattr(entry, name) for name in FIELDS + FLAGS)


def _stored_rows():
    return {(r.person_id, r.competency_id): tuple(getattr(r, c) for c in ("state", *FIELDS[1:]))
            for r in db.session.execute(select(*StoredStatus.__table__.c))}


# --- The property: stored == judged from the history, for random histories ----------------------------------

ACTIONS = ("draft", "request", "sign", "sign_low", "return", "withdraw", "revoke", "correct", "relink", "require",
           "retire", "department")
DEPARTMENTS = ("iv_room", "central", "")
_worlds: dict = {}


def _apply(w, tech, action, pick: int, comp_pick: int, at):
    """One workflow step, chosen only where it is allowed (so a refusal would be a bug, not noise)."""
    comps = [w.garb, w.cart, w.audit_comp]
    person = tech.person.id
    if action == "require":
        # A requirement due some days before or after `at` (fixed, or counted from the assignment), for
        # everyone, the person's department, or the person by name.
        audience = ("everyone", "department", "people")[pick % 3]
        due = {"due_kind": "date", "due_on": (at.date() + (comp_pick - 2) * 20 * DAY).isoformat()} if pick % 2 \
            else {"due_kind": "days", "due_days": str(comp_pick * 30)}
        requirement_edits.create(w.manager, w.course.id, {
            "name": f"Requirement {pick}", "competency_ids": [comps[comp_pick % 3].id], "audience": audience,
            "audience_department": DEPARTMENTS[comp_pick % 2], "person_ids": [person], **due})
        return
    if action == "retire":
        active = db.session.scalars(select(Requirement.id).where(Requirement.course_id == w.course.id,
                                                                 Requirement.active.is_(True))
                                    .order_by(Requirement.id)).all()
        if active:
            requirement_edits.retire(w.manager, active[pick % len(active)])
        return
    if action == "department":
        requirement_edits.set_attributes(w.manager, w.course.id, [person],
                                         {"department": DEPARTMENTS[pick % 3],
                                          "assigned_on": (at.date() - comp_pick * DAY).isoformat()})
        return
    if action == "draft":
        chosen = [comps[comp_pick % 3]] + ([comps[(comp_pick + 1) % 3]] if comp_pick % 2 else [])
        w.evidence(tech, chosen, created_at=at - DAY)
        return
    if action == "relink":
        items = db.session.scalars(select(Evidence).where(Evidence.person_id == person,
                                                          Evidence.status.in_((DRAFT, RETURNED)))
                                   .order_by(Evidence.id)).all()
        if items:
            item = items[pick % len(items)]
            item.competency_links = [EvidenceCompetency(competency_id=comps[comp_pick % 3].id)]
            item.revision += 1
            db.session.flush()
        return
    if action == "request":
        items = db.session.scalars(select(Evidence).where(Evidence.person_id == person,
                                                          Evidence.status.in_((DRAFT, RETURNED)))
                                   .order_by(Evidence.id)).all()
        items = [i for i in items if i.competency_links]
        if items:
            reviews.request_review(tech, items[pick % len(items)].id, now=at)
        return
    if action in ("sign", "sign_low", "return", "withdraw"):
        open_rows = db.session.scalars(select(ReviewRequest).where(ReviewRequest.person_id == person,
                                                                   ReviewRequest.status == OPEN)
                                       .order_by(ReviewRequest.id)).all()
        open_rows = [r for r in open_rows if r.evidence.revision == r.evidence_revision]
        if not open_rows:
            return
        row = open_rows[pick % len(open_rows)]
        if action == "sign":
            reviews.sign_off(w.manager, row.id, "competent", "observed", now=at)
        elif action == "sign_low":
            reviews.sign_off(w.manager, row.id, "supervised", "observed", now=at)
        elif action == "return":
            reviews.return_for_revision(w.manager, row.id, "Please add detail.", now=at)
        else:
            reviews.withdraw_request(tech, row.id, now=at)
        return
    corrected = select(SignOff.corrects_id).where(SignOff.corrects_id.is_not(None))
    standing = db.session.scalars(select(SignOff).where(SignOff.person_id == person,
                                                        SignOff.id.not_in(corrected))
                                  .order_by(SignOff.id)).all()
    standing = [s for s in standing if s.revocation is None]
    if not standing:
        return
    target = standing[pick % len(standing)]
    if action == "revoke":
        reviews.revoke(w.manager, target.id, "Assessed the wrong person.", now=at)
    else:
        rating = "not_yet" if target.proficient else "trainer"
        reviews.correct(w.manager, target.id, "The rating was recorded wrongly.", rating=rating, now=at)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 7), st.integers(0, 5),
                                st.integers(1, 120)), min_size=1, max_size=14))
def test_the_stored_status_equals_the_status_judged_from_the_history(world, make, steps):
    tech = make.actor(world.course, "technician")  # a fresh technician for each example
    at = status.now_utc() - 500 * DAY
    for action, pick, comp_pick, days in steps:
        at += days * DAY
        _apply(world, tech, action, pick, comp_pick, min(at, status.now_utc() - DAY))
    comps = [c.id for c in (world.garb, world.cart, world.audit_comp)]
    now = status.now_utc()
    stored = status.compute(world.reg, [tech.person.id], comps)[tech.person.id]
    judged = status.compute(world.reg, [tech.person.id], comps, as_of=now)[tech.person.id]
    assert {c: _comparable(e) for c, e in stored.items()} == {c: _comparable(e) for c, e in judged.items()}, steps
    before = _stored_rows()
    status_store.rebuild()
    assert _stored_rows() == before  # the rebuild writes what the transactions kept


# --- Revocation, correction, the workflow keeps the rows -----------------------------------------------------

def test_a_revoked_sign_off_reads_needs_reassessment_not_not_started(world):
    now = status.now_utc()
    signed = world.signed(world.cart, now=now - 10 * DAY)
    held = status.statuses_for(world.tech.person, world.course)[world.cart.id]
    assert held.status == status.ACHIEVED and (held.signer_name, held.signer_role) == (
        world.manager.person.display_name, "manager")
    reviews.revoke(world.manager, signed.id, "Signed for the wrong technician.", now=now - DAY)
    entry = status.statuses_for(world.tech.person, world.course)[world.cart.id]
    assert (entry.status, entry.label, entry.held) == (status.NEEDS_REASSESSMENT, "Needs re-assessment", False)
    assert entry.revoked and entry.last_sign_off_id == signed.id and entry.sign_off_id is None
    row = db.session.get(StoredStatus, (world.tech.person.id, world.cart.id), populate_existing=True)
    assert (row.state, row.revoked, row.last_sign_off_id) == (status.NEEDS_REASSESSMENT, True, signed.id)
    page = matrix.team_matrix(world.manager, world.course.id, matrix.MatrixFilters(status="needs_reassessment"))
    assert [r.person.id for r in page.rows] == [world.tech.person.id] and page.rows[0].matches == {world.cart.id}
    # A new request: awaiting review (the revocation still flagged); a new sign-off: held again.
    (again,) = world.submitted(world.tech, [world.cart], now=now - DAY / 2)
    assert status.statuses_for(world.tech.person, world.course)[world.cart.id].status == status.AWAITING_REVIEW
    renewed = reviews.sign_off(world.manager, again.id, "competent", "observed", now=now - DAY / 4)
    final = status.statuses_for(world.tech.person, world.course)[world.cart.id]
    assert (final.status, final.sign_off_id, final.revoked) == (status.ACHIEVED, renewed.id, False)


def test_every_workflow_step_rewrites_the_row_in_its_transaction(world):
    now = status.now_utc()
    key = (world.tech.person.id, world.garb.id)

    def state():
        row = db.session.get(StoredStatus, key, populate_existing=True)
        return row.state if row is not None else None

    ev = world.evidence(world.tech, [world.garb])
    assert state() == status.IN_PROGRESS
    (req,) = reviews.request_review(world.tech, ev.id, now=now - 5 * DAY)
    assert state() == status.AWAITING_REVIEW
    reviews.withdraw_request(world.tech, req.id, now=now - 4 * DAY)
    assert state() == status.IN_PROGRESS  # back to a draft
    (req,) = reviews.request_review(world.tech, ev.id, now=now - 3 * DAY)
    reviews.return_for_revision(world.manager, req.id, "Add the fingertip result.", now=now - 3 * DAY)
    assert state() == status.IN_PROGRESS
    ev.competency_links = []  # unlinking leaves nothing for this pair
    db.session.flush()
    assert state() is None
    assert status.statuses_for(world.tech.person, world.course)[world.garb.id].status == status.NOT_STARTED


def test_the_rebuild_command_restores_a_lost_table(app, world):
    now = status.now_utc()
    world.signed(world.garb, now=now - 200 * DAY)  # expired (6 months)
    world.submitted(world.tech2, [world.cart], now=now - DAY)
    db.session.commit()
    kept = _stored_rows()
    assert len(kept) == 2
    db.session.execute(delete(StoredStatus))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["status", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "2 status rows" in result.output
    db.session.expire_all()
    assert _stored_rows() == kept
    one = app.test_cli_runner().invoke(args=["status", "rebuild", "--course", str(world.course.id)])
    assert one.exit_code == 0 and "2 status rows" in one.output
    missing = app.test_cli_runner().invoke(args=["status", "rebuild", "--course", "999999"])
    assert missing.exit_code != 0 and "No course 999999" in missing.output


# --- The matrix on the stored table ---------------------------------------------------------------------------

def _team_around_now(world, make):
    """Technicians in every status today: expired, due, expiring in 40/80 days, awaiting, in progress,
    revoked, corrected down, never-expiring achieved, nothing."""
    now = status.now_utc()
    techs = [world.tech, world.tech2] + [make.actor(world.course, "technician") for _ in range(7)]
    world.signed(world.garb, actor=techs[0], now=now - 200 * DAY)  # expired
    world.signed(world.garb, actor=techs[1], now=now - 170 * DAY)  # due (~14 days left)
    world.signed(world.garb, actor=techs[2], now=now - 140 * DAY)  # ~40 days left
    world.signed(world.audit_comp, actor=techs[3], now=now - 290 * DAY)  # ~75 days left
    world.submitted(techs[4], [world.cart], now=now - DAY)  # awaiting
    world.evidence(techs[5], [world.cart])  # in progress
    gone = world.signed(world.cart, actor=techs[6], now=now - 20 * DAY)
    reviews.revoke(world.manager, gone.id, "Wrong person.", now=now - 2 * DAY)
    low = world.signed(world.audit_comp, actor=techs[7], now=now - 20 * DAY)
    reviews.correct(world.manager, low.id, "Not yet.", rating="not_yet", now=now - 2 * DAY)
    world.signed(world.cart, actor=techs[8], now=now - 20 * DAY)  # achieved, never expires
    return techs


@pytest.mark.parametrize("filters", [
    {"status": code} for code in status.STATUSES] + [{"expiring_days": d} for d in matrix.EXPIRING_CHOICES] + [
    {"status": "due_for_revalidation", "expiring_days": 30}, {"status": "not_started", "department": "central"},
    {"status": "expired", "department": "central"}])
def test_matrix_filters_on_the_stored_table_match_the_history(world, make, filters):
    _team_around_now(world, make)
    wanted = matrix.MatrixFilters(**filters)
    stored = matrix.team_matrix(world.manager, world.course.id, wanted)
    judged = matrix.team_matrix(world.manager, world.course.id, wanted, as_of=status.now_utc())
    assert [(r.person.id, sorted(r.matches)) for r in stored.rows] == [
        (r.person.id, sorted(r.matches)) for r in judged.rows]
    assert [[c.status for c in r.cells] for r in stored.rows] == [[c.status for c in r.cells] for r in judged.rows]
    assert stored.total == judged.total


def test_matrix_filters_pick_the_expected_technicians(world, make):
    techs = _team_around_now(world, make)
    ids = [t.person.id for t in techs]

    def who(**filters):
        page = matrix.team_matrix(world.manager, world.course.id, matrix.MatrixFilters(**filters))
        return {ids.index(r.person.id) for r in page.rows}

    assert who(status="expired") == {0}
    assert who(status="due_for_revalidation") == {1}
    assert who(expiring_days=30) == {1}
    assert who(expiring_days=60) == {1, 2}
    assert who(expiring_days=90) == {1, 2, 3}
    assert who(status="awaiting_review") == {4}
    assert who(status="in_progress") == {5}
    assert who(status="needs_reassessment") == {6, 7}
    assert who(status="achieved") == {2, 3, 8}
    assert who(status="not_started") == set(range(9))  # everyone has a column they have not started


def test_keyset_pages_follow_the_names_without_gaps(world, make):
    for i in range(7):
        make.member(world.course, make.person(world.reg, name=f"Tech {i}", family_name=f"Zz{i:02d}"))
    first = matrix.team_matrix(world.manager, world.course.id, matrix.MatrixFilters(per_page=4))
    seen = [r.person.id for r in first.rows]
    page, after = first, first.next_after
    while after is not None:
        page = matrix.team_matrix(world.manager, world.course.id, matrix.MatrixFilters(per_page=4, after=after))
        seen += [r.person.id for r in page.rows]
        after = page.next_after
    assert (page.page, page.pages, page.first, page.last) == (3, 3, 9, 9)
    everyone = matrix.team_matrix(world.manager, world.course.id, matrix.MatrixFilters(per_page=50))
    assert seen == [r.person.id for r in everyone.rows] and len(seen) == 9
    # A person of another course as the keyset: ignored (the first page), nothing of them shown.
    stranger = make.actor(make.course(world.reg), "technician")
    odd = matrix.team_matrix(world.manager, world.course.id, matrix.MatrixFilters(per_page=4,
                                                                                 after=stranger.person.id))
    assert [r.person.id for r in odd.rows] == [r.person.id for r in first.rows]


def _grow(world, make, n):
    now = status.now_utc()
    for i in range(n):
        actor = make.actor(world.course, "technician")
        if i % 3 == 0:
            world.signed(world.garb, actor=actor, now=now - 170 * DAY)
        elif i % 3 == 1:
            world.submitted(actor, [world.cart], now=now - DAY)
        else:
            world.evidence(actor, [world.audit_comp])


FILTER_SHAPES = [{}, {"status": "expired"}, {"status": "not_started"}, {"expiring_days": 30},
                 {"status": "awaiting_review", "department": "central"}]


def test_matrix_queries_stay_flat_whatever_the_team_size(world, make):
    def counts():
        out = []
        for filters in FILTER_SHAPES:
            db.session.expire_all()
            with count_queries() as n:
                page = matrix.team_matrix(world.manager, world.course.id, matrix.MatrixFilters(**filters))
                for row in page.rows:  # everything the template reads
                    _ = [row.person.display_name, row.never_launched, row.held, [c.label for c in row.cells]]
            out.append(n[0])
        return out, page.total

    _grow(world, make, 6)
    small, small_total = counts()
    _grow(world, make, 60)  # more than a page of 50
    large, large_total = counts()
    assert small == large and large_total > small_total
    assert max(large) <= 8


def test_the_stored_status_is_read_in_one_query(world, make):
    _grow(world, make, 12)
    people = [m.person.id for m in [world.tech, world.tech2]]
    comps = [world.garb.id, world.cart.id, world.audit_comp.id]
    db.session.flush()
    with count_queries() as n:
        status.compute(world.reg, people, comps)
    assert n[0] == 1
    assert db.session.scalar(select(func.count()).select_from(StoredStatus)) == 12


def test_queue_keyset_pages_are_oldest_first_without_gaps(world, make):
    now = status.now_utc()
    made = []
    for i in range(5):
        actor = make.actor(world.course, "technician")
        made += world.submitted(actor, [world.cart], now=now - (10 - i % 3) * DAY)  # equal times: ids break ties
    assert reviews.review_queue(world.manager, world.course.id, count=True) == 5
    seen, after = [], None
    while True:
        page = reviews.review_queue(world.manager, world.course.id, limit=2, after=after)
        if not page:
            break
        seen += [r.id for r in page]
        after = page[-1].id
    everything = reviews.review_queue(world.manager, world.course.id)
    assert seen == [r.id for r in everything] and sorted(seen) == sorted(r.id for r in made)
    assert [(r.requested_at, r.id) for r in everything] == sorted((r.requested_at, r.id) for r in everything)


def test_the_migration_fills_the_table_as_the_workflow_keeps_it(world, make):
    """Migration 0004's fill, run on the history the tests made: the rows the workflow kept, exactly."""
    import importlib.util
    from pathlib import Path

    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    techs = _team_around_now(world, make)
    kept = _stored_rows()
    assert len(kept) >= len(techs)
    db.session.execute(delete(StoredStatus))
    path = Path(__file__).resolve().parent.parent / "migrations" / "versions" / "0004_stored_status.py"
    spec = importlib.util.spec_from_file_location("migration_0004", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with Operations.context(MigrationContext.configure(db.session.connection())):
        migration._fill()
    assert _stored_rows() == kept
