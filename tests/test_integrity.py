"""Sign-off integrity: who may sign, tenancy, records never edited, revocation and correction, the evidence
hash, and the audit trail."""
import hashlib
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from lti_tool.extensions import db
from lti_tool.models import Attachment, SignOff, SignOffRevocation
from lti_tool.services import DomainError, Forbidden, NotFound, attestation, reviews
from lti_tool.services.reviews import SIGN_OFF_FIELDS
from tests.support.competency_world import T0, World, audit_rows


@pytest.fixture
def world(make):
    return World(make)


def columns(row):
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


# --- Who may sign off -------------------------------------------------------------------------------------

def test_nobody_signs_off_their_own_evidence(world, make):
    own = world.evidence(world.manager, [world.garb])
    request = reviews.request_review(world.manager, own.id)[0]
    with pytest.raises(Forbidden) as exc:
        reviews.sign_off(world.manager, request.id, "competent", "observed")
    assert exc.value.code == "own_evidence"
    with pytest.raises(Forbidden):
        reviews.return_for_revision(world.manager, request.id, "Fine")
    assert db.session.scalar(select(func.count()).select_from(SignOff)) == 0


@pytest.mark.parametrize("role, allowed", [
    ("manager", True), ("designer", True), ("admin", True), ("technician", False), ("observer", False),
])
def test_only_manager_side_members_sign_off(world, make, role, allowed):
    request = world.submitted()[0]
    actor = make.actor(world.course, role)
    if allowed:
        assert reviews.sign_off(actor, request.id, "competent", "observed").signer_role == role
    else:
        with pytest.raises(NotFound):
            reviews.sign_off(actor, request.id, "competent", "observed")


def test_a_manager_of_another_course_cannot_sign_even_if_the_technician_is_there_too(world, make):
    other_course = make.course(world.reg)
    make.member(other_course, world.tech.person, "technician")
    other_manager = make.actor(other_course, "manager")
    request = world.submitted()[0]
    for attempt in (
        lambda: reviews.sign_off(other_manager, request.id, "competent", "observed"),
        lambda: reviews.return_for_revision(other_manager, request.id, "No"),
        lambda: reviews.bulk_sign_off(other_manager, [request.id], "competent", "observed"),
    ):
        with pytest.raises(DomainError) as exc:
            attempt()
        assert exc.value.status == 404 or exc.value.fields["requests"][request.id]["code"] == "not_found"


def test_inactive_manager_and_departed_technician(world, make):
    request = world.submitted()[0]
    world.manager.membership.active = False
    with pytest.raises(NotFound):
        reviews.sign_off(world.manager, request.id, "competent", "observed")
    world.manager.membership.active = True
    world.tech.membership.active = False
    with pytest.raises(Forbidden) as exc:
        reviews.sign_off(world.manager, request.id, "competent", "observed")
    assert exc.value.code == "not_a_member"


def test_other_tenants_see_nothing(world, make):
    request = world.submitted()[0]
    so = world.signed(actor=world.tech2)
    other = World(make)  # a second registration with the same shape
    # A tool admin of the other tenant, with manager rights in their own course.
    admin = make.actor(other.course, "admin")
    for actor in (other.manager, admin):
        for attempt in (
            lambda a=actor: reviews.sign_off(a, request.id, "competent", "observed"),
            lambda a=actor: reviews.return_for_revision(a, request.id, "x"),
            lambda a=actor: reviews.withdraw_request(a, request.id),
            lambda a=actor: reviews.revoke(a, so.id, "x"),
            lambda a=actor: reviews.correct(a, so.id, "x", rating="trainer"),
            lambda a=actor: reviews.review_queue(a, world.course.id),
            lambda a=actor: reviews.name_preceptor(a, world.course.id, world.tech.person.id, [world.garb.id]),
            lambda a=actor: reviews.request_review(a, request.evidence_id),
        ):
            with pytest.raises(NotFound):
                attempt()
    assert request.status == "open"


# --- Records are never edited -----------------------------------------------------------------------------

