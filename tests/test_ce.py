"""CE compliance on worked examples; every expected number below was worked out by hand."""
from datetime import date, timedelta

import pytest

from lti_tool.extensions import db
from lti_tool.models.evidence import SIGNED_OFF, SUBMITTED
from lti_tool.services import NotFound, ce
from lti_tool.services import evidence as evidence_service
from tests.test_evidence_service import add_framework

CYCLE = date(2022, 1, 1)
AS_OF = date(2023, 6, 30)


@pytest.fixture
def tech_world(make):
    reg = make.registration()
    course = make.course(reg)
    comps = add_framework(course)
    tech = make.actor(course, "technician")
    return {"reg": reg, "course": course, "comps": comps, "tech": tech, "make": make}


def record(world, uan, hours, done, *, signed=False, withdrawn=False, draft=False, actor=None, comps=None,
           **extra):
    """A CE item sent for review (by default), signed off, withdrawn or left a draft."""
    actor = actor or world["tech"]
    comps = comps or world["comps"]
    evidence = evidence_service.create_draft(actor, "continuing_education", {
        "title": f"CE {uan}", "competency_ids": [comps["ce"].id], "uan": uan, "hours": hours,
        "completion_date": done, "provider_name": "Provider", **extra})
    if withdrawn:
        evidence_service.withdraw(actor, evidence.id)
    if signed or not (withdrawn or draft):
        evidence.status = SIGNED_OFF if signed else SUBMITTED
        db.session.flush()
    return evidence


def test_ptcb_cpht_worked_example(tech_world):
    w = tech_world
    a = record(w, "0197-0000-22-001-L03-T", 1, "2022-02-01", signed=True)      # law, technician
    b = record(w, "0197-0000-22-002-H05-T", 0.5, "2022-03-01")                 # patient safety, sent for review
    record(w, "0197-0000-22-008-H05-T", 2, "2022-03-02", draft=True)           # a draft: counts nowhere
    c = record(w, "0197-0000-22-003-H01-T", 10, "2022-05-01", signed=True)     # drug therapy
    d = record(w, "0204-9999-22-004-L04-P", 6, "2022-06-01", signed=True)      # pharmacist-specific
    record(w, "0197-0000-21-005-H06-T", 2, "2021-12-31", signed=True)          # before the cycle
    record(w, "0197-0000-22-006-H04-T", 3, "2022-07-01", withdrawn=True)       # withdrawn
    record(w, "0197-0000-23-007-L07-T", 1.25, "2023-07-15")                    # after as_of

    result = ce.ce_status(w["tech"].person, "ptcb_cpht", CYCLE, AS_OF)
    assert (result["cycle_start"], result["cycle_end"], result["as_of"]) == ("2022-01-01", "2023-12-31",
                                                                            "2023-06-30")
    assert result["days_left"] == 184
    assert result["name"] == "PTCB CPhT recertification"

    assert result["unsent_hours"] == 2.0
    recorded = result["recorded"]
    # 1 + 0.5 + 10 + 6 = 17.5 recorded; 6 pharmacist-specific hours, 5 count: 16.5 counted; 20 - 16.5 = 3.5.
    assert (recorded["recorded_hours"], recorded["hours"], recorded["missing_hours"]) == (17.5, 16.5, 3.5)
    assert recorded["met"] is False
    assert recorded["evidence_ids"] == sorted([a.id, b.id, c.id, d.id])
    assert [(r["code"], r["hours"], r["met"], r["missing_hours"]) for r in recorded["requirements"]] == [
        ("law", 1.0, True, 0.0), ("patient_safety", 0.5, False, 0.5), ("technician_specific", 11.5, False, 3.5)]
    assert recorded["limits"] == [{
        "code": "pharmacist_specific", "label": "pharmacist-specific CE (UAN ending in P)", "max_hours": 5,
        "hours": 6.0, "counted": 5.0, "not_counted": 1.0,
        "note": "1 hour of pharmacist-specific CE (UAN ending in P) do not count (at most 5 hours may)."}]
    assert recorded["missing"] == [
        "3.5 hours more CE in total (16.5 hours of 20 hours so far)",
        "0.5 hours of patient safety (ACPE topic 05)",
        "3.5 hours of technician-specific CE (UAN ending in T)",
    ]
    assert recorded["summary"] == ("Still needed: 3.5 hours more CE in total (16.5 hours of 20 hours so far); "
                                   "0.5 hours of patient safety (ACPE topic 05); 3.5 hours of technician-specific "
                                   "CE (UAN ending in T).")

    verified = result["verified"]
    # Signed off only: 1 + 10 + 6 = 17; 5 of the 6 P hours count: 16; no patient safety; 11 technician hours.
    assert (verified["recorded_hours"], verified["hours"], verified["missing_hours"]) == (17.0, 16.0, 4.0)
    assert verified["evidence_ids"] == sorted([a.id, c.id, d.id])
    assert [(r["code"], r["hours"], r["missing_hours"]) for r in verified["requirements"]] == [
        ("law", 1.0, 0.0), ("patient_safety", 0.0, 1.0), ("technician_specific", 11.0, 4.0)]
    assert verified["missing"] == ["4 hours more CE in total (16 hours of 20 hours so far)",
                                   "1 hour of patient safety (ACPE topic 05)",
                                   "4 hours of technician-specific CE (UAN ending in T)"]


