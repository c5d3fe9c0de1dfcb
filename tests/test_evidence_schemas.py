"""Each evidence kind's schema: good input and what it is stored as; each bad input and the exact message."""
from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest
from marshmallow import ValidationError

from lti_tool.schemas.evidence import SCHEMAS, editable_payload, evidence_out, load_evidence

TODAY = date(2025, 6, 30)

GOOD = {
    "cross_training": {
        "title": "IV room cross-training", "competency_ids": [3],
        "department": "iv_room", "skills": ["Garbing", "  Aseptic technique "],
        "trainer_name": "Dana Lee, CPhT, CSPT", "trainer_person_id": 7, "hours": "16.5",
        "start_date": "2025-03-03", "end_date": "2025-03-07",
        "checklist_steps": ["Hand hygiene", "Garbing order"],
    },
    "responsibility": {
        "title": "Inventory lead for the central pharmacy", "competency_ids": [4],
        "role": "inventory_lead", "scope": "Weekly ordering and the monthly controlled-substance count.",
        "start_date": "2024-09-01", "supervisor": "Pat Kim, PharmD",
    },
    "qi_project": {
        "title": "Cutting cart-fill errors", "competency_ids": [5, 6],
        "problem": "Missing doses on the 6 a.m. cart fill.", "aim": "Halve missing doses in 3 months.",
        "measures": ["Missing doses per 1,000 fills"],
        "pdsa_cycles": [
            {"plan": "Second check", "do": "Two weeks", "study": "12 -> 7", "act": "Adopt", "date": "2025-01-15"},
            {"plan": "Barcode bins", "do": "One month", "study": "7 -> 5", "act": "Adapt", "date": "2025-03-01"},
        ],
        "results": "Missing doses fell from 12 to 5 per 1,000 fills.", "role": "Project lead",
        "team": ["Sam Ortiz", "Kai Chen"],
    },
    "certification": {
        "title": "PTCB CPhT", "competency_ids": [8],
        "credential": "ptcb_cpht", "number": "123456", "issued_date": "2024-01-31", "expiry_date": "2026-01-31",
    },
    "continuing_education": {
        "title": "Pharmacy law update for technicians", "competency_ids": [9],
        "uan": "0197 - 0000 - 24 - 001 - l03 - t", "hours": 1.25, "completion_date": "2025-02-10",
        "provider_name": "State Pharmacy Association",
    },
}


def load(kind, **changes):
    payload = {**GOOD[kind], **changes}
    for key, value in changes.items():
        if value is DROP:
            del payload[key]
    return load_evidence(kind, payload, today=TODAY)


DROP = object()


def errors_of(kind, **changes) -> dict:
    with pytest.raises(ValidationError) as caught:
        load(kind, **changes)
    return caught.value.messages


# -- good input -----------------------------------------------------------------------------------------------

def test_cross_training_good():
    title, data, competency_ids = load("cross_training")
    assert title == "IV room cross-training"
    assert competency_ids == [3]
    assert data == {
        "department": "iv_room", "skills": ["Garbing", "Aseptic technique"], "trainer_name": "Dana Lee, CPhT, CSPT",
        "trainer_person_id": 7, "hours": 16.5, "start_date": "2025-03-03", "end_date": "2025-03-07",
        "checklist_steps": ["Hand hygiene", "Garbing order"],
    }


def test_cross_training_other_department_with_text():
    _, data, _ = load("cross_training", department="other", department_other="Investigational drugs",
                      checklist_steps=DROP, trainer_person_id=DROP)
    assert data["department"] == "other" and data["department_other"] == "Investigational drugs"
    assert data["checklist_steps"] == [] and "trainer_person_id" not in data


def test_responsibility_good_ongoing_and_ended():
    title, data, ids = load("responsibility")
    assert (title, ids) == ("Inventory lead for the central pharmacy", [4])
    assert data == {"role": "inventory_lead", "scope": "Weekly ordering and the monthly controlled-substance count.",
                    "start_date": "2024-09-01", "supervisor": "Pat Kim, PharmD"}
    _, data, _ = load("responsibility", end_date="2024-09-01", role="other", role_other="Sterile room scheduler")
    assert data["end_date"] == "2024-09-01" and data["role_other"] == "Sterile room scheduler"