def test_revocation_is_a_new_row_and_the_sign_off_is_untouched(world, make):
    so = world.signed()
    original = columns(so)
    with pytest.raises(Forbidden):
        reviews.revoke(world.tech, so.id, "I want it gone")
    with pytest.raises(NotFound):
        reviews.revoke(world.tech2, so.id, "Not mine")
    with pytest.raises(NotFound):
        reviews.revoke(make.actor(make.course(world.reg), "manager"), so.id, "Other course")
    with pytest.raises(DomainError) as exc:
        reviews.revoke(world.manager, so.id, "")
    assert exc.value.code == "reason_required"

    revocation = reviews.revoke(world.manager, so.id, "Signed against the wrong technician.",
                                now=T0 + timedelta(days=1))
    assert isinstance(revocation, SignOffRevocation) and revocation.sign_off_id == so.id
    assert revocation.revoked_by_id == world.manager.person.id and revocation.revoked_at == T0 + timedelta(days=1)
    db.session.expire_all()
    assert columns(db.session.get(SignOff, so.id)) == original
    [entry] = audit_rows("sign_off.revoke")
    assert entry.entity_type == "sign_off_revocations" and entry.entity_id == revocation.id
    assert entry.before["id"] == so.id and entry.after["reason"] == "Signed against the wrong technician."
    assert entry.actor_id == world.manager.person.id and entry.course_id == world.course.id

    with pytest.raises(DomainError) as exc:
        reviews.revoke(world.manager, so.id, "Again")
    assert exc.value.code == "already_revoked"
    with pytest.raises(DomainError) as exc:
        reviews.correct(world.manager, so.id, "Fix", rating="trainer")
    assert exc.value.code == "revoked"


def test_preceptor_cannot_revoke(world):
    reviews.name_preceptor(world.manager, world.course.id, world.tech2.person.id, [world.garb.id])
    so = world.signed()
    with pytest.raises(Forbidden):
        reviews.revoke(world.tech2, so.id, "No")


def test_correction_is_a_new_sign_off_naming_the_original(world):
    so = world.signed(now=T0)
    original = columns(so)
    with pytest.raises(DomainError) as exc:
        reviews.correct(world.manager, so.id, "Nothing", rating="competent")
    assert exc.value.code == "nothing_to_correct"
    with pytest.raises(DomainError) as exc:
        reviews.correct(world.manager, so.id, " ", rating="trainer")
    assert exc.value.code == "reason_required"
    with pytest.raises(DomainError) as exc:
        reviews.correct(world.manager, so.id, "Typo", rating="superb")
    assert exc.value.code == "invalid_rating"
    with pytest.raises(Forbidden):
        reviews.correct(world.tech, so.id, "Mine", rating="trainer")

    later = T0 + timedelta(days=20)
    fixed = reviews.correct(world.manager, so.id, "Rating entered one level too low.", rating="trainer",
                            checklist_seen=["Garbing order"], now=later)
    assert fixed.id != so.id and fixed.corrects_id == so.id
    assert fixed.correction_reason == "Rating entered one level too low."
    assert fixed.review_request_id is None and fixed.rating_code == "trainer" and fixed.method == "observed"
    assert fixed.checklist_seen == ["Garbing order"]
    assert fixed.evidence_hash == so.evidence_hash and fixed.evidence_revision == so.evidence_revision
    assert fixed.signed_at == later
    assert fixed.expires_at == so.expires_at  # validity runs from the assessment, not the correction
    db.session.expire_all()
    assert columns(db.session.get(SignOff, so.id)) == original
    [entry] = audit_rows("sign_off.correct")
    assert entry.entity_id == fixed.id and entry.before["rating_code"] == "competent"
    assert entry.after["rating_code"] == "trainer" and entry.after["corrects_id"] == so.id

    with pytest.raises(DomainError) as exc:
        reviews.correct(world.manager, so.id, "Again", rating="competent")
    assert exc.value.code == "already_corrected"
    with pytest.raises(DomainError) as exc:
        reviews.revoke(world.manager, so.id, "Superseded already")
    assert exc.value.code == "already_corrected"
    # Corrections chain: the latest one can be corrected, and expiry still runs from the first assessment.
    downgraded = reviews.correct(world.manager, fixed.id, "Not proficient after all.", rating="supervised",
                                 now=later + timedelta(days=1))
    assert downgraded.corrects_id == fixed.id and downgraded.expires_at is None and not downgraded.proficient
    regraded = reviews.correct(world.manager, downgraded.id, "Proficient.", rating="competent",
                               now=later + timedelta(days=2))
    assert regraded.expires_at == so.expires_at


def test_one_sign_off_per_request_and_one_correction_per_sign_off_in_the_schema(world):
    so = world.signed()
    duplicate = SignOff(**{k: v for k, v in columns(so).items() if k != "id"})
    nested = db.session.begin_nested()
    db.session.add(duplicate)
    with pytest.raises(IntegrityError):
        db.session.flush()
    nested.rollback()
    fixed = reviews.correct(world.manager, so.id, "Fix", rating="trainer")
    twin = SignOff(**{k: v for k, v in columns(fixed).items() if k != "id"})
    nested = db.session.begin_nested()
    db.session.add(twin)
    with pytest.raises(IntegrityError):
        db.session.flush()
    nested.rollback()