def _item(n, uan_topic, audience, hours, **extra):
    return {"id": n, "hours": hours, "uan_parts": {"topic": uan_topic, "audience": audience, "format": "H"},
            **extra}


def test_a_met_rule_on_the_pure_evaluator():
    items = [_item(1, "03", "T", 1), _item(2, "05", "T", 1.25), _item(3, "01", "T", 12.75),
             _item(4, "04", "P", 5)]
    # 1 + 1.25 + 12.75 = 15 technician hours, 5 pharmacist hours (all count): 20.
    result = ce.evaluate(ce.rule("ptcb_cpht"), items)
    assert (result["hours"], result["met"], result["missing"]) == (20.0, True, [])
    assert result["summary"] == "All requirements are met."
    assert result["limits"][0]["not_counted"] == 0.0 and "note" not in result["limits"][0]

    # The same hours for CPhT-Adv (25 h): 5 short in total, nothing else.
    adv = ce.evaluate(ce.rule("ptcb_cpht_adv"), items)
    assert adv["missing"] == ["5 hours more CE in total (20 hours of 25 hours so far)"]


def test_nha_excpt_has_no_technician_or_pharmacist_split():
    items = [_item(1, "03", "P", 1), _item(2, "05", "P", 1), _item(3, "01", "P", 18)]
    result = ce.evaluate(ce.rule("nha_excpt"), items)
    assert (result["hours"], result["met"]) == (20.0, True)
    # The same CE fails PTCB: only 5 pharmacist hours count and none are technician-specific.
    ptcb = ce.evaluate(ce.rule("ptcb_cpht"), items)
    assert ptcb["hours"] == 5.0
    assert ptcb["missing"] == ["15 hours more CE in total (5 hours of 20 hours so far)",
                               "15 hours of technician-specific CE (UAN ending in T)"]


def test_cspt_yearly_renewal_counts_sterile_compounding_ce(tech_world):
    w = tech_world
    record(w, "0197-0000-23-010-H07-T", 1.5, "2023-03-01", sterile_compounding=True, signed=True)
    record(w, "0197-0000-23-011-H07-T", 3, "2023-04-01")                       # compounding, not sterile
    record(w, "0197-0000-22-012-H07-T", 2, "2022-12-31", sterile_compounding=True)  # last year's cycle
    result = ce.ce_status(w["tech"].person, "ptcb_cspt", date(2023, 1, 1), date(2023, 6, 30))
    assert (result["cycle_end"], result["days_left"]) == ("2023-12-31", 184)
    recorded = result["recorded"]
    # 1.5 + 3 = 4.5 hours (>= 2 in total) but only 1.5 sterile-compounding hours: 0.5 short.
    assert (recorded["hours"], recorded["missing_hours"]) == (4.5, 0.0)
    assert recorded["missing"] == ["0.5 hours of sterile-compounding CE"]
    verified = result["verified"]
    assert (verified["hours"], verified["missing"]) == (1.5, ["0.5 hours more CE in total (1.5 hours of 2 hours so "
                                                              "far)", "0.5 hours of sterile-compounding CE"])


def test_one_activity_counts_once_across_courses(tech_world):
    w = tech_world
    course_b = w["make"].course(w["reg"])
    comps_b = add_framework(course_b, code="B")
    tech_b = w["make"].actor(course_b, "technician", person=w["tech"].person)
    draft_a = record(w, "0197-0000-22-020-L05-T", 2, "2022-04-01")
    signed_b = record(w, "0197-0000-22-020-L05-T", 2, "2022-04-01", actor=tech_b, comps=comps_b, signed=True)
    result = ce.ce_status(w["tech"].person, "ptcb_cpht", CYCLE, AS_OF)
    assert result["recorded"]["hours"] == 2.0 and result["recorded"]["evidence_ids"] == [signed_b.id]
    assert result["verified"]["hours"] == 2.0
    assert draft_a.id not in result["verified"]["evidence_ids"]


def test_cycle_edges_and_days_left(tech_world):
    w = tech_world
    start = record(w, "0197-0000-22-030-H03-T", 1, "2022-01-01")
    last = record(w, "0197-0000-23-031-H05-T", 1, "2023-12-31")
    record(w, "0197-0000-24-032-H04-T", 1, "2024-01-01")                       # the next cycle
    on_last_day = ce.ce_status(w["tech"].person, "ptcb_cpht", CYCLE, date(2023, 12, 31))
    assert on_last_day["days_left"] == 0
    assert on_last_day["recorded"]["evidence_ids"] == [start.id, last.id]
    assert on_last_day["recorded"]["hours"] == 2.0
    after = ce.ce_status(w["tech"].person, "ptcb_cpht", CYCLE, date(2024, 3, 1))
    assert after["days_left"] == -61 and after["recorded"]["hours"] == 2.0
    before = ce.ce_status(w["tech"].person, "ptcb_cpht", CYCLE, date(2022, 6, 30))
    assert before["recorded"]["evidence_ids"] == [start.id] and before["days_left"] == 549


