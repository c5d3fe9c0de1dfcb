"""Career pathways: the shipped definitions, CPhT-Adv and CSPT eligibility, the employer ladder, explanations,
percentages and access."""
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.models import Competency, CourseFramework, Evidence, EvidenceCompetency, SignOff
from lti_tool.services import DomainError, NotFound, pathways, reviews
from tests.support.competency_world import make_framework

AS_OF = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SIGNED = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
CODES = (
    [f"A2-0{n}" for n in range(1, 4)] + [f"A3-0{n}" for n in range(1, 6)] + ["A5-01", "A5-02"]
    + ["A4-01", "A4-02", "A4-03", "A1-08", "A1-09", "A3-08"]
    + ["CRED-CPHT", "CRED-CSPT", "CRED-EXCPT", "USP797-01", "USP797-02", "USP797-04"]
)
DEPARTMENT_ITEMS = {"XT-CEN": ("central", 3), "XT-IV": ("iv_room", 2), "XT-COM": ("community", 2)}
MONTHS = {"USP797-02": 6, "USP797-04": 6, "USP797-01": 12, "CRED-CPHT": 24}


class Portfolio:
    """A course using a framework with the default framework's codes, a manager and a technician."""

    def __init__(self, make):
        self.reg = make.registration()
        self.course = make.course(self.reg)
        specs = [{"code": c, "title": f"Title of {c}", "revalidation_months": MONTHS.get(c)} for c in CODES]
        framework, rows = make_framework(self.reg, code="pharm", competencies=specs)
        self.by_code = {r.code: r for r in rows}
        position = len(rows)
        for parent_code, (tag, n) in DEPARTMENT_ITEMS.items():
            parent = Competency(framework_id=framework.id, code=parent_code, title=parent_code, departments=[tag],
                                position=position)
            db.session.add(parent)
            db.session.flush()
            for i in range(1, n + 1):
                child = Competency(framework_id=framework.id, parent_id=parent.id, code=f"{parent_code}-0{i}",
                                   title=f"{parent_code} skill {i}", departments=[tag], position=position + i)
                db.session.add(child)
                self.by_code[child.code] = child
            position += n + 1
        db.session.add(CourseFramework(course_id=self.course.id, framework_id=framework.id))
        db.session.flush()
        self.manager = make.actor(self.course, "manager")
        self.tech = make.actor(self.course, "technician")
        self.make = make

    def evidence(self, kind, data, codes=(), title="Evidence", status="draft"):
        row = Evidence(person_id=self.tech.person.id, course_id=self.course.id, kind=kind, title=title, data=data,
                       status=status, revision=1, created_at=datetime(2015, 1, 1, tzinfo=UTC))
        row.competency_links = [EvidenceCompetency(competency_id=self.by_code[c].id) for c in codes]
        db.session.add(row)
        db.session.flush()
        return row

    def achieve(self, *codes, at=SIGNED, rating="competent"):
        for code in codes:
            ev = self.evidence("cross_training", {"department": "central"}, [code], title=f"Evidence for {code}")
            [request] = reviews.request_review(self.tech, ev.id, now=at)
            reviews.sign_off(self.manager, request.id, rating, "observed", now=at)

    def certificate(self, credential, title=None, expiry=None, other=None):
        data = {"credential": credential, "number": "123", "issued_date": "2020-01-01"}
        if expiry:
            data["expiry_date"] = expiry
        if other:
            data["credential_other"] = other
        return self.evidence("certification", data, title=title or credential)

    def progress(self, actor=None, **kw):
        kw.setdefault("as_of", AS_OF)
        results = pathways.progress(actor or self.tech, self.tech.person.id, **kw)
        return {p.code: p for p in results}


@pytest.fixture
def pf(make):
    return Portfolio(make)


def find(result, label):
    """The requirement with this label anywhere in a pathway's tree."""
    stack = [result.requirement]
    while stack:
        node = stack.pop()
        if node.label == label:
            return node
        stack.extend(node.children)
    raise AssertionError(f"no requirement {label!r}")


# --- Definitions ------------------------------------------------------------------------------------------

def test_shipped_definitions_load():
    defs = pathways.default_definitions()
    assert [p["code"] for p in defs["pathways"]] == ["cpht_adv", "cspt", "tech_1", "tech_2", "tech_3", "lead"]
    assert defs["declarations"] == ["pharmacy_experience_start", "sterile_compounding_start"]
    assert len(defs["certificate_sets"]["ptcb_assessment_based"]["credentials"]) == 11


