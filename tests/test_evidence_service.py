"""Evidence drafting rules: who may record and edit, where, linked to which competencies; audit rows for each
change; listing scoped to oneself or to the courses a manager manages."""
import pytest
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.models import AuditEntry, Competency, CourseFramework, Evidence, Framework
from lti_tool.models.evidence import DRAFT, RETURNED, SIGNED_OFF, SUBMITTED, WITHDRAWN
from lti_tool.services import DomainError, Forbidden, NotFound
from lti_tool.services import evidence as evidence_service
from lti_tool.services.actors import Actor

SCALE = [{"code": "not_yet", "label": "Not yet competent", "proficient": False},
         {"code": "competent", "label": "Competent", "proficient": True}]
STEPS = ["Hand hygiene", "Garbing order", "Gloved fingertip test"]


def add_framework(course, *, registration_id=None, shipped=False, link=True, code="PT"):
    """A framework with four competencies, used by `course` (rows inserted directly)."""
    framework = Framework(registration_id=None if shipped else (registration_id or course.registration_id),
                          code=code, name="Pharmacy Technician", version="1", scale=SCALE)
    db.session.add(framework)
    db.session.flush()
    comps = {
        "iv": Competency(framework_id=framework.id, code="IV-1", title="Aseptic technique",
                         evidence_kinds=["cross_training"], checklist=STEPS, position=1),
        "any": Competency(framework_id=framework.id, code="GEN-1", title="Professional development",
                          evidence_kinds=[], position=2),
        "ce": Competency(framework_id=framework.id, code="CE-1", title="Continuing education",
                         evidence_kinds=["continuing_education", "certification"], position=3),
        "lead": Competency(framework_id=framework.id, code="LEAD-1", title="Leadership",
                           evidence_kinds=["responsibility", "qi_project"], position=4),
    }
    db.session.add_all(comps.values())
    if link:
        db.session.add(CourseFramework(course_id=course.id, framework_id=framework.id))
    db.session.flush()
    return comps


def payloads(comps) -> dict:
    return {
        "cross_training": {
            "title": "IV room week", "competency_ids": [comps["iv"].id], "department": "iv_room",
            "skills": ["Garbing"], "trainer_name": "Dana Lee", "hours": 16, "start_date": "2024-03-04",
            "end_date": "2024-03-08", "checklist_steps": ["Hand hygiene"],
        },
        "responsibility": {
            "title": "Inventory lead", "competency_ids": [comps["lead"].id], "role": "inventory_lead",
            "scope": "Ordering", "start_date": "2024-01-01", "supervisor": "Pat Kim",
        },
        "qi_project": {
            "title": "Cart-fill errors", "competency_ids": [comps["lead"].id], "problem": "Missing doses",
            "aim": "Halve them", "measures": ["Missing doses per 1,000 fills"], "results": "12 -> 5",
            "role": "Lead", "pdsa_cycles": [{"plan": "p", "do": "d", "study": "s", "act": "a",
                                             "date": "2024-02-01"}],
        },
        "certification": {
            "title": "CPhT", "competency_ids": [comps["ce"].id], "credential": "ptcb_cpht", "number": "1234",
            "issued_date": "2023-05-01", "expiry_date": "2025-05-01",
        },
        "continuing_education": {
            "title": "Law for technicians", "competency_ids": [comps["ce"].id], "uan": "0197-0000-24-001-L03-T",
            "hours": 1, "completion_date": "2024-06-01", "provider_name": "State association",
        },
    }


@pytest.fixture
def world(make):
    """One tenant, course A (with a framework), a technician and a manager in it."""
    reg = make.registration()
    course = make.course(reg)
    comps = add_framework(course)
    tech = make.actor(course, "technician")
    manager = make.actor(course, "manager")
    return {"reg": reg, "course": course, "comps": comps, "tech": tech, "manager": manager,
            "payloads": payloads(comps)}


def audit_rows(entity_type, entity_id):
    return db.session.scalars(select(AuditEntry).where(AuditEntry.entity_type == entity_type,
                                                       AuditEntry.entity_id == entity_id)
                              .order_by(AuditEntry.id)).all()


def field_errors(call, *args, **kwargs) -> dict:
    with pytest.raises(DomainError) as caught:
        call(*args, **kwargs)
    assert caught.value.status == 400 and caught.value.code == "invalid"
    return caught.value.fields


# -- creating -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["cross_training", "responsibility", "qi_project", "certification",
                                  "continuing_education"])