def test_evidence_changed_after_submission_cannot_be_signed(world):
    request = world.submitted()[0]
    request.evidence.revision = 2  # as if edited behind the workflow's back
    with pytest.raises(DomainError) as exc:
        reviews.sign_off(world.manager, request.id, "competent", "observed")
    assert exc.value.code == "evidence_changed"


# --- The evidence hash ------------------------------------------------------------------------------------

def test_hash_is_sha256_of_the_canonical_evidence_json(world):
    ev = world.evidence(world.tech, [world.garb], title="IV room week 1",
                        data={"hours": 8, "department": "iv_room", "skills": ["Garbing", "Média fill"]})
    db.session.add_all([
        Attachment(evidence_id=ev.id, filename="b.pdf", content_type="application/pdf", size=3,
                   sha256="b" * 64, storage_key="k-b", uploaded_by_id=world.tech.person.id),
        Attachment(evidence_id=ev.id, filename="a.jpg", content_type="image/jpeg", size=4,
                   sha256="a" * 64, storage_key="k-a", uploaded_by_id=world.tech.person.id),
    ])
    db.session.flush()
    db.session.expire(ev, ["attachments"])
    request = reviews.request_review(world.tech, ev.id)[0]
    so = reviews.sign_off(world.manager, request.id, "competent", "observed")

    expected_doc = {"kind": "cross_training", "title": "IV room week 1",
                    "data": {"department": "iv_room", "hours": 8, "skills": ["Garbing", "Média fill"]},
                    "attachments": ["b" * 64, "a" * 64], "revision": 1}
    expected = hashlib.sha256(json.dumps(expected_doc, sort_keys=True, separators=(",", ":"),
                                         ensure_ascii=False).encode("utf-8")).hexdigest()
    assert so.evidence_hash == expected
    assert [f["filename"] for f in so.evidence_snapshot["attachment_files"]] == ["b.pdf", "a.jpg"]
    assert so.evidence_snapshot["evidence_id"] == ev.id
    assert attestation.verify(so) == {"snapshot_intact": True, "evidence_unchanged": True}

    # Someone edits the evidence row behind the service layer: the sign-off shows it.
    ev.data = {**ev.data, "hours": 80}
    db.session.flush()
    assert attestation.verify(so) == {"snapshot_intact": True, "evidence_unchanged": False}


def test_hash_changes_with_any_attested_field(world):
    ev = world.evidence(world.tech, [world.garb])
    base = attestation.evidence_hash(attestation.evidence_document(ev))
    for change in (lambda: setattr(ev, "title", "Other"), lambda: setattr(ev, "revision", 2),
                   lambda: setattr(ev, "data", {"hours": 9}), lambda: setattr(ev, "kind", "responsibility")):
        snapshot = (ev.title, ev.revision, ev.data, ev.kind)
        change()
        assert attestation.evidence_hash(attestation.evidence_document(ev)) != base
        ev.title, ev.revision, ev.data, ev.kind = snapshot
    assert attestation.evidence_hash(attestation.evidence_document(ev)) == base


# --- The audit trail --------------------------------------------------------------------------------------

def test_every_change_of_a_full_workflow_is_audited(world):
    ev = world.evidence(world.tech, [world.garb])
    [first] = reviews.request_review(world.tech, ev.id, now=T0)
    reviews.return_for_revision(world.manager, first.id, "More detail")
    ev.revision = 2
    [second] = reviews.request_review(world.tech, ev.id)
    so = reviews.sign_off(world.manager, second.id, "competent", "observed")
    fixed = reviews.correct(world.manager, so.id, "Typo", comment="Corrected comment")
    reviews.revoke(world.manager, fixed.id, "Withdrawn by the pharmacy")

    trail = [(a.action, a.entity_type, a.actor_id) for a in audit_rows()]
    tech, manager = world.tech.person.id, world.manager.person.id
    assert trail == [
        ("evidence.submit", "evidence", tech),
        ("review_request.create", "review_requests", tech),
        ("review_request.returned", "review_requests", manager),
        ("evidence.status", "evidence", manager),
        ("evidence.submit", "evidence", tech),
        ("review_request.create", "review_requests", tech),
        ("review_request.signed_off", "review_requests", manager),
        ("sign_off.create", "sign_offs", manager),
        ("evidence.status", "evidence", manager),
        ("sign_off.correct", "sign_offs", manager),
        ("sign_off.revoke", "sign_off_revocations", manager),
    ]
    for entry in audit_rows():
        assert entry.registration_id == world.reg.id and entry.course_id == world.course.id
        assert entry.at is not None and entry.after is not None
        assert entry.actor_role in {"technician", "manager"}
    assert set(audit_rows("sign_off.create")[0].after) == set(SIGN_OFF_FIELDS)
