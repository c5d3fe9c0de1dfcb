"""Framework services: the shipped framework, visibility per tenant, the tree in one query, course frameworks,
imports by tenant managers, and the `frameworks` CLI."""
import json
import time
import uuid

import pytest
from sqlalchemy import event, func, select

from lti_tool.extensions import db
from lti_tool.models import AuditEntry, Competency, CourseFramework, Framework
from lti_tool.models.frameworks import EVIDENCE_KINDS
from lti_tool.services import DomainError, Forbidden, NotFound
from lti_tool.services import frameworks as service
from lti_tool.services.framework_io.common import competency_identifier

DEPARTMENTS = {"community", "central", "iv_room", "nonsterile", "hazardous", "ltc", "specialty", "nuclear",
               "automation", "transitions_of_care", "or_satellite", "program_340b", "dscsa", "controlled_substances",
               "investigational", "infusion_billing", "med_sync", "vaccine_cold_chain", "telepharmacy"}
PTCB_CERTIFICATES = {
    "Technician Product Verification", "Medication History", "Hazardous Drug Management", "Billing and Reimbursement",
    "Controlled Substances Diversion Prevention", "Immunization Administration", "Point-of-Care Testing",
    "Medication Therapy Management", "Regulatory Compliance", "Supply Chain and Inventory Management",
    "Nonsterile Compounding",
}
SMALL_NATIVE = {
    "format": "pharmacy-tech-pathways/framework",
    "framework": {"code": "LOCAL", "name": "Local skills", "version": "1",
                  "scale": [{"code": "no", "label": "No", "proficient": False},
                            {"code": "yes", "label": "Yes", "proficient": True}]},
    "competencies": [{"code": "L-1", "title": "Inventory lead", "evidence_kinds": ["responsibility"]}],
}


@pytest.fixture
def default_fw(make):
    return service.ensure_default_framework()


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def by_code(framework):
    return {c.code: c for c in framework.competencies}


def test_default_framework_is_installed_once_and_quickly(make):
    started = time.perf_counter()
    fw = service.ensure_default_framework()
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0  # well under a second in practice; the bound only catches a pathological regression
    assert fw.registration_id is None and fw.code == "PHARM-TECH" and fw.name == "Pharmacy Technician"
    assert [lvl["code"] for lvl in fw.scale] == ["not_yet", "supervised", "competent", "trainer"]
    assert [lvl["proficient"] for lvl in fw.scale] == [False, False, True, True]
    assert [lvl["label"] for lvl in fw.scale] == ["Not yet competent", "Competent with supervision", "Competent",
                                                  "Can train others"]
    assert "USP" in fw.source and "ASHP/ACPE" in fw.source and "PTCB" in fw.source
    total = count(Competency)
    assert 60 <= total <= 200

    again = service.ensure_default_framework()
    assert again.id == fw.id
    assert count(Framework) == 1 and count(Competency) == total
    installs = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "framework.installed")).all()
    assert len(installs) == 1
    assert installs[0].entity_id == fw.id and installs[0].actor_role == "system"
    assert installs[0].after["competencies"] == total


