"""A course without chosen frameworks uses the tenant's own frameworks, or else the shipped one: the same rule
(frameworks.used_framework_ids) for status, forms (evidence validation), placements and the matrix."""
from lti_tool.extensions import db
from lti_tool.models import CourseFramework
from lti_tool.services import evidence, frameworks, matrix, placements, status
from tests.support.competency_world import make_framework


def _codes(course):
    return [c.code for c in status.course_competencies(course)]


def test_a_fresh_course_uses_the_shipped_framework_everywhere(make):
    shipped = frameworks.ensure_default_framework()
    course = make.course()
    manager, tech = make.actor(course, "manager"), make.actor(course, "technician")
    codes = _codes(course)
    assert "XT-IV-01" in codes and len(codes) == len(shipped.competencies)
    assert [f.id for f in placements.course_frameworks(manager, course)] == [shipped.id]
    assert [f.id for f in frameworks.course_frameworks(tech, course.id)] == [shipped.id]
    leaves = matrix.course_tree(course).leaves
    assert leaves and {c.framework_id for c in leaves} == {shipped.id}
    # The technician's forms accept its competencies: a CE draft saves with no admin step.
    law = next(c for c in leaves if c.evidence_kinds and "continuing_education" in c.evidence_kinds)
    saved = evidence.create_draft(tech, "continuing_education", {
        "title": "Law update", "uan": "0197-0000-24-001-H03-T", "hours": 1, "completion_date": "2026-01-10",
        "provider_name": "Board of Pharmacy",
        "competency_ids": [law.id]})
    assert [link.competency_id for link in saved.competency_links] == [law.id]
    statuses = status.statuses_for(tech.person, course)
    assert statuses[law.id].status == status.IN_PROGRESS


def test_the_tenants_own_framework_comes_before_the_shipped_one_and_a_choice_before_both(make):
    frameworks.ensure_default_framework()
    reg = make.registration()
    course, other_tenant_course = make.course(reg), make.course()
    own, (own_comp,) = make_framework(reg, code="own", competencies=[{"code": "OWN-1", "title": "Our skill"}])
    assert _codes(course) == ["OWN-1"]
    assert "OWN-1" not in _codes(other_tenant_course) and "XT-IV-01" in _codes(other_tenant_course)
    chosen, _ = make_framework(reg, code="chosen", competencies=[{"code": "CH-1", "title": "Chosen skill"}])
    db.session.add(CourseFramework(course_id=course.id, framework_id=chosen.id))
    db.session.flush()
    assert _codes(course) == ["CH-1"]
    assert frameworks.chosen_framework_ids(course) == {chosen.id}


def test_the_latest_installed_version_of_a_shipped_framework_is_the_default(make):
    old, _ = make_framework(None, code="ship", competencies=[{"code": "OLD-1", "title": "Old"}])
    old.version = "0"
    db.session.flush()
    make_framework(None, code="ship", competencies=[{"code": "NEW-1", "title": "New"}])
    assert _codes(make.course()) == ["NEW-1"]


def test_certification_links_its_credential_competency_and_ce_its_default(make):
    frameworks.ensure_default_framework()
    course = make.course()
    tech = make.actor(course, "technician")
    by_code = {c.code: c.id for c in status.course_competencies(course)}
    cert = evidence.create_draft(tech, "certification", {
        "title": "PTCB CPhT", "credential": "ptcb_cpht", "number": "123456", "issued_date": "2025-01-05",
        "expiry_date": "2027-01-31"})
    assert [link.competency_id for link in cert.competency_links] == [by_code["CRED-CPHT"]]
    # Chosen competencies are kept, and the credential's is added.
    both = evidence.create_draft(tech, "certification", {
        "title": "PTCB CPhT again", "credential": "ptcb_cpht", "number": "123457", "issued_date": "2025-01-05",
        "competency_ids": [by_code["A5-01"]]})
    assert sorted(link.competency_id for link in both.competency_links) == sorted(
        [by_code["A5-01"], by_code["CRED-CPHT"]])
    ce_item = evidence.create_draft(tech, "continuing_education", {
        "title": "Law", "uan": "0197-0000-24-001-H03-T", "hours": 1, "completion_date": "2026-01-10",
        "provider_name": "Board of Pharmacy"})
    assert [link.competency_id for link in ce_item.competency_links] == [by_code["A2-01"]]


def test_certification_and_ce_stand_without_any_competency_when_the_course_has_none(make):
    course = make.course()
    make_framework(course.registration, code="tiny", competencies=[{"code": "X-1", "title": "Other"}])
    tech = make.actor(course, "technician")
    cert = evidence.create_draft(tech, "certification", {
        "title": "PTCB CPhT", "credential": "ptcb_cpht", "number": "1", "issued_date": "2025-01-05"})
    assert cert.id and cert.competency_links == []


def test_reimporting_the_shipped_frameworks_own_case_export_is_refused(make):
    from sqlalchemy import func, select

    from lti_tool.models import Competency, Framework
    from lti_tool.services.framework_io import FrameworkImportError

    shipped = frameworks.ensure_default_framework()
    manager = make.actor(make.course(), "manager")
    exported = frameworks.export_framework(manager, shipped.id, "case")
    before = (db.session.scalar(select(func.count(Framework.id))), db.session.scalar(select(func.count(Competency.id))))
    try:
        frameworks.import_framework(manager, exported)
    except FrameworkImportError as exc:
        message = exc.errors[0]["message"]
    else:
        raise AssertionError("a duplicate of the shipped framework was imported")
    assert "version 2026.1 already exists" in message and "shipped with the tool" in message
    after = (db.session.scalar(select(func.count(Framework.id))), db.session.scalar(select(func.count(Competency.id))))
    assert after == before
    # Another version is a new framework.
    assert frameworks.import_framework(manager, exported, version="2026.1-local").framework.version == "2026.1-local"


def test_course_matrix_csv_lists_competencies_in_framework_order_with_signer_and_expiry(make):
    import csv
    import io
    from datetime import UTC, datetime

    from lti_tool import formatting
    from lti_tool.services import reviews, transcript_exports

    frameworks.ensure_default_framework()
    course = make.course()
    manager, tech = make.actor(course, "manager"), make.actor(course, "technician")
    tree = matrix.course_tree(course)
    garb = next(c for c in tree.leaves if c.code == "USP797-02")
    item = evidence.create_draft(tech, "cross_training", {
        "title": "Garbing", "department": "iv_room", "skills": ["Garbing"], "trainer_name": "Dana", "hours": 2,
        "start_date": "2026-01-05", "end_date": "2026-01-05", "competency_ids": [garb.id]})
    request = reviews.request_review(tech, item.id)[0]
    signed = reviews.sign_off(manager, request.id, "competent", "observed")
    rows = list(csv.reader(io.StringIO(transcript_exports.course_matrix_csv(manager, course.id))))
    header = rows[0][2:-1]
    # Leaves only (no area rows), in the same framework order the matrix page shows.
    assert header == [f"{c.code} {c.title}" for c in tree.leaves]
    assert not any(h.split()[0] in {a.code for a, _ in tree.areas} for h in header)
    assert len(header) == len(tree.leaves) < len(status.course_competencies(course))
    cell = rows[1][2 + [c.id for c in tree.leaves].index(garb.id)]
    today = formatting.us_date(datetime.now(UTC))
    assert cell == (f"Achieved: signed {today} by {manager.person.display_name} (Manager); "
                    f"expires {formatting.us_date(signed.expires_at)}")
    assert rows[1][-1] == f"1/{len(tree.leaves)}"