def test_create_draft_of_each_kind_is_stored_and_audited(world, kind):
    tech = world["tech"]
    evidence = evidence_service.create_draft(tech, kind, world["payloads"][kind])
    assert (evidence.status, evidence.revision, evidence.kind) == (DRAFT, 1, kind)
    assert (evidence.person_id, evidence.course_id) == (tech.person.id, world["course"].id)
    assert [link.competency_id for link in evidence.competency_links] == world["payloads"][kind]["competency_ids"]
    (row,) = audit_rows("evidence", evidence.id)
    assert (row.action, row.actor_id, row.course_id, row.registration_id, row.actor_role) == (
        "evidence.create", tech.person.id, world["course"].id, world["reg"].id, "technician")
    assert row.before is None
    assert row.after["title"] == evidence.title and row.after["status"] == DRAFT and row.after["revision"] == 1
    assert row.after["data"] == evidence.data
    assert row.after["competency_ids"] == world["payloads"][kind]["competency_ids"]


def test_schema_errors_come_back_per_field(world):
    payload = {**world["payloads"]["qi_project"], "aim": "",
               "pdsa_cycles": [{"plan": "p", "do": "d", "act": "a", "date": "2024-02-01"}]}
    assert field_errors(evidence_service.create_draft, world["tech"], "qi_project", payload) == {
        "aim": "This field cannot be blank.", "pdsa_cycles.0.study": "This field is required."}
    assert field_errors(evidence_service.create_draft, world["tech"], "poster", {}) == {
        "kind": "Unknown evidence kind 'poster'; choose one of cross_training, responsibility, qi_project, "
                "certification, continuing_education."}
    assert db.session.scalar(select(Evidence.id)) is None


def test_competency_must_belong_to_a_framework_the_course_uses(world, make):
    comps, tech, course = world["comps"], world["tech"], world["course"]
    unused = add_framework(course, link=False, code="UNUSED")["any"]
    other_course = make.course(world["reg"])
    elsewhere = add_framework(other_course, code="OTHER")["any"]
    payload = {**world["payloads"]["responsibility"], "competency_ids": [comps["any"].id, unused.id, elsewhere.id,
                                                                         999999]}
    assert field_errors(evidence_service.create_draft, tech, "responsibility", payload) == {
        "competency_ids": f"Not a competency of this course's frameworks: {unused.id}, {elsewhere.id}, 999999."}


def test_a_framework_of_another_tenant_does_not_count_even_if_linked(world, make):
    foreign_reg = make.registration()
    foreign = add_framework(world["course"], registration_id=foreign_reg.id, code="FOREIGN")["any"]
    payload = {**world["payloads"]["responsibility"], "competency_ids": [foreign.id]}
    assert field_errors(evidence_service.create_draft, world["tech"], "responsibility", payload) == {
        "competency_ids": f"Not a competency of this course's frameworks: {foreign.id}."}


def test_shipped_framework_used_by_the_course_counts(world):
    shipped = add_framework(world["course"], shipped=True, code="SHIPPED")["any"]
    payload = {**world["payloads"]["responsibility"], "competency_ids": [shipped.id]}
    evidence = evidence_service.create_draft(world["tech"], "responsibility", payload)
    assert [link.competency_id for link in evidence.competency_links] == [shipped.id]


def test_competency_must_accept_the_kind(world):
    comps = world["comps"]
    payload = {**world["payloads"]["certification"], "competency_ids": [comps["iv"].id, comps["lead"].id,
                                                                        comps["any"].id]}
    assert field_errors(evidence_service.create_draft, world["tech"], "certification", payload) == {
        "competency_ids": "IV-1 Aseptic technique does not accept certification evidence. "
                          "LEAD-1 Leadership does not accept certification evidence."}


def test_observed_steps_must_be_in_the_linked_checklist(world):
    comps, tech = world["comps"], world["tech"]
    payload = {**world["payloads"]["cross_training"], "checklist_steps": ["Hand hygiene", "Juggling"]}
    assert field_errors(evidence_service.create_draft, tech, "cross_training", payload) == {
        "checklist_steps": "Not a step of the linked competencies' checklists: Juggling."}
    payload = {**world["payloads"]["cross_training"], "competency_ids": [comps["any"].id]}
    assert field_errors(evidence_service.create_draft, tech, "cross_training", payload) == {
        "checklist_steps": "The linked competencies have no checklist; leave the observed steps empty."}
    payload["checklist_steps"] = []
    assert evidence_service.create_draft(tech, "cross_training", payload).data["checklist_steps"] == []