def test_shipped_pathways_name_real_codes_of_the_default_framework():
    """Every explicit code and prefix in the pathways file matches the shipped default framework."""
    framework_file = Path(pathways.DATA_FILE).parent / "pharmacy_technician_framework.json"
    if not framework_file.exists():
        pytest.skip("the default framework data file is not there")
    codes = set()

    def walk(items):
        for item in items:
            codes.add(item["code"])
            walk(item.get("children") or [])

    walk(json.loads(framework_file.read_text())["competencies"])
    defs = pathways.default_definitions()
    referenced, prefixes = set(), set()

    def collect(req):
        chosen = req.get("select") or {}
        referenced.update(chosen.get("codes") or [])
        prefixes.update(chosen.get("code_prefixes") or [])
        for part in req.get("requirements") or []:
            collect(part)

    for pathway in defs["pathways"]:
        collect(pathway["requirement"])
    for cred in defs["credentials"].values():
        referenced.update(cred.get("competency_codes") or [])
    assert referenced - codes == set()
    assert all(any(c.startswith(p) for c in codes) for p in prefixes)


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(format="other"), "format"),
    (lambda d: d["pathways"][0]["requirement"].update(type="magic"), "pathways[0].requirement: 'type'"),
    (lambda d: d["pathways"][0]["requirement"]["requirements"][0].update(credential="nope"), "unknown credential"),
    (lambda d: d["pathways"][0]["requirement"]["requirements"][0].pop("label"), "needs a 'label'"),
    (lambda d: d["pathways"][3]["requirement"]["requirements"][0].update(pathway="tech_9"), "unknown pathway"),
    (lambda d: d["pathways"][2]["requirement"]["requirements"].append(
        {"type": "pathway", "pathway": "lead", "label": "Lead"}), "in a circle: tech_1 -> lead"),
    (lambda d: d["pathways"][2]["requirement"]["requirements"][1].update(min=0), "'min'"),
    (lambda d: d["pathways"][2]["requirement"]["requirements"][1].update(select={}), "'select' needs"),
    (lambda d: d["pathways"][1].update(code="cpht_adv"), "used twice"),
    (lambda d: d["certificate_sets"]["ptcb_assessment_based"]["credentials"].append("zzz"), "unknown credentials"),
])
def test_malformed_definitions_are_refused_with_the_place(change, message):
    data = json.loads(Path(pathways.DATA_FILE).read_text())
    change(data)
    with pytest.raises(pathways.DefinitionError) as exc:
        pathways.load_definitions(text=json.dumps(data))
    assert message in str(exc.value)


def test_unreadable_definitions():
    with pytest.raises(pathways.DefinitionError):
        pathways.load_definitions(text="{not json")


# --- CPhT-Adv ---------------------------------------------------------------------------------------------

def test_cpht_adv_four_certificates_or_three_and_cspt(pf):
    adv = pf.progress()["cpht_adv"]
    assert not adv.met and adv.percent == 0
    assert find(adv, "An active PTCB CPhT certification").explanation.startswith("Not held yet")

    pf.certificate("ptcb_cpht", "CPhT certificate", expiry="2026-12-31")
    pf.evidence("responsibility", {"role": "inventory_lead", "start_date": "2019-03-01"}, title="Inventory lead")
    for code in ("ptcb_medication_history", "ptcb_billing_reimbursement", "ptcb_regulatory_compliance"):
        pf.certificate(code)
    adv = pf.progress()["cpht_adv"]
    assert not adv.met
    assert find(adv, "An active PTCB CPhT certification").met
    experience = find(adv, "3 years' experience as a technician in the last 8 years")
    assert experience.met and "6.3 years of the 3 needed" in experience.explanation
    four = find(adv, "4 PTCB assessment-based certificates")
    assert not four.met and four.progress == 0.75
    assert four.explanation == ("3 of the 4 PTCB assessment-based certificates needed held: Medication History, "
                                "Billing and Reimbursement, Regulatory Compliance. 1 more needed.")
    # all_of(1, 1, any_of(max(0.75, mean(1, 0)))) -> (1 + 1 + 0.75) / 3
    assert adv.percent == 91

    pf.certificate("ptcb_cspt", "CSPT")
    adv = pf.progress()["cpht_adv"]
    assert adv.met and adv.percent == 100
    assert find(adv, "4 assessment-based certificates, or 3 and the CSPT").explanation == \
        "Met through: 3 certificates and the CSPT."