def test_qi_project_good():
    title, data, ids = load("qi_project")
    assert ids == [5, 6]
    assert data["pdsa_cycles"][1] == {"plan": "Barcode bins", "do": "One month", "study": "7 -> 5", "act": "Adapt",
                                      "date": "2025-03-01"}
    assert data["measures"] == ["Missing doses per 1,000 fills"] and data["team"] == ["Sam Ortiz", "Kai Chen"]
    _, data, _ = load("qi_project", team=DROP)
    assert data["team"] == []


def test_certification_good_fills_in_the_issuer():
    title, data, _ = load("certification")
    assert data == {"credential": "ptcb_cpht", "number": "123456", "issued_date": "2024-01-31",
                    "expiry_date": "2026-01-31", "credential_label": "PTCB Certified Pharmacy Technician (CPhT)",
                    "issuer": "Pharmacy Technician Certification Board (PTCB)"}
    _, data, _ = load("certification", credential="state_registration", state="TX",
                      issuing_body="Texas State Board of Pharmacy", expiry_date=DROP)
    assert data["issuer"] == "Texas State Board of Pharmacy" and data["state"] == "TX"
    assert "expiry_date" not in data
    _, data, _ = load("certification", credential="ptcb_hazardous_drug_management", expiry_date=None)
    assert data["credential_label"] == "PTCB Hazardous Drug Management Certificate"


@pytest.mark.parametrize("code", [
    "ptcb_cspt", "ptcb_cpht_adv", "ptcb_technician_product_verification", "ptcb_medication_history",
    "ptcb_billing_reimbursement", "ptcb_controlled_substances_diversion_prevention",
    "ptcb_immunization_administration", "ptcb_point_of_care_testing", "ptcb_medication_therapy_management",
    "ptcb_regulatory_compliance", "ptcb_supply_chain_inventory_management", "ptcb_nonsterile_compounding",
    "nha_excpt",
])
def test_every_named_credential_is_accepted(code):
    _, data, _ = load("certification", credential=code)
    assert data["credential"] == code and data["issuer"]


def test_continuing_education_good_stores_canonical_uan_and_parts():
    title, data, ids = load("continuing_education")
    assert (title, ids) == ("Pharmacy law update for technicians", [9])
    assert data == {
        "uan": "0197-0000-24-001-L03-T", "hours": 1.25, "completion_date": "2025-02-10",
        "provider_name": "State Pharmacy Association", "sterile_compounding": False,
        "uan_parts": {"provider": "0197", "joint_provider": False, "year": 2024, "sequence": "001", "format": "L",
                      "topic": "03", "audience": "T", "format_label": "live", "topic_label": "pharmacy law",
                      "audience_label": "pharmacy technician"},
    }
    _, data, _ = load("continuing_education", hours=2, sterile_compounding=True)
    assert data["hours"] == 2 and isinstance(data["hours"], int) and data["sterile_compounding"] is True


def test_duplicate_competency_ids_are_kept_once_and_notes_are_optional():
    _, data, ids = load("responsibility", competency_ids=[4, 5, 4], notes="  Covering for a colleague. ")
    assert ids == [4, 5] and data["notes"] == "Covering for a colleague."


def test_edit_round_trip_rebuilds_the_typed_fields():
    for kind in SCHEMAS:
        title, data, ids = load(kind)
        again = load_evidence(kind, editable_payload(title, data, ids), today=TODAY)
        assert again == (title, data, ids), kind


# -- bad input: the exact message each gets -------------------------------------------------------------------

COMMON_BAD = [
    (dict(title=DROP), {"title": ["This field is required."]}),
    (dict(title="   "), {"title": ["This field cannot be blank."]}),
    (dict(title="x" * 301), {"title": ["At most 300 characters."]}),
    (dict(competency_ids=DROP), {"competency_ids": ["Link at least one competency."]}),
    (dict(competency_ids=[]), {"competency_ids": ["Link between 1 and 20 competencies."]}),
    (dict(competency_ids=["3"]), {"competency_ids": {0: ["Not a valid integer."]}}),
    (dict(competency_ids=[0]), {"competency_ids": {0: ["Not a valid id."]}}),
    (dict(colour="blue"), {"colour": ["Unknown field."]}),
    (dict(id=5), {"id": ["Unknown field."]}),
    (dict(status="signed_off"), {"status": ["Unknown field."]}),
]