def test_default_framework_content_follows_the_standards(default_fw):
    comps = by_code(default_fw)
    tops = [c.code for c in sorted((c for c in comps.values() if c.parent_id is None), key=lambda c: c.position)]
    assert tops == ["A1", "A2", "A3", "A4", "A5", "XT", "USP", "CRED"]
    # USP <797>: 6 months for Category 1-2, 3 months for Category 3, training yearly; <800> and <795> yearly.
    assert comps["USP797-01"].revalidation_months == 12
    assert comps["USP797-02"].revalidation_months == 6 and "Category 1 and 2" in comps["USP797-02"].title
    assert comps["USP797-03"].revalidation_months == 3 and "Category 3" in comps["USP797-03"].title
    assert comps["USP797-04"].revalidation_months == 6 and comps["USP797-05"].revalidation_months == 3
    assert comps["USP800-01"].revalidation_months == 12
    assert "new hazardous drug, equipment or procedure" in comps["USP800-01"].description
    assert comps["USP795-01"].revalidation_months == 12
    assert any("fingertip" in step for step in comps["USP797-02"].checklist)
    assert comps["CRED-CPHT"].revalidation_months == 24 and comps["CRED-CSPT"].revalidation_months == 12
    certificates = {c.title.removeprefix("PTCB ").removesuffix(" Certificate") for c in comps.values()
                    if c.parent is comps["CRED"] and c.title.endswith(" Certificate")}
    assert certificates == PTCB_CERTIFICATES
    departments = {c.code: c for c in comps.values() if c.parent is comps["XT"]}
    assert set(departments) == {"XT-COM", "XT-CEN", "XT-IV", "XT-NSC", "XT-HD", "XT-LTC", "XT-SPM", "XT-NUC",
                                "XT-AUT", "XT-TOC", "XT-OR", "XT-340B", "XT-DSCSA", "XT-CSO", "XT-IDS", "XT-BIL",
                                "XT-MSA", "XT-VAC", "XT-TEL"}
    # Departments added in 2026.1 carry checklists like the others, and every item names its source.
    for code in ("XT-AUT", "XT-TOC", "XT-OR", "XT-340B", "XT-DSCSA", "XT-CSO", "XT-IDS", "XT-BIL", "XT-MSA",
                 "XT-VAC", "XT-TEL"):
        items = departments[code].children
        assert len(items) >= 2 and all(len(i.checklist) >= 4 and "Source: " in i.description for i in items), code
    assert comps["XT-IV-03"].revalidation_months == 12  # USP <797> (2023): cleaning competency every 12 months
    central = {c.title for c in comps["XT-CEN"].children}
    assert {"Cart fill", "Automated dispensing cabinet restock", "Controlled-substance vault",
            "Unit-dose repackaging"} <= central
    advanced = [c.title for c in comps["A1"].children if "(advanced)" in c.title]
    assert any("Supervise" in t for t in advanced) and any("Train" in t for t in advanced)
    assert any("clinicians and payers" in t for t in advanced)
    for comp in comps.values():
        assert set(comp.departments) <= DEPARTMENTS, comp.code
        assert set(comp.evidence_kinds) <= set(EVIDENCE_KINDS), comp.code
        assert len(comp.title) <= 100, comp.code  # fits Moodle's short name
        assert comp.identifier == competency_identifier(default_fw.identifier, comp.code)
        if not comp.children:
            assert comp.evidence_kinds, f"leaf {comp.code} accepts no evidence kind"
    assert all(c.evidence_kinds == ["certification"] for c in comps["CRED"].children)


def test_tenants_see_shipped_frameworks_and_their_own_only(make, default_fw):
    reg_a, reg_b = make.registration(), make.registration()
    mine = service.import_framework(None, json.dumps(SMALL_NATIVE), registration_id=reg_a.id).framework
    theirs = service.import_framework(None, json.dumps(SMALL_NATIVE), registration_id=reg_b.id).framework
    actor_a = make.actor(make.course(reg_a), "manager")

    assert {f.id for f in service.list_frameworks(actor_a)} == {default_fw.id, mine.id}
    assert service.get_framework(actor_a, mine.id) is mine
    with pytest.raises(NotFound):
        service.get_framework(actor_a, theirs.id)
    with pytest.raises(NotFound):
        service.get_tree(actor_a, theirs.id)
    with pytest.raises(NotFound):
        service.export_framework(actor_a, theirs.id, "case")
    assert service.find_framework(actor_a, "LOCAL").id == mine.id
    with pytest.raises(DomainError, match="Several frameworks"):
        service.find_framework(None, "LOCAL")
    assert service.competency_counts([mine.id, default_fw.id]) == {mine.id: 1,
                                                                   default_fw.id: len(default_fw.competencies)}


def test_tree_is_loaded_in_one_query(app, make, default_fw):
    fw_id = default_fw.id
    db.session.expunge_all()  # nothing cached: every attribute must come from the one query
    statements = []

    def count_statement(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count_statement)
    try:
        tree = service.get_tree(None, fw_id)
        walked = [(depth, c.code, c.parent.code if c.parent else None, c.framework.code, len(c.children))
                  for depth, c in tree.walk()]
        scale = tree.framework.scale
        listed = len(tree.framework.competencies)
    finally:
        event.remove(db.engine, "before_cursor_execute", count_statement)
    assert len(statements) == 1
    assert len(walked) == listed == len(tree)
    assert walked[0] == (0, "A1", None, "PHARM-TECH", 11)
    assert ("USP797-02" in {w[1] for w in walked}) and scale[0]["code"] == "not_yet"
    depth_of = {code: depth for depth, code, *_ in walked}
    assert depth_of["XT"] == 0 and depth_of["XT-IV"] == 1 and depth_of["XT-IV-01"] == 2
    seen = set()
    for _, code, parent, *_ in walked:  # parents come before their children
        assert parent is None or parent in seen
        seen.add(code)
    for comp in tree.by_id.values():  # siblings in position order
        assert [c.position for c in comp.children] == sorted(c.position for c in comp.children)