def test_cpht_adv_alternatives_and_limits(pf):
    pf.certificate("ptcb_cpht")
    for code in ("ptcb_medication_history", "ptcb_billing_reimbursement", "ptcb_regulatory_compliance",
                 "ptcb_nonsterile_compounding"):
        pf.certificate(code)
    # Experience older than 8 years does not count; only the part inside the window does.
    pf.evidence("responsibility", {"start_date": "2012-01-01", "end_date": "2018-06-01"}, title="Old job")
    adv = pf.progress()["cpht_adv"]
    experience = find(adv, "3 years' experience as a technician in the last 8 years")
    assert not experience.met and "1.0 year of the 3 needed" in experience.explanation
    assert find(adv, "4 PTCB assessment-based certificates").met
    # A declared start date fills the gap.
    adv = pf.progress(declarations={"pharmacy_experience_start": "2021-01-01"})["cpht_adv"]
    assert adv.met
    assert "a declared start date" in find(adv, "3 years' experience as a technician in the last 8 years").explanation
    # An expired CPhT is not active.
    later = pf.progress(as_of=datetime(2030, 1, 1, tzinfo=UTC))["cpht_adv"]
    assert not later.met


def test_expired_and_future_certificates_do_not_count(pf):
    pf.certificate("ptcb_cpht", expiry="2025-01-31")
    result = find(pf.progress()["cpht_adv"], "An active PTCB CPhT certification")
    assert not result.met and "expired on 2025-01-31" in result.explanation
    pf.achieve("CRED-CPHT")  # a signed-off credential competency counts too
    result = find(pf.progress()["cpht_adv"], "An active PTCB CPhT certification")
    assert result.met and result.explanation == "Held: CRED-CPHT signed off."


# --- CSPT -------------------------------------------------------------------------------------------------

def test_cspt_program_experience_and_attestation(pf):
    pf.certificate("ptcb_cpht")
    cspt = pf.progress(declarations={"sterile_compounding_start": "2024-03-01"})["cspt"]
    assert not cspt.met
    pathway_one = find(cspt, "A recognized training program and 1 year's continuous experience")
    assert not pathway_one.met
    assert find(cspt, "1 year's continuous sterile compounding experience").met

    pf.certificate("other", "IV training program", other="PTCB-recognized sterile compounding program")
    attestation_label = "A supervisor-signed sterile compounding competency attestation"
    cspt = pf.progress(declarations={"sterile_compounding_start": "2024-03-01"})["cspt"]
    assert find(cspt, "Sterile compounding training and experience").met
    attestation = find(cspt, attestation_label)
    assert not attestation.met and "Not yet: USP797-01" in attestation.explanation

    pf.achieve("USP797-01", "USP797-02", "USP797-04")
    cspt = pf.progress(declarations={"sterile_compounding_start": "2024-03-01"})["cspt"]
    assert cspt.met and cspt.percent == 100
    # Six months later the garbing and media-fill sign-offs have expired.
    later = pf.progress(declarations={"sterile_compounding_start": "2024-03-01"},
                        as_of=datetime(2025, 11, 2, tzinfo=UTC))["cspt"]
    lapsed = find(later, attestation_label)
    assert not lapsed.met and "Expired and needing revalidation: USP797-02, USP797-04" in lapsed.explanation


def test_cspt_experience_from_iv_room_evidence_must_be_continuous(pf):
    pf.certificate("ptcb_cpht")
    label = "1 year's continuous sterile compounding experience"
    pf.evidence("cross_training", {"department": "iv_room", "start_date": "2024-01-01", "end_date": "2024-05-31"})
    pf.evidence("cross_training", {"department": "iv_room", "start_date": "2024-08-01", "end_date": "2025-01-31"})
    pf.evidence("cross_training", {"department": "central", "start_date": "2024-06-01", "end_date": "2024-07-31"})
    gap = find(pf.progress()["cspt"], label)
    assert not gap.met and "Longest continuous stretch in the last 8 years: 0.5 years" in gap.explanation
    # A responsibility linked to an IV-room competency closes the gap (department from the competency's tags).
    pf.evidence("responsibility", {"start_date": "2024-05-15", "end_date": "2024-08-15"}, codes=["XT-IV-01"])
    joined = find(pf.progress()["cspt"], label)
    assert joined.met and "1.1 years of the 1 needed (from 3 evidence items; 0.0 years of it attested" \
        in joined.explanation


# --- Employer ladder --------------------------------------------------------------------------------------