def test_cycle_arithmetic():
    assert ce.add_months(date(2024, 2, 29), 24) == date(2026, 2, 28)
    assert ce.cycle_end(ce.rule("ptcb_cpht"), date(2024, 2, 29)) == date(2026, 2, 27)
    assert ce.cycle_end(ce.rule("ptcb_cspt"), date(2025, 3, 15)) == date(2026, 3, 14)
    assert ce.add_months(date(2025, 11, 30), 3) == date(2026, 2, 28)
    assert ce.hours_text(ce.Decimal("1.50")) == "1.5 hours" and ce.hours_text(ce.Decimal(1)) == "1 hour"


def test_a_cycle_ends_on_the_certification_expiration_even_after_a_february_29():
    """Two years back from an expiry of Feb 28, 2028 is Feb 28, 2026 (no Feb 29 that year), and that start plus
    the rule's 24 months, less a day, is Feb 27: the cycle must still end on the expiration date itself."""
    cert = {"verified": True, "credential": "ptcb_cpht", "issued": date(2026, 2, 28), "expires": date(2028, 2, 28),
            "evidence_id": 1}
    cycle = ce.cycle_for("ptcb_cpht", [cert], date(2026, 12, 2))
    assert (cycle["start"], cycle["end"]) == (date(2026, 2, 28), date(2028, 2, 28))
    cert["expires"] = date(2028, 2, 29)
    cycle = ce.cycle_for("ptcb_cpht", [cert], date(2026, 12, 2))
    assert (cycle["start"], cycle["end"]) == (date(2026, 3, 1), date(2028, 2, 29))



def test_without_a_certification_the_cycle_ends_today():
    for today in (date(2026, 2, 28), date(2026, 12, 2), date(2028, 2, 29)):
        cycle = ce.cycle_for("ptcb_cpht", [], today)
        assert cycle["end"] == today and cycle["start"] == ce.add_months(today, -24) + timedelta(days=1)
    assert ce.cycle_for("ptcb_cpht", [], date(2026, 2, 28))["start"] == date(2024, 2, 29)


def test_cycles_without_an_expiration_are_counted_from_the_issue_date():
    cert = {"verified": True, "credential": "ptcb_cpht", "issued": date(2024, 2, 29), "expires": None,
            "evidence_id": 1}
    cycles = [ce.cycle_for("ptcb_cpht", [cert], today) for today in
              (date(2025, 6, 1), date(2026, 2, 27), date(2026, 2, 28), date(2028, 2, 28), date(2028, 2, 29))]
    assert [(c["start"], c["end"]) for c in cycles] == [
        (date(2024, 2, 29), date(2026, 2, 27)),
        (date(2024, 2, 29), date(2026, 2, 27)),  # the last day of the first cycle
        (date(2026, 2, 28), date(2028, 2, 28)),  # no Feb 29 in 2026; the cycle still ends the day before Feb 29
        (date(2026, 2, 28), date(2028, 2, 28)),
        (date(2028, 2, 29), date(2030, 2, 27)),  # back on the issue date's day
    ]


def test_rules_are_data():
    codes = set(ce.rules())
    assert codes == {"ptcb_cpht", "ptcb_cpht_adv", "nha_excpt", "ptcb_cspt"}
    cpht = ce.rule("ptcb_cpht")
    assert (cpht["cycle_months"], cpht["total_hours"]) == (24, 20)
    assert {r["code"]: r["min_hours"] for r in cpht["requirements"]} == {
        "law": 1, "patient_safety": 1, "technician_specific": 15}
    assert ce.rule("ptcb_cspt")["cycle_months"] == 12 and ce.rule("ptcb_cpht_adv")["total_hours"] == 25
    with pytest.raises(NotFound, match="No CE rule 'acls'"):
        ce.rule("acls")


def test_status_for_is_scoped(tech_world):
    w = tech_world
    make = w["make"]
    manager = make.actor(w["course"], "manager")
    record(w, "0197-0000-22-040-H03-T", 1, "2022-02-01")
    course_b = make.course(w["reg"])
    comps_b = add_framework(course_b, code="B")
    tech_b = make.actor(course_b, "technician", person=w["tech"].person)
    record(w, "0197-0000-22-041-H05-T", 4, "2022-02-01", actor=tech_b, comps=comps_b)

    assert ce.status_for(w["tech"], w["tech"].person.id, "ptcb_cpht", CYCLE, AS_OF)["recorded"]["hours"] == 5.0
    # The manager of course A counts course A's records only.
    assert ce.status_for(manager, w["tech"].person.id, "ptcb_cpht", CYCLE, AS_OF)["recorded"]["hours"] == 1.0
    with pytest.raises(NotFound):
        ce.status_for(make.actor(w["course"], "technician"), w["tech"].person.id, "ptcb_cpht", CYCLE, AS_OF)
    with pytest.raises(NotFound):
        ce.status_for(make.actor(make.course(make.registration()), "manager"), w["tech"].person.id, "ptcb_cpht",
                      CYCLE, AS_OF)