def test_manager_chooses_course_frameworks_with_audit(make, default_fw):
    reg = make.registration()
    course = make.course(reg)
    manager = make.actor(course, "manager")
    local = service.import_framework(manager, json.dumps(SMALL_NATIVE)).framework
    assert local.registration_id == reg.id

    chosen = service.choose_course_frameworks(manager, course.id, [default_fw.id, local.id, default_fw.id])
    assert [f.id for f in chosen] == [local.id, default_fw.id]  # by name: "Local skills" < "Pharmacy Technician"
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "course.frameworks_chosen")).one()
    assert entry.before == {"framework_ids": []}
    assert entry.after == {"framework_ids": sorted([default_fw.id, local.id])}
    assert entry.course_id == course.id and entry.actor_id == manager.person.id and entry.registration_id == reg.id

    chosen = service.choose_course_frameworks(manager, course.id, [default_fw.id])
    assert [f.id for f in chosen] == [default_fw.id]
    assert db.session.scalars(select(CourseFramework.framework_id)).all() == [default_fw.id]
    service.choose_course_frameworks(manager, course.id, [default_fw.id])  # no change, no audit row
    assert db.session.scalar(select(func.count()).where(AuditEntry.action == "course.frameworks_chosen")) == 2

    technician = make.actor(course, "technician")
    assert [f.id for f in service.course_frameworks(technician, course.id)] == [default_fw.id]


def test_choosing_frameworks_is_refused_outside_the_rules(make, default_fw):
    reg, other_reg = make.registration(), make.registration()
    course = make.course(reg)
    other_course = make.course(other_reg)
    manager = make.actor(course, "manager")
    other_manager = make.actor(other_course, "manager")
    foreign = service.import_framework(other_manager, json.dumps(SMALL_NATIVE)).framework

    with pytest.raises(Forbidden):
        service.choose_course_frameworks(make.actor(course, "technician"), course.id, [default_fw.id])
    with pytest.raises(Forbidden):  # a manager of another course of the same tenant
        service.choose_course_frameworks(make.actor(make.course(reg), "manager"), course.id, [default_fw.id])
    with pytest.raises(NotFound):  # another tenant's course
        service.choose_course_frameworks(manager, other_course.id, [default_fw.id])
    with pytest.raises(NotFound):  # another tenant's framework
        service.choose_course_frameworks(manager, course.id, [foreign.id])
    with pytest.raises(DomainError, match="at least one"):
        service.choose_course_frameworks(manager, course.id, [])
    with pytest.raises(NotFound):
        service.course_frameworks(make.actor(make.course(reg), "technician"), course.id)
    assert count(CourseFramework) == 0
    assert db.session.scalar(select(func.count()).where(AuditEntry.action == "course.frameworks_chosen")) == 0


def test_import_by_tenant_members(make):
    reg, other = make.registration(), make.registration()
    course = make.course(reg)
    with pytest.raises(Forbidden):
        service.import_framework(make.actor(course, "technician"), json.dumps(SMALL_NATIVE))
    manager = make.actor(course, "manager")
    with pytest.raises(Forbidden):
        service.import_framework(manager, json.dumps(SMALL_NATIVE), registration_id=other.id)
    assert count(Framework) == 0
    result = service.import_framework(manager, json.dumps(SMALL_NATIVE).encode())
    assert result.format == "native" and result.competencies == 1
    assert result.framework.registration_id == reg.id
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "framework.imported")).one()
    assert entry.registration_id == reg.id and entry.after["format"] == "native"
    assert uuid.UUID(result.framework.identifier)


# --- command line -------------------------------------------------------------------------------------------