# Certifications and CE stand without a chosen competency (the service links a default one).
OPTIONAL_COMPETENCIES = ("certification", "continuing_education")


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
@pytest.mark.parametrize("changes, expected", COMMON_BAD)
def test_common_fields_bad(kind, changes, expected):
    if kind in OPTIONAL_COMPETENCIES and changes.get("competency_ids") in (DROP, []):
        assert load(kind, **changes)[2] == []
        return
    assert errors_of(kind, **changes) == expected


@pytest.mark.parametrize("kind", OPTIONAL_COMPETENCIES)
def test_certification_and_ce_stand_without_a_competency(kind):
    assert load(kind, competency_ids=DROP)[2] == []
    assert load(kind, competency_ids=None)[2] == []
    assert errors_of(kind, competency_ids=list(range(1, 22))) == {"competency_ids": ["Link at most 20 competencies."]}



@pytest.mark.parametrize("changes, expected", [
    (dict(department="icu"), {"department": [
        "Unknown department 'icu'; choose one of community, central, iv_room, nonsterile, hazardous, ltc, "
        "specialty, nuclear, automation, transitions_of_care, or_satellite, program_340b, dscsa, "
        "controlled_substances, investigational, infusion_billing, med_sync, vaccine_cold_chain, telepharmacy, "
        "other."]}),
    (dict(department="other"), {"department_other": ["Describe the department when you choose 'other'."]}),
    (dict(department_other="Oncology"), {"department_other": ["Only give this when the department is 'other'."]}),
    (dict(skills=[]), {"skills": ["Give between 1 and 30 skills."]}),
    (dict(skills=["Garbing", ""]), {"skills": {1: ["This field cannot be blank."]}}),
    (dict(skills="Garbing"), {"skills": ["Not a valid list."]}),
    (dict(trainer_name=DROP), {"trainer_name": ["This field is required."]}),
    (dict(trainer_person_id="7"), {"trainer_person_id": ["Not a valid integer."]}),
    (dict(hours=0), {"hours": ["Hours must be more than 0."]}),
    (dict(hours=-2), {"hours": ["Hours must be more than 0."]}),
    (dict(hours="1.1"), {"hours": ["Hours go in steps of 0.25 (a quarter hour)."]}),
    (dict(hours="lots"), {"hours": ["Enter hours as a number."]}),
    (dict(hours=True), {"hours": ["Enter hours as a number."]}),
    (dict(hours="NaN"), {"hours": ["Enter hours as a number."]}),
    (dict(hours=2081), {"hours": ["At most 2080 hours."]}),
    (dict(hours=121), {"hours": ["121 hours do not fit in 5 days (at most 120)."]}),
    (dict(hours=25, end_date="2025-03-03"), {"hours": ["25 hours do not fit in 1 day (at most 24)."]}),
    (dict(start_date="03/03/2025"), {"start_date": ["Not a valid date; use YYYY-MM-DD."]}),
    (dict(start_date="2025-02-30"), {"start_date": ["Not a valid date; use YYYY-MM-DD."]}),
    (dict(start_date="1969-12-31"), {"start_date": ["Dates before 1970 are not accepted."]}),
    (dict(end_date=DROP), {"end_date": ["This field is required."]}),
    (dict(end_date="2025-03-02"), {"end_date": ["The end date is before the start date."]}),
    (dict(end_date="2025-07-01"), {"end_date": ["This date is in the future."]}),
    (dict(checklist_steps=["x" * 501]), {"checklist_steps": {0: ["At most 500 characters."]}}),
])
def test_cross_training_bad(changes, expected):
    assert errors_of("cross_training", **changes) == expected


