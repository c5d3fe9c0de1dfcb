"""The review workflow: request, sign off, return and resubmit, withdraw, bulk sign-off, preceptors, queue."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from lti_tool.extensions import db
from lti_tool.models import ReviewRequest, SignOff
from lti_tool.services import DomainError, Forbidden, NotFound, review_queue, reviews
from tests.support.competency_world import GARB_STEPS, T0, World, audit_rows, count_queries


@pytest.fixture
def world(make):
    return World(make)


def sign_off_count():
    return db.session.scalar(select(func.count()).select_from(SignOff))


# --- Requesting review ------------------------------------------------------------------------------------

def test_request_review_opens_one_request_per_competency_and_freezes_the_evidence(world):
    ev = world.evidence(world.tech, [world.garb, world.audit_comp])
    ev.revision = 3
    requests = reviews.request_review(world.tech, ev.id, now=T0)

    assert sorted(r.competency_id for r in requests) == sorted([world.garb.id, world.audit_comp.id])
    assert {r.status for r in requests} == {"open"}
    assert {r.evidence_revision for r in requests} == {3}
    assert {r.course_id for r in requests} == {world.course.id}
    assert {r.person_id for r in requests} == {world.tech.person.id}
    assert ev.status == "submitted" and ev.submitted_at == T0

    submit = audit_rows("evidence.submit", ev)
    assert len(submit) == 1
    assert submit[0].before == {"status": "draft"} and submit[0].after == {"status": "submitted", "revision": 3}
    assert submit[0].actor_id == world.tech.person.id and submit[0].course_id == world.course.id
    created = audit_rows("review_request.create")
    assert sorted(a.entity_id for a in created) == sorted(r.id for r in requests)
    assert all(a.after["status"] == "open" and a.before is None for a in created)


def test_request_review_refusals(world, make):
    mine = world.evidence(world.tech, [world.garb])
    with pytest.raises(Forbidden) as exc:
        reviews.request_review(world.manager, mine.id)
    assert exc.value.code == "not_owner"
    with pytest.raises(NotFound):
        reviews.request_review(world.tech2, mine.id)
    stranger = make.actor(make.course(make.registration()), "manager")
    with pytest.raises(NotFound):
        reviews.request_review(stranger, mine.id)

    reviews.request_review(world.tech, mine.id)
    with pytest.raises(DomainError) as exc:
        reviews.request_review(world.tech, mine.id)
    assert exc.value.code == "not_submittable" and exc.value.status == 409

    bare = world.evidence(world.tech, [])
    with pytest.raises(DomainError) as exc:
        reviews.request_review(world.tech, bare.id)
    assert exc.value.code == "no_competencies"

    from tests.support.competency_world import make_framework

    _, (elsewhere,) = make_framework(world.reg, code="other", competencies=[{"code": "X", "title": "X"}])
    foreign = world.evidence(world.tech, [elsewhere])
    with pytest.raises(DomainError) as exc:
        reviews.request_review(world.tech, foreign.id)
    assert exc.value.code == "competency_not_in_course"

    wrong_kind = world.evidence(world.tech, [world.garb], kind="responsibility", data={"role": "inventory_lead"})
    with pytest.raises(DomainError) as exc:
        reviews.request_review(world.tech, wrong_kind.id)
    assert exc.value.code == "kind_not_accepted" and "IV-GARB" in exc.value.message

    world.tech.membership.active = False
    left = world.evidence(world.tech, [world.cart])
    with pytest.raises(Forbidden) as exc:
        reviews.request_review(world.tech, left.id)
    assert exc.value.code == "not_a_member"
    assert db.session.scalar(select(func.count()).select_from(ReviewRequest)) == 1


# --- Signing off ------------------------------------------------------------------------------------------

def test_sign_off_records_the_attestation(world):
    request = world.submitted(now=T0)[0]
    signed_at = T0 + timedelta(days=2)
    so = reviews.sign_off(world.manager, request.id, "trainer", "observed",
                          ["Gloved-fingertip sample", "Hand hygiene", "Hand hygiene"], "  Clean technique. ",
                          now=signed_at)

    assert so.review_request_id == request.id and so.person_id == world.tech.person.id
    assert so.signer_id == world.manager.person.id
    assert so.signer_name == world.manager.person.display_name and so.signer_role == "manager"
    assert (so.rating_code, so.rating_label, so.proficient) == ("trainer", "Can train others", True)
    assert so.method == "observed"
    assert so.checklist_seen == ["Hand hygiene", "Gloved-fingertip sample"]  # checklist order, no duplicates
    assert so.comment == "Clean technique."
    assert so.evidence_revision == 1 and len(so.evidence_hash) == 64
    assert so.evidence_snapshot["title"] == "Evidence" and so.evidence_snapshot["data"]["hours"] == 8
    assert so.signed_at == signed_at
    assert so.expires_at == signed_at.replace(month=7)  # IV-GARB: 6 months
    assert request.status == "signed_off" and request.resolved_by_id == world.manager.person.id
    assert request.resolved_at == signed_at
    assert request.evidence.status == "signed_off"

    [created] = audit_rows("sign_off.create")
    assert created.entity_id == so.id and created.after["rating_code"] == "trainer"
    assert created.actor_id == world.manager.person.id and created.actor_role == "manager"
    assert created.course_id == world.course.id and created.registration_id == world.reg.id
    [closed] = audit_rows("review_request.signed_off", request)
    assert closed.before["status"] == "open" and closed.after["status"] == "signed_off"
    [settled] = audit_rows("evidence.status", request.evidence)
    assert settled.before == {"status": "submitted"} and settled.after == {"status": "signed_off"}


@pytest.mark.parametrize("rating, method, steps, code, field", [
    ("excellent", "observed", [], "invalid_rating", "rating"),
    (None, "observed", [], "invalid_rating", "rating"),
    ("competent", "guessed", [], "invalid_method", "method"),
    ("competent", "observed", ["Hand hygiene", "Dancing"], "invalid_checklist", "checklist_seen"),
    ("competent", "observed", [42], "invalid_checklist", "checklist_seen"),
])
def test_sign_off_input_is_checked_and_nothing_is_written(world, rating, method, steps, code, field):
    request = world.submitted()[0]
    before = len(audit_rows())
    with pytest.raises(DomainError) as exc:
        reviews.sign_off(world.manager, request.id, rating, method, steps)
    assert exc.value.code == code and field in exc.value.fields
    assert sign_off_count() == 0 and request.status == "open" and len(audit_rows()) == before


def test_evidence_with_two_competencies_stays_submitted_until_both_are_resolved(world):
    first, second = world.submitted(competencies=[world.garb, world.audit_comp])
    reviews.sign_off(world.manager, first.id, "competent", "observed")
    assert first.evidence.status == "submitted"
    reviews.sign_off(world.manager, second.id, "competent", "verified_document")
    assert first.evidence.status == "signed_off"


def test_a_second_sign_off_of_the_same_request_is_refused(world, make):
    request = world.submitted()[0]
    reviews.sign_off(world.manager, request.id, "competent", "observed")
    other_manager = make.actor(world.course, "manager")
    with pytest.raises(DomainError) as exc:
        reviews.sign_off(other_manager, request.id, "competent", "observed")
    assert exc.value.code == "already_signed_off" and exc.value.status == 409
    assert sign_off_count() == 1


# --- Return, revise, resubmit -----------------------------------------------------------------------------

def test_return_revise_resubmit_then_sign_off(world):
    first, second = world.submitted(competencies=[world.garb, world.audit_comp], now=T0)
    ev = first.evidence
    with pytest.raises(DomainError) as exc:
        reviews.return_for_revision(world.manager, first.id, "   ")
    assert exc.value.code == "comment_required"

    reviews.return_for_revision(world.manager, first.id, "Add the media-fill result.", now=T0 + timedelta(days=1))
    # Returning concerns the whole item: both requests are returned, the evidence is editable again.
    assert (first.status, second.status) == ("returned", "returned")
    assert first.return_comment == second.return_comment == "Add the media-fill result."
    assert ev.status == "returned"
    returned = audit_rows("review_request.returned")
    assert sorted(a.entity_id for a in returned) == sorted([first.id, second.id])
    assert returned[0].after["return_comment"] == "Add the media-fill result."
    assert audit_rows("evidence.status", ev)[-1].after == {"status": "returned"}
    with pytest.raises(DomainError) as exc:
        reviews.sign_off(world.manager, first.id, "competent", "observed")
    assert exc.value.code == "request_closed"

    # The evidence service bumps the revision when the technician edits; here we do what it does.
    ev.data = {**ev.data, "media_fill": "pass"}
    ev.revision = 2
    again = reviews.request_review(world.tech, ev.id, now=T0 + timedelta(days=3))
    assert {r.evidence_revision for r in again} == {2} and ev.status == "submitted"
    assert audit_rows("evidence.submit", ev)[-1].before == {"status": "returned"}

    so = reviews.sign_off(world.manager, again[0].id, "competent", "observed")
    assert so.evidence_revision == 2 and so.evidence_snapshot["data"]["media_fill"] == "pass"


def test_returning_attested_evidence_returns_only_that_request(world):
    garb, audit_req = world.submitted(competencies=[world.garb, world.audit_comp])
    reviews.sign_off(world.manager, garb.id, "competent", "observed")
    reviews.return_for_revision(world.manager, audit_req.id, "This does not show an audit.")
    assert audit_req.status == "returned"
    assert garb.evidence.status == "signed_off"  # attested evidence is never reopened for editing


# --- Withdraw ---------------------------------------------------------------------------------------------

def test_withdraw_puts_the_evidence_back_to_draft(world):
    request = world.submitted()[0]
    with pytest.raises(Forbidden):
        reviews.withdraw_request(world.manager, request.id)
    with pytest.raises(NotFound):
        reviews.withdraw_request(world.tech2, request.id)
    reviews.withdraw_request(world.tech, request.id)
    assert request.status == "withdrawn" and request.evidence.status == "draft"
    assert audit_rows("review_request.withdrawn", request)[0].actor_id == world.tech.person.id
    assert audit_rows("evidence.status", request.evidence)[-1].after == {"status": "draft"}
    with pytest.raises(DomainError) as exc:
        reviews.withdraw_request(world.tech, request.id)
    assert exc.value.code == "request_closed"


# --- Bulk sign-off ----------------------------------------------------------------------------------------

def test_bulk_sign_off_signs_every_request(world, make):
    tech3 = make.actor(world.course, "technician")
    ids = [world.submitted(actor=a)[0].id for a in (world.tech, world.tech2, tech3)]
    done = reviews.bulk_sign_off(world.manager, ids, "competent", "observed", ["Hand hygiene"], "Group session")
    assert [s.review_request_id for s in done] == ids
    assert {s.person_id for s in done} == {world.tech.person.id, world.tech2.person.id, tech3.person.id}
    assert len({s.evidence_hash for s in done}) == 1  # same content, each hashed on its own
    assert len(audit_rows("sign_off.create")) == 3


def test_bulk_sign_off_is_all_or_nothing(world, make):
    good = world.submitted(actor=world.tech)[0]
    already = world.submitted(actor=world.tech2)[0]
    reviews.sign_off(world.manager, already.id, "competent", "observed")
    own = world.evidence(world.manager, [world.garb])
    own_request = reviews.request_review(world.manager, own.id)[0]
    foreign = World(make).submitted()[0]
    before = len(audit_rows())

    with pytest.raises(DomainError) as exc:
        reviews.bulk_sign_off(world.manager, [good.id, already.id, own_request.id, foreign.id, 99999],
                              "competent", "observed")
    assert exc.value.code == "bulk_refused"
    problems = exc.value.fields["requests"]
    assert set(problems) == {already.id, own_request.id, foreign.id, 99999}
    assert problems[already.id]["code"] == "already_signed_off"
    assert problems[own_request.id]["code"] == "own_evidence"
    assert problems[foreign.id]["code"] == "not_found" and problems[99999]["code"] == "not_found"
    assert good.status == "open" and sign_off_count() == 1 and len(audit_rows()) == before

    cart = world.submitted(actor=world.tech, competencies=[world.cart])[0]
    with pytest.raises(DomainError) as exc:
        reviews.bulk_sign_off(world.manager, [good.id, cart.id], "competent", "observed")
    assert exc.value.code == "mixed_competencies"
    with pytest.raises(DomainError) as exc:
        reviews.bulk_sign_off(world.manager, [], "competent", "observed")
    assert exc.value.code == "nothing_selected"


# --- Preceptors -------------------------------------------------------------------------------------------

def test_named_preceptor_signs_off_others_cross_training(world, make):
    preceptor = world.tech2
    rows = reviews.name_preceptor(world.manager, world.course.id, preceptor.person.id,
                                  [world.garb.id, world.audit_comp.id], now=T0)
    assert {r.competency_id for r in rows} == {world.garb.id, world.audit_comp.id}
    named = audit_rows("preceptor.name")
    assert len(named) == 2 and named[0].after["active"] is True and named[0].course_id == world.course.id
    # Naming again changes nothing and writes nothing.
    reviews.name_preceptor(world.manager, world.course.id, preceptor.person.id, [world.garb.id])
    assert len(audit_rows("preceptor.name")) == 2
    assert {p.person_id for p in reviews.course_preceptors(world.tech, world.course.id)} == {preceptor.person.id}

    request = world.submitted(actor=world.tech)[0]
    so = reviews.sign_off(preceptor, request.id, "competent", "demonstrated", GARB_STEPS)
    assert so.signer_role == "preceptor" and so.signer_id == preceptor.person.id

    # Only cross-training: a responsibility for a competency they precept goes to a manager.
    resp = world.submitted(actor=world.tech, competencies=[world.audit_comp], kind="responsibility",
                           data={"role": "inventory_lead"})[0]
    with pytest.raises(Forbidden) as exc:
        reviews.sign_off(preceptor, resp.id, "competent", "attested")
    assert exc.value.code == "preceptor_scope"
    # Not a competency they precept: they cannot even see it.
    cart = world.submitted(actor=world.tech, competencies=[world.cart])[0]
    with pytest.raises(NotFound):
        reviews.sign_off(preceptor, cart.id, "competent", "observed")
    # Never their own.
    own = world.submitted(actor=preceptor)[0]
    with pytest.raises(Forbidden) as exc:
        reviews.sign_off(preceptor, own.id, "competent", "observed")
    assert exc.value.code == "own_evidence"

    assert reviews.remove_preceptor(world.manager, world.course.id, preceptor.person.id, [world.garb.id]) == 1
    assert audit_rows("preceptor.remove")[0].after == {"active": False}
    later = world.submitted(actor=world.tech)[0]
    with pytest.raises(NotFound):
        reviews.sign_off(preceptor, later.id, "competent", "observed")
    # Naming again reactivates the same row.
    again = reviews.name_preceptor(world.manager, world.course.id, preceptor.person.id, [world.garb.id])
    assert again[0].active and again[0].id == rows[0].id
    assert audit_rows("preceptor.name")[-1].before["active"] is False


def test_only_course_managers_name_preceptors(world, make):
    with pytest.raises(Forbidden):
        reviews.name_preceptor(world.tech, world.course.id, world.tech2.person.id, [world.garb.id])
    other_course_manager = make.actor(make.course(world.reg), "manager")
    with pytest.raises(NotFound):
        reviews.name_preceptor(other_course_manager, world.course.id, world.tech2.person.id, [world.garb.id])
    stranger = make.actor(make.course(make.registration()), "manager")
    with pytest.raises(NotFound):
        reviews.name_preceptor(stranger, world.course.id, world.tech2.person.id, [world.garb.id])
    with pytest.raises(DomainError) as exc:
        reviews.name_preceptor(world.manager, world.course.id, make.actor(world.course, "manager").person.id,
                               [world.garb.id])
    assert exc.value.code == "not_a_technician"
    outsider = make.person(world.reg)
    with pytest.raises(NotFound):
        reviews.name_preceptor(world.manager, world.course.id, outsider.id, [world.garb.id])
    from tests.support.competency_world import make_framework

    _, (elsewhere,) = make_framework(world.reg, code="else", competencies=[{"code": "Y", "title": "Y"}])
    with pytest.raises(DomainError) as exc:
        reviews.name_preceptor(world.manager, world.course.id, world.tech2.person.id, [elsewhere.id])
    assert exc.value.code == "competency_not_in_course"
    with pytest.raises(Forbidden):
        reviews.remove_preceptor(world.tech, world.course.id, world.tech2.person.id)
    assert audit_rows("preceptor.name") == []


# --- Review queue -----------------------------------------------------------------------------------------

def test_review_queue_oldest_first_with_filters(world, make):
    tech3 = make.actor(world.course, "technician")
    a = world.submitted(actor=world.tech, now=T0 + timedelta(hours=3))[0]
    b = world.submitted(actor=world.tech2, competencies=[world.cart], now=T0 + timedelta(hours=1))[0]
    c = world.submitted(actor=tech3, competencies=[world.audit_comp], now=T0 + timedelta(hours=2))[0]
    signed = world.submitted(actor=tech3, now=T0)[0]
    reviews.sign_off(world.manager, signed.id, "competent", "observed")

    assert [r.id for r in reviews.review_queue(world.manager, world.course.id)] == [b.id, c.id, a.id]
    assert [r.id for r in reviews.review_queue(world.manager, world.course.id, limit=2)] == [b.id, c.id]
    assert [r.id for r in reviews.review_queue(world.manager, world.course.id, competency_id=world.garb.id)] \
        == [a.id]
    assert [r.id for r in reviews.review_queue(world.manager, world.course.id, department="central")] \
        == [b.id, c.id]
    assert [r.id for r in reviews.review_queue(world.manager, world.course.id, person_id=tech3.person.id)] \
        == [c.id]
    # A technician who left the course drops out of the queue (they can no longer be signed off here).
    world.tech2.membership.active = False
    assert [r.id for r in reviews.review_queue(world.manager, world.course.id)] == [c.id, a.id]


def test_waiting_counts_the_queue_and_names_its_oldest_request(world, make):
    assert review_queue.waiting(world.manager, world.course.id) == (0, None)
    later = world.submitted(actor=world.tech, now=T0 + timedelta(hours=5))[0]
    world.submitted(actor=world.tech2, competencies=[world.cart], now=T0 + timedelta(hours=1))
    responsibility = world.submitted(actor=world.tech2, competencies=[world.audit_comp], kind="responsibility",
                                     data={"role": "inventory_lead"}, now=T0)[0]
    with count_queries() as n:
        count, oldest = review_queue.waiting(world.manager, world.course.id)
    assert (count, oldest) == (3, responsibility.requested_at) and n[0] <= 3  # scope (2) + the aggregate
    assert count == len(reviews.review_queue(world.manager, world.course.id))
    # A preceptor's count is their own queue's: cross-training of the competencies they precept, not their own.
    reviews.name_preceptor(world.manager, world.course.id, world.tech2.person.id, [world.garb.id])
    assert review_queue.waiting(world.tech2, world.course.id) == (1, later.requested_at)


def test_review_queue_searches_technician_names(world, make):
    ana = make.actor(world.course, "technician", person=make.person(world.reg, name="Ana Okafor",
                                                                   email="ana@example.org"))
    mine = world.submitted(actor=ana)[0]
    world.submitted(actor=world.tech2, competencies=[world.cart])
    for typed in ("okafor", "ANA O", "ana@example"):
        assert [r.id for r in reviews.review_queue(world.manager, world.course.id, search=typed)] == [mine.id]
    assert reviews.review_queue(world.manager, world.course.id, search="100%") == []  # % is literal


def test_review_queue_access(world, make):
    request = world.submitted(actor=world.tech)[0]
    resp = world.submitted(actor=world.tech, competencies=[world.audit_comp], kind="responsibility",
                           data={"role": "inventory_lead"})[0]
    with pytest.raises(Forbidden):
        reviews.review_queue(world.tech2, world.course.id)
    reviews.name_preceptor(world.manager, world.course.id, world.tech2.person.id,
                           [world.garb.id, world.audit_comp.id])
    # A preceptor sees cross-training for their competencies only (not the responsibility item).
    assert [r.id for r in reviews.review_queue(world.tech2, world.course.id)] == [request.id]
    assert {r.id for r in reviews.review_queue(world.manager, world.course.id)} == {request.id, resp.id}
    with pytest.raises(NotFound):
        reviews.review_queue(make.actor(make.course(world.reg), "manager"), world.course.id)
    with pytest.raises(NotFound):
        reviews.review_queue(make.actor(make.course(make.registration()), "manager"), world.course.id)


def test_review_queue_has_no_n_plus_one(world, make):
    def run():
        rows = reviews.review_queue(world.manager, world.course.id)
        return [(r.evidence.title, r.person.display_name, r.competency.code) for r in rows]

    world.submitted(actor=world.tech)
    db.session.expire_all()
    with count_queries() as few:
        assert len(run()) == 1
    for _ in range(6):
        world.submitted(actor=make.actor(world.course, "technician"), competencies=[world.garb, world.audit_comp])
    db.session.expire_all()
    with count_queries() as many:
        assert len(run()) == 13
    assert many[0] == few[0]


# --- With the evidence service ----------------------------------------------------------------------------

def test_end_to_end_with_the_evidence_service(world):
    """Draft with services.evidence, submit, return, revise (the service bumps the revision), resubmit, sign."""
    from lti_tool.services import evidence as evidence_service

    payload = {"title": "IV room garbing week", "competency_ids": [world.garb.id], "department": "iv_room",
               "skills": ["Garbing"], "trainer_name": "A. Pharmacist", "hours": 8, "start_date": "2024-12-02",
               "end_date": "2024-12-02"}
    ev = evidence_service.create_draft(world.tech, "cross_training", payload)
    [request] = reviews.request_review(world.tech, ev.id, now=T0)
    with pytest.raises(DomainError) as exc:
        evidence_service.update_draft(world.tech, ev.id, {"hours": 9})
    assert exc.value.status == 409  # submitted evidence is frozen
    reviews.return_for_revision(world.manager, request.id, "Give the exact hours.")
    evidence_service.update_draft(world.tech, ev.id, {"hours": 7.5})
    assert ev.revision == 2
    [again] = reviews.request_review(world.tech, ev.id)
    so = reviews.sign_off(world.manager, again.id, "competent", "observed", ["Hand hygiene"])
    assert so.evidence_revision == 2 and so.evidence_snapshot["data"]["hours"] == 7.5
    with pytest.raises(DomainError):
        evidence_service.update_draft(world.tech, ev.id, {"hours": 9})
    assert [a.action for a in audit_rows(entity=ev)][:2] == ["evidence.create", "evidence.submit"]