def test_trainer_must_be_another_member_of_the_course(world, make):
    tech, course = world["tech"], world["course"]
    outsider = make.person(world["reg"])
    base = world["payloads"]["cross_training"]
    assert field_errors(evidence_service.create_draft, tech, "cross_training",
                        {**base, "trainer_person_id": tech.person.id}) == {
        "trainer_person_id": "You cannot be your own trainer."}
    assert field_errors(evidence_service.create_draft, tech, "cross_training",
                        {**base, "trainer_person_id": outsider.id}) == {
        "trainer_person_id": "The trainer must be a member of this course."}
    trainer = make.member(course, role="technician").person
    evidence = evidence_service.create_draft(tech, "cross_training", {**base, "trainer_person_id": trainer.id})
    assert evidence.data["trainer_person_id"] == trainer.id


def test_the_same_ce_activity_is_recorded_once_per_course(world):
    tech, ce = world["tech"], world["payloads"]["continuing_education"]
    first = evidence_service.create_draft(tech, "continuing_education", ce)
    again = {**ce, "uan": "0197-0000-24-001-l03-t"}
    assert field_errors(evidence_service.create_draft, tech, "continuing_education", again) == {
        "uan": f"You already recorded this activity in this course (evidence {first.id})."}
    evidence_service.withdraw(tech, first.id)
    assert evidence_service.create_draft(tech, "continuing_education", again).data["uan"] == ce["uan"]


# -- who may record -------------------------------------------------------------------------------------------

def test_cannot_record_for_another_person(world):
    other = world["manager"].person
    with pytest.raises(Forbidden, match="only for yourself"):
        evidence_service.create_draft(world["tech"], "responsibility", world["payloads"]["responsibility"],
                                      person_id=other.id)
    same = evidence_service.create_draft(world["tech"], "responsibility", world["payloads"]["responsibility"],
                                         person_id=world["tech"].person.id)
    assert same.person_id == world["tech"].person.id


def test_non_members_observers_and_courseless_actors_cannot_record(world, make):
    course, payload = world["course"], world["payloads"]["responsibility"]
    observer = make.actor(course, "observer")
    with pytest.raises(Forbidden, match="Observers"):
        evidence_service.create_draft(observer, "responsibility", payload)
    admin = make.person(world["reg"], is_admin=True)
    with pytest.raises(Forbidden, match="Only members of this course"):
        evidence_service.create_draft(Actor(person=admin, course=course), "responsibility", payload)
    with pytest.raises(Forbidden, match="Open the tool from a course"):
        evidence_service.create_draft(Actor(person=world["tech"].person), "responsibility", payload)
    lapsed = make.actor(course, "technician")
    lapsed.membership.active = False
    with pytest.raises(Forbidden, match="Only members of this course"):
        evidence_service.create_draft(lapsed, "responsibility", payload)
    # A membership of another course does not open this one.
    other_course = make.course(world["reg"])
    elsewhere = make.actor(other_course, "technician")
    with pytest.raises(Forbidden, match="Only members of this course"):
        evidence_service.create_draft(Actor(person=elsewhere.person, course=course,
                                            membership=elsewhere.membership), "responsibility", payload)
    assert db.session.scalar(select(Evidence.id)) is None


def test_cross_tenant_course_is_refused(world, make):
    foreign_course = make.course(make.registration())
    tech = world["tech"]
    with pytest.raises(NotFound):
        evidence_service.create_draft(Actor(person=tech.person, course=foreign_course, membership=tech.membership),
                                      "responsibility", world["payloads"]["responsibility"])


def test_a_manager_member_may_record_their_own_evidence(world):
    evidence = evidence_service.create_draft(world["manager"], "certification", world["payloads"]["certification"])
    assert evidence.person_id == world["manager"].person.id


# -- editing --------------------------------------------------------------------------------------------------

def test_update_merges_changes_bumps_revision_and_audits(world):
    tech, comps = world["tech"], world["comps"]
    evidence = evidence_service.create_draft(tech, "cross_training", world["payloads"]["cross_training"])
    evidence_service.update_draft(tech, evidence.id, {"hours": "20.5", "competency_ids": [comps["iv"].id,
                                                                                          comps["any"].id]})
    assert evidence.revision == 2
    assert evidence.data["hours"] == 20.5 and evidence.data["skills"] == ["Garbing"]
    assert sorted(link.competency_id for link in evidence.competency_links) == sorted([comps["iv"].id,
                                                                                       comps["any"].id])
    create, update = audit_rows("evidence", evidence.id)
    assert update.action == "evidence.update"
    assert update.before["data"]["hours"] == 16 and update.before["revision"] == 1
    assert update.after["data"]["hours"] == 20.5 and update.after["revision"] == 2
    assert update.after["competency_ids"] == sorted([comps["iv"].id, comps["any"].id])

    evidence_service.update_draft(tech, evidence.id, {"title": "IV room fortnight", "kind": "cross_training",
                                                      "checklist_steps": None})
    assert (evidence.title, evidence.revision, evidence.data["checklist_steps"]) == ("IV room fortnight", 3, [])