def test_ladder_levels_build_on_each_other(pf):
    ladder = pf.progress()
    assert [ladder[c].percent for c in ("tech_1", "tech_2", "tech_3", "lead")] == [0, 0, 0, 0]

    pf.achieve("A2-01", "A2-02", "A3-01", "A3-02")
    tech1 = pf.progress()["tech_1"]
    foundation = find(tech1, "Foundational professional knowledge (every A2 item)")
    assert foundation.explanation == "2 of 3 achieved: A2-01, A2-02. Not yet: A2-03 Title of A2-03."
    # (2/3 + 2/4 + 0/2) / 3
    assert tech1.percent == 38 and not tech1.met

    pf.achieve("A2-03", "A3-03", "A3-04", "A5-01", "A5-02")
    ladder = pf.progress()
    assert ladder["tech_1"].met and ladder["tech_1"].percent == 100
    assert find(ladder["tech_2"], "Technician I").met

    pf.certificate("ptcb_cpht")
    pf.achieve("XT-CEN-01", "XT-CEN-02", "XT-CEN-03", "XT-IV-01", "XT-IV-02", "A4-01", "A4-02", "A4-03")
    ladder = pf.progress()
    assert ladder["tech_2"].met
    departments = find(ladder["tech_3"], "Cross-trained in 2 departments")
    assert departments.met
    assert departments.explanation == "Cross-trained in 2 departments (Hospital central pharmacy, IV room / " \
                                      "sterile compounding)."

    pf.achieve("A1-08", "A3-08")
    pf.certificate("ptcb_medication_history")
    ladder = pf.progress()
    assert ladder["tech_3"].met
    lead = ladder["lead"]
    assert not lead.met
    assert find(lead, "Cross-trained in 3 departments").explanation.endswith("; 3 needed.")
    assert find(lead, "A signed-off quality-improvement project").explanation == "0 of 1 signed off item(s)."

    qi = pf.evidence("qi_project", {"aim": "Fewer missing doses"}, ["A1-09"], title="Missing doses QI")
    [request] = reviews.request_review(pf.tech, qi.id, now=SIGNED)
    reviews.sign_off(pf.manager, request.id, "competent", "verified_document", now=SIGNED)
    pf.achieve("XT-COM-01")
    lead = pf.progress()["lead"]
    assert lead.met and lead.percent == 100
    assert [r.met for r in lead.requirements] == [True, True, True, True]


def test_non_proficient_and_revoked_sign_offs_do_not_advance_the_ladder(pf):
    pf.achieve("A2-01", rating="supervised")
    assert "0 of 3 achieved" in find(pf.progress()["tech_1"], "Foundational professional knowledge (every A2 item)") \
        .explanation
    pf.achieve("A2-02")
    sign_off = db.session.scalars(select(SignOff).where(SignOff.proficient.is_(True))).one()
    reviews.revoke(pf.manager, sign_off.id, "Wrong technician", now=SIGNED)
    assert "0 of 3 achieved" in find(pf.progress()["tech_1"], "Foundational professional knowledge (every A2 item)") \
        .explanation


def test_selectors_missing_from_the_course_frameworks_say_so(pf, make):
    other = make.course(pf.reg)
    make.member(other, pf.tech.person, "technician")
    framework, _ = make_framework(pf.reg, code="tiny", competencies=[{"code": "Z1", "title": "Z"}])
    db.session.add(CourseFramework(course_id=other.id, framework_id=framework.id))
    result = pathways.progress(pf.tech, pf.tech.person.id, course_id=other.id, as_of=AS_OF,
                               pathway_codes=["tech_1"])[0]
    assert result.percent == 0
    assert find(result, "Foundational professional knowledge (every A2 item)").explanation == \
        "None of these competencies are in the frameworks of the technician's courses."


# --- Access -----------------------------------------------------------------------------------------------

def test_progress_access(pf, make):
    assert pathways.progress(pf.manager, pf.tech.person.id, course_id=pf.course.id, as_of=AS_OF)
    other_tech = make.actor(pf.course, "technician")
    with pytest.raises(NotFound):
        pathways.progress(other_tech, pf.tech.person.id)
    with pytest.raises(NotFound):
        pathways.progress(make.actor(make.course(pf.reg), "manager"), pf.tech.person.id)
    stranger = Portfolio(make)
    with pytest.raises(NotFound):
        pathways.progress(stranger.manager, pf.tech.person.id)
    with pytest.raises(NotFound):
        pathways.progress(pf.tech, pf.tech.person.id, course_id=make.course(pf.reg).id)
    with pytest.raises(DomainError) as exc:
        pathways.progress(pf.tech, pf.tech.person.id, declarations={"pharmacy_experience_start": "soon",
                                                                    "shoe_size": "2020-01-01"})
    assert exc.value.code == "invalid_declaration"
    assert set(exc.value.fields) == {"pharmacy_experience_start", "shoe_size"}