@pytest.mark.parametrize("changes, expected", [
    (dict(role="boss"), {"role": [
        "Unknown role 'boss'; choose one of new_staff_trainer, inventory_lead, safety_champion, qi_lead, "
        "scheduler, compliance_lead, other."]}),
    (dict(role="other"), {"role_other": ["Describe the role when you choose 'other'."]}),
    (dict(role_other="x"), {"role_other": ["Only give this when the role is 'other'."]}),
    (dict(scope=DROP), {"scope": ["This field is required."]}),
    (dict(scope=None), {"scope": ["This field is required."]}),
    (dict(scope="x" * 2001), {"scope": ["At most 2000 characters."]}),
    (dict(start_date="2025-07-01"), {"start_date": ["This date is in the future."]}),
    (dict(end_date="2024-08-31"), {"end_date": ["The end date is before the start date."]}),
    (dict(supervisor=""), {"supervisor": ["This field cannot be blank."]}),
])
def test_responsibility_bad(changes, expected):
    assert errors_of("responsibility", **changes) == expected


def _cycle(**changes):
    return {"plan": "p", "do": "d", "study": "s", "act": "a", "date": "2025-01-15", **changes}


@pytest.mark.parametrize("changes, expected", [
    (dict(problem=DROP), {"problem": ["This field is required."]}),
    (dict(aim=""), {"aim": ["This field cannot be blank."]}),
    (dict(measures=[]), {"measures": ["Give between 1 and 20 measures."]}),
    (dict(pdsa_cycles=[]), {"pdsa_cycles": ["Give between 1 and 20 PDSA cycles."]}),
    (dict(pdsa_cycles=[{k: v for k, v in _cycle().items() if k != "study"}]),
     {"pdsa_cycles": {0: {"study": ["This field is required."]}}}),
    (dict(pdsa_cycles=[_cycle(notes="x")]), {"pdsa_cycles": {0: {"notes": ["Unknown field."]}}}),
    (dict(pdsa_cycles=[_cycle(date="2025-07-02")]), {"pdsa_cycles": ["Cycle 1's date is in the future."]}),
    (dict(pdsa_cycles=[_cycle(date="2025-03-01"), _cycle(date="2025-02-01")]),
     {"pdsa_cycles": ["List the cycles in date order: cycle 2 is dated before cycle 1."]}),
    (dict(results=DROP), {"results": ["This field is required."]}),
    (dict(role=DROP), {"role": ["This field is required."]}),
    (dict(team=["Sam", 5]), {"team": {1: ["Not a valid string."]}}),
    (dict(team=["n"] * 51), {"team": ["At most 50 team members."]}),
])
def test_qi_project_bad(changes, expected):
    assert errors_of("qi_project", **changes) == expected


@pytest.mark.parametrize("changes, expected", [
    (dict(credential="cpht"), {"credential": [
        "Unknown credential 'cpht'; choose one of ptcb_cpht, ptcb_cspt, ptcb_cpht_adv, "
        "ptcb_technician_product_verification, ptcb_medication_history, ptcb_hazardous_drug_management, "
        "ptcb_billing_reimbursement, ptcb_controlled_substances_diversion_prevention, "
        "ptcb_immunization_administration, ptcb_point_of_care_testing, ptcb_medication_therapy_management, "
        "ptcb_regulatory_compliance, ptcb_supply_chain_inventory_management, ptcb_nonsterile_compounding, "
        "nha_excpt, state_registration, other."]}),
    (dict(credential="other", issuing_body="ASHP"),
     {"credential_other": ["Describe the credential when you choose 'other'."]}),
    (dict(credential="other", credential_other="ASHP sterile certificate"),
     {"issuing_body": ["Name the body that issued this credential."]}),
    (dict(credential="state_registration", issuing_body="Board"),
     {"state": ["Give the state that issued the registration or license."]}),
    (dict(credential="state_registration", issuing_body="Board", state="ZZ"),
     {"state": ["Not a US state or territory code (two letters, like TX)."]}),
    (dict(state="TX"), {"state": ["Only give a state for a state registration or license."]}),
    (dict(number=DROP), {"number": ["This field is required."]}),
    (dict(number="x" * 101), {"number": ["At most 100 characters."]}),
    (dict(issued_date=DROP), {"issued_date": ["This field is required."]}),
    (dict(issued_date="2025-07-01", expiry_date="2027-07-01"), {"issued_date": ["This date is in the future."]}),
    (dict(expiry_date="2024-01-31"), {"expiry_date": ["The expiration date must be after the issue date."]}),
    (dict(expiry_date="2023-12-31"), {"expiry_date": ["The expiration date must be after the issue date."]}),
])
def test_certification_bad(changes, expected):
    assert errors_of("certification", **changes) == expected