def test_an_unchanged_update_is_not_a_revision(world):
    tech = world["tech"]
    evidence = evidence_service.create_draft(tech, "responsibility", world["payloads"]["responsibility"])
    evidence_service.update_draft(tech, evidence.id, {"scope": " Ordering "})
    assert evidence.revision == 1 and len(audit_rows("evidence", evidence.id)) == 1


def test_update_is_validated_like_a_new_draft(world):
    tech = world["tech"]
    evidence = evidence_service.create_draft(tech, "responsibility", world["payloads"]["responsibility"])
    assert field_errors(evidence_service.update_draft, tech, evidence.id,
                        {"end_date": "2023-12-31", "supervisor": None, "colour": "red"}) == {
        "end_date": "The end date is before the start date.", "supervisor": "This field is required.",
        "colour": "Unknown field."}
    assert field_errors(evidence_service.update_draft, tech, evidence.id, {"kind": "qi_project"}) == {
        "kind": "The kind of evidence cannot be changed; record new evidence."}
    assert field_errors(evidence_service.update_draft, tech, evidence.id,
                        {"competency_ids": [world["comps"]["iv"].id]}) == {
        "competency_ids": "IV-1 Aseptic technique does not accept extra responsibility evidence."}
    assert evidence.revision == 1 and evidence.data["supervisor"] == "Pat Kim"


def test_stale_revision_is_refused(world):
    tech = world["tech"]
    evidence = evidence_service.create_draft(tech, "responsibility", world["payloads"]["responsibility"])
    evidence_service.update_draft(tech, evidence.id, {"scope": "Ordering and counts"}, expected_revision=1)
    with pytest.raises(DomainError) as caught:
        evidence_service.update_draft(tech, evidence.id, {"scope": "Again"}, expected_revision=1)
    assert (caught.value.status, caught.value.code) == (409, "stale_revision")
    assert evidence.data["scope"] == "Ordering and counts"


@pytest.mark.parametrize("status, message", [
    (SUBMITTED, "This evidence is waiting for review and cannot be changed until the review is returned or "
                "withdrawn."),
    (SIGNED_OFF, "Signed-off evidence is never changed; record new evidence for anything new."),
    (WITHDRAWN, "This evidence was withdrawn and cannot be changed."),
])
def test_cannot_edit_unless_draft_or_returned(world, status, message):
    tech = world["tech"]
    evidence = evidence_service.create_draft(tech, "responsibility", world["payloads"]["responsibility"])
    evidence.status = status
    db.session.flush()
    with pytest.raises(DomainError) as caught:
        evidence_service.update_draft(tech, evidence.id, {"scope": "Changed"})
    assert (caught.value.status, caught.value.code, caught.value.message) == (409, "not_editable", message)
    assert evidence.data["scope"] == "Ordering" and evidence.revision == 1
    assert [row.action for row in audit_rows("evidence", evidence.id)] == ["evidence.create"]


def test_returned_evidence_can_be_revised(world):
    tech = world["tech"]
    evidence = evidence_service.create_draft(tech, "responsibility", world["payloads"]["responsibility"])
    evidence.status = RETURNED
    db.session.flush()
    evidence_service.update_draft(tech, evidence.id, {"scope": "Ordering, with the monthly count"})
    assert (evidence.status, evidence.revision) == (RETURNED, 2)


def test_nobody_else_edits_a_technicians_evidence(world, make):
    tech, manager, course = world["tech"], world["manager"], world["course"]
    evidence = evidence_service.create_draft(tech, "responsibility", world["payloads"]["responsibility"])
    with pytest.raises(Forbidden, match="Only the technician who recorded"):
        evidence_service.update_draft(manager, evidence.id, {"scope": "Changed by the manager"})
    peer = make.actor(course, "technician")
    with pytest.raises(NotFound):
        evidence_service.update_draft(peer, evidence.id, {"scope": "Changed by a peer"})
    with pytest.raises(NotFound):
        evidence_service.withdraw(peer, evidence.id)
    foreign = make.actor(make.course(make.registration()), "technician")
    with pytest.raises(NotFound):
        evidence_service.update_draft(foreign, evidence.id, {"scope": "Changed from another tenant"})
    assert evidence.revision == 1