def test_cli_load_list_export_import(app, tmp_path):
    runner = app.test_cli_runner()
    out = runner.invoke(args=["frameworks", "load-default"])
    assert out.exit_code == 0, out.output
    assert "installed" in out.output
    assert "already installed" in runner.invoke(args=["frameworks", "load-default"]).output

    listed = runner.invoke(args=["frameworks", "list", "--json"])
    rows = json.loads(listed.output)
    assert len(rows) == 1 and rows[0]["code"] == "PHARM-TECH" and rows[0]["tenant"] is None
    total = rows[0]["competencies"]

    case_file, csv_file = tmp_path / "pt.json", tmp_path / "pt.csv"
    for fmt, path in (("case", case_file), ("moodle-csv", csv_file)):
        res = runner.invoke(args=["frameworks", "export", "PHARM-TECH", "--format", fmt, "--output", str(path)])
        assert res.exit_code == 0, res.output
    assert json.loads(case_file.read_text())["CFDocument"]["title"] == "Pharmacy Technician"
    stdout = runner.invoke(args=["frameworks", "export", str(rows[0]["id"]), "--format", "moodle-csv"])
    assert stdout.output == csv_file.read_text()

    res = runner.invoke(args=["frameworks", "import", str(csv_file)])
    assert res.exit_code == 0, res.output
    assert f"{total} competencies" in res.output and "global" in res.output
    res = runner.invoke(args=["frameworks", "import", str(case_file)])  # same code and version: refused
    assert res.exit_code == 1 and "already exists" in res.output
    res = runner.invoke(args=["frameworks", "import", str(case_file), "--framework-version", "copy"])
    assert res.exit_code == 0, res.output

    bad = tmp_path / "bad.csv"
    bad.write_text(csv_file.read_text().replace("\nA1,A1-01,", "\nNOPE,A1-01,", 1))
    res = runner.invoke(args=["frameworks", "import", str(bad), "--framework-version", "bad"])
    assert res.exit_code == 1
    assert "Parent ID number" in res.output and "NOPE" in res.output and "line " in res.output
    res = runner.invoke(args=["frameworks", "export", "NOPE", "--format", "case"])
    assert res.exit_code == 1 and "No framework" in res.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Framework)) == 3
        assert db.session.scalar(select(func.count()).select_from(Competency)) == 3 * total


def test_cli_import_for_one_tenant(app, tmp_path):
    with app.app_context():
        from tests.conftest import Factory

        reg = Factory().registration(issuer="https://moodle.example.org", client_id="abc")
        reg_id = reg.id
        db.session.commit()
    path = tmp_path / "local.json"
    path.write_text(json.dumps(SMALL_NATIVE))
    runner = app.test_cli_runner()
    res = runner.invoke(args=["frameworks", "import", str(path), "--issuer", "https://moodle.example.org"])
    assert res.exit_code != 0 and "--client-id" in res.output
    res = runner.invoke(args=["frameworks", "import", str(path), "--issuer", "https://moodle.example.org",
                              "--client-id", "abc"])
    assert res.exit_code == 0, res.output
    with app.app_context():
        fw = db.session.scalars(select(Framework)).one()
        assert fw.registration_id == reg_id
        assert db.session.scalars(select(AuditEntry.registration_id)).one() == reg_id


def test_demo_load_installs_the_default_framework(app):
    runner = app.test_cli_runner()
    with app.app_context():  # the demo group is a plain click group: it runs in the caller's app context
        res = runner.invoke(args=["demo", "load", "--base-url", "http://127.0.0.1:5000"])
        assert res.exit_code == 0, res.output
        assert service.default_framework() is not None
        res = runner.invoke(args=["demo", "load", "--base-url", "http://127.0.0.1:5000"])
        assert res.exit_code == 0, res.output
        assert db.session.scalar(select(func.count()).select_from(Framework)) == 1


def test_a_new_shipped_version_installs_beside_the_old_one_without_touching_its_sign_offs(make):
    """An installation running an older shipped version (here a stand-in "2025.1" with a sign-off on its XT-IV-03)
    gets the new version from `load-default`; the old framework, its competencies and the sign-off stay as they
    were, and courses keep the version they chose."""
    from lti_tool.models import CourseFramework, SignOff
    from tests.support.competency_world import World

    world = World(make)
    old = world.framework
    old.registration_id, old.code, old.version = None, "PHARM-TECH", "2025.1"
    world.garb.code, world.garb.revalidation_months = "XT-IV-03", None
    signed = world.signed(world.garb)
    before = [(c.id, c.code, c.title, c.revalidation_months) for c in old.competencies]

    new = service.ensure_default_framework()
    assert (new.code, new.version) == ("PHARM-TECH", "2026.1") and new.id != old.id
    assert new.identifier != old.identifier  # a new version is a new CASE document
    db.session.expire_all()
    assert [(c.id, c.code, c.title, c.revalidation_months) for c in old.competencies] == before
    assert db.session.get(SignOff, signed.id).competency_id == world.garb.id
    assert db.session.scalars(select(CourseFramework.framework_id).where(
        CourseFramework.course_id == world.course.id)).all() == [old.id]
    assert by_code(new)["XT-IV-03"].revalidation_months == 12