@pytest.mark.parametrize("changes, expected", [
    (dict(uan=DROP), {"uan": ["This field is required."]}),
    (dict(uan=197), {"uan": ["Enter the activity's UAN as text, like 0197-0000-17-001-L05-T."]}),
    (dict(uan="0197-1111-24-001-L03-T"),
     {"uan": ["The second part must be 0000 (one provider) or 9999 (joint providers), not '1111'."]}),
    (dict(uan="0197-0000-24-001-L03-Q"),
     {"uan": ["The last part must be P (pharmacists) or T (pharmacy technicians), not 'Q'."]}),
    (dict(hours=0), {"hours": ["Hours must be more than 0."]}),
    (dict(hours=0.3), {"hours": ["Hours go in steps of 0.25 (a quarter hour)."]}),
    (dict(hours=100.25), {"hours": ["At most 100 hours."]}),
    (dict(completion_date=DROP), {"completion_date": ["This field is required."]}),
    (dict(completion_date="2025-07-01"), {"completion_date": ["This date is in the future."]}),
    (dict(completion_date="2023-12-31"), {"completion_date": [
        "The activity was developed in 2024 (the UAN's year); it cannot be completed earlier."]}),
    (dict(provider_name=" "), {"provider_name": ["This field cannot be blank."]}),
    (dict(sterile_compounding="maybe"), {"sterile_compounding": ["Answer true or false."]}),
    (dict(uan_parts={"topic": "03"}), {"uan_parts": ["Unknown field."]}),
])
def test_continuing_education_bad(changes, expected):
    assert errors_of("continuing_education", **changes) == expected


def test_unknown_kind_and_non_object_payload():
    with pytest.raises(ValidationError) as caught:
        load_evidence("poster", {}, today=TODAY)
    assert caught.value.messages == {"kind": [
        "Unknown evidence kind 'poster'; choose one of cross_training, responsibility, qi_project, certification, "
        "continuing_education."]}
    with pytest.raises(ValidationError) as caught:
        load_evidence("qi_project", ["not", "a", "dict"], today=TODAY)
    assert caught.value.messages == {"_schema": ["Send the evidence as an object of fields."]}


def test_several_errors_are_reported_together():
    messages = errors_of("cross_training", hours=0, department="other", end_date="2025-01-01")
    assert messages == {"hours": ["Hours must be more than 0."],
                        "department_other": ["Describe the department when you choose 'other'."],
                        "end_date": ["The end date is before the start date."]}


# -- dump -----------------------------------------------------------------------------------------------------

def test_dump_schema_shapes_output_and_refuses_loading_ids():
    at = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    attachment = SimpleNamespace(id=2, evidence_id=1, filename="cert.pdf", content_type="application/pdf", size=10,
                                 sha256="ab" * 32, uploaded_by_id=3, uploaded_at=at, description=None)
    evidence = SimpleNamespace(id=1, person_id=3, course_id=4, kind="certification", title="CPhT", data={"a": 1},
                               status="draft", revision=2, created_at=at, updated_at=at, submitted_at=None,
                               competency_links=[SimpleNamespace(competency_id=9), SimpleNamespace(competency_id=8)],
                               attachments=[attachment])
    out = evidence_out.dump(evidence)
    assert out["competency_ids"] == [8, 9]
    assert out["created_at"] == "2025-06-01T12:00:00+00:00"
    assert out["attachments"][0]["sha256"] == "ab" * 32 and out["attachments"][0]["filename"] == "cert.pdf"
    assert set(out) == {"id", "person_id", "course_id", "kind", "title", "data", "status", "revision",
                        "competency_ids", "attachments", "created_at", "updated_at", "submitted_at"}
    with pytest.raises(ValidationError) as caught:
        evidence_out.load({"id": 5, "title": "x"})
    assert caught.value.messages == {"id": ["Unknown field."], "title": ["Unknown field."]}