def test_evidence_is_changed_only_from_its_own_course(world, make):
    tech = world["tech"]
    evidence = evidence_service.create_draft(tech, "responsibility", world["payloads"]["responsibility"])
    course_b = make.course(world["reg"])
    add_framework(course_b, code="B")
    in_b = make.actor(course_b, "technician", person=tech.person)
    with pytest.raises(Forbidden, match="belongs to another course"):
        evidence_service.update_draft(in_b, evidence.id, {"scope": "From course B"})
    with pytest.raises(Forbidden, match="belongs to another course"):
        evidence_service.withdraw(in_b, evidence.id)


# -- withdrawing ----------------------------------------------------------------------------------------------

def test_withdraw_marks_and_audits(world):
    tech = world["tech"]
    evidence = evidence_service.create_draft(tech, "responsibility", world["payloads"]["responsibility"])
    evidence_service.withdraw(tech, evidence.id, reason=" Recorded twice ")
    assert evidence.status == WITHDRAWN and evidence.revision == 1
    row = audit_rows("evidence", evidence.id)[-1]
    assert (row.action, row.before["status"], row.after["status"], row.after["reason"]) == (
        "evidence.withdraw", DRAFT, WITHDRAWN, "Recorded twice")
    with pytest.raises(DomainError) as caught:
        evidence_service.withdraw(tech, evidence.id)
    assert (caught.value.status, caught.value.code) == (409, "not_withdrawable")


@pytest.mark.parametrize("status, code", [(SUBMITTED, "under_review"), (SIGNED_OFF, "not_withdrawable")])
def test_cannot_withdraw_under_review_or_signed_off(world, status, code):
    tech = world["tech"]
    evidence = evidence_service.create_draft(tech, "responsibility", world["payloads"]["responsibility"])
    evidence.status = status
    db.session.flush()
    with pytest.raises(DomainError) as caught:
        evidence_service.withdraw(tech, evidence.id)
    assert (caught.value.status, caught.value.code) == (409, code)
    assert evidence.status == status


# -- listing --------------------------------------------------------------------------------------------------

def test_listing_is_scoped(world, make):
    tech, manager, course = world["tech"], world["manager"], world["course"]
    p = world["payloads"]
    a1 = evidence_service.create_draft(tech, "responsibility", p["responsibility"])
    a2 = evidence_service.create_draft(tech, "certification", p["certification"])
    gone = evidence_service.create_draft(tech, "qi_project", p["qi_project"])
    evidence_service.withdraw(tech, gone.id)
    course_b = make.course(world["reg"])
    comps_b = add_framework(course_b, code="B")
    tech_in_b = make.actor(course_b, "technician", person=tech.person)
    b1 = evidence_service.create_draft(tech_in_b, "responsibility", payloads(comps_b)["responsibility"])

    ids = [e.id for e in evidence_service.list_for_person(tech, tech.person.id)]
    assert ids == [b1.id, a2.id, a1.id]
    assert {e.id for e in evidence_service.list_for_person(tech, tech.person.id, include_withdrawn=True)} == {
        a1.id, a2.id, b1.id, gone.id}
    assert [e.id for e in evidence_service.list_for_person(tech, tech.person.id, status=WITHDRAWN)] == [gone.id]
    assert [e.id for e in evidence_service.list_for_person(tech, tech.person.id, kind="certification")] == [a2.id]
    assert [e.id for e in evidence_service.list_for_person(tech, tech.person.id, course_id=course_b.id)] == [b1.id]

    # The manager of course A sees course A's items only.
    assert [e.id for e in evidence_service.list_for_person(manager, tech.person.id)] == [a2.id, a1.id]
    with pytest.raises(NotFound):
        evidence_service.list_for_person(manager, tech.person.id, course_id=course_b.id)

    manager_b_only = make.actor(make.course(world["reg"]), "manager")
    with pytest.raises(NotFound):
        evidence_service.list_for_person(manager_b_only, tech.person.id)
    peer = make.actor(course, "technician")
    with pytest.raises(NotFound):
        evidence_service.list_for_person(peer, tech.person.id)
    foreign_manager = make.actor(make.course(make.registration()), "manager")
    with pytest.raises(NotFound):
        evidence_service.list_for_person(foreign_manager, tech.person.id)
    with pytest.raises(DomainError) as caught:
        evidence_service.list_for_person(tech, tech.person.id, kind="poster")
    assert caught.value.fields == {"kind": "Unknown kind 'poster'."}
