"""Go-live import of prior records with real-shaped files made here: an XLSX with merged header cells, a title row
and Excel serial dates; a CSV in Windows-1252; an NABP CPE Monitor-shaped transcript; the dry run (problems per
row, nothing written), idempotent re-runs, people not launched yet, the audit log, status as of the past, undo
and what blocks it, and a large file's statements per row."""
import io
from datetime import UTC, date, datetime

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from lti_tool.extensions import db
from lti_tool.models import AuditEntry, Evidence, ImportBatch, Membership, Person, SignOff, StoredStatus
from lti_tool.services import DomainError, Forbidden, reports, reviews, status
from lti_tool.services.actors import Actor
from lti_tool.services.prior_records import Options, preview, run, template_csv, undo
from lti_tool.services.prior_records.files import date_of, excel_serial
from tests.support.competency_world import World, count_queries


@pytest.fixture
def world(make):
    w = World(make)
    w.tech.person.email = "tess@example.org"
    w.tech.person.name = "Tess Nguyen"
    w.admin = Actor(person=make.person(w.reg, is_admin=True, name="Ada Admin"), course=w.course)
    db.session.flush()
    return w


def xlsx_with_merged_header(rows) -> bytes:
    """A title row, then a two-row header: "Technician" over Email/Name and "Assessor" over Name/Role merged;
    single headers merged down over both rows. Dates as Excel serial numbers (and one real date)."""
    book = Workbook()
    sheet = book.active
    sheet["A1"] = "USP <797> competency records, printed Nov 2024"
    sheet.merge_cells("A1:H1")
    sheet["A2"], sheet["C2"], sheet["D2"], sheet["E2"], sheet["G2"], sheet["H2"] = (
        "Technician", "Competency code", "Date assessed", "Assessor", "Method", "Rating")
    sheet.merge_cells("A2:B2")
    sheet.merge_cells("E2:F2")
    for col in "CDGH":
        sheet.merge_cells(f"{col}2:{col}3")
    sheet["A3"], sheet["B3"], sheet["E3"], sheet["F3"] = "Email", "Name", "Name", "Role"
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_reading_helpers():
    assert excel_serial(45306) == date(2024, 1, 15)
    assert date_of("1/15/2024") == date_of("2024-01-15") == date_of("Jan 15, 2024") == date(2024, 1, 15)
    assert date_of(datetime(2024, 1, 15, 8, 0)) == date(2024, 1, 15) and date_of("") is None
    with pytest.raises(ValueError):
        date_of("sometime in spring")
    assert template_csv("sign_offs").startswith("Technician email,Technician LMS id,Technician name,Competency code")


def test_xlsx_dry_run_import_idempotency_and_undo(world):
    data = xlsx_with_merged_header([
        ["tess@example.org", "Tess Nguyen", "IV-GARB", 45306, "Dana Lee", "Pharmacist", "Observed", "Competent"],
        ["NEW.PERSON@example.org", "Nora New", "REG-AUDIT", datetime(2024, 3, 1), "Dana Lee", "Pharmacist",
         "demonstration", ""],
    ])
    options = Options(kind="sign_offs")
    plan = preview(world.admin, world.course.id, "records.xlsx", data, options)
    assert plan.ok, [(r.number, r.problems) for r in plan.rows]
    assert [r.number for r in plan.rows] == [4, 5]
    assert plan.header[:2] == ["Technician Email", "Technician Name"] and plan.header[5] == "Assessor Role"
    assert list(plan.new_people.values()) == [("new.person@example.org", None, "Nora New")]
    assert db.session.scalar(select(func.count()).select_from(SignOff)) == 0  # the dry run wrote nothing

    batch = run(world.admin, world.course.id, "records.xlsx", data, options)
    assert batch.summary["created"] == {"people": 1, "memberships": 1, "sign_offs": 2, "evidence": 2}
    tess = db.session.scalars(select(SignOff).where(SignOff.person_id == world.tech.person.id)).one()
    assert tess.signed_at.date() == date(2024, 1, 15) and tess.signer_role == "imported"
    assert tess.signer_id == world.admin.person.id and tess.method == "observed"
    assert tess.expires_at.date() == date(2024, 7, 15)  # the competency's 6-month revalidation
    assert tess.evidence_snapshot["data"]["prior_assessor_name"] == "Dana Lee"
    assert tess.evidence_snapshot["data"]["prior_assessor_role"] == "Pharmacist"
    nora = db.session.scalars(select(Person).where(Person.email == "new.person@example.org")).one()
    assert nora.last_launch_at is None and nora.name == "Nora New"
    assert db.session.scalars(select(Membership.source).where(Membership.person_id == nora.id)).one() == "import"
    actions = set(db.session.scalars(select(AuditEntry.action)))
    assert {"sign_off.imported", "person.imported", "import.applied"} <= actions

    # Status as of the past: current in March 2024, expired by September 2024.
    march = status.compute(world.reg, [world.tech.person.id], [world.garb.id], datetime(2024, 3, 1, tzinfo=UTC))
    assert march[world.tech.person.id][world.garb.id].status == "achieved"
    roster = reports.roster(world.manager, world.course.id, f"c:{world.garb.id}", date(2024, 9, 1))
    assert {r.person.id: r.standing for r in roster.rows}[world.tech.person.id] == "expired"

    # The same file again: every row already imported, nothing created.
    again = preview(world.admin, world.course.id, "records.xlsx", data, options)
    assert [r.skip for r in again.rows] == ["Already imported", "Already imported"]
    second = run(world.admin, world.course.id, "records.xlsx", data, options)
    assert second.summary["created"]["sign_offs"] == 0 and second.summary["skipped"] == 2
    assert db.session.scalar(select(func.count()).select_from(SignOff)) == 2

    # The stored status follows the import and its undo (the team matrix and every page read it).
    stored = db.session.get(StoredStatus, (world.tech.person.id, world.garb.id))
    assert stored is not None and stored.sign_off_id == tess.id
    nora_id = nora.id
    undo(world.admin, batch.id)
    stored = db.session.get(StoredStatus, (world.tech.person.id, world.garb.id))
    assert stored is None or stored.sign_off_id is None
    assert db.session.scalar(select(func.count()).select_from(SignOff)) == 0
    assert db.session.scalar(select(func.count()).select_from(Person).where(Person.id == nora_id)) == 0
    assert db.session.get(ImportBatch, batch.id).status == "undone"
    assert "import.undone" in set(db.session.scalars(select(AuditEntry.action)))
    with pytest.raises(DomainError) as exc:
        undo(world.admin, batch.id)
    assert exc.value.code == "already_undone"
    # After the undo the file imports again.
    assert run(world.admin, world.course.id, "records.xlsx", data, options).summary["created"]["sign_offs"] == 2


def test_dry_run_lists_row_problems_and_refuses_to_import(world):
    csv_text = ("Email,Competency,Date assessed,Method,Rating,Interval\r\n"
                "tess@example.org,IV-GARB,2024-01-15,observed,competent,6\r\n"
                "tess@example.org,NOPE-1,2024-01-15,observed,competent,\r\n"
                "tess@example.org,IV-GARB,2099-01-01,observed,competent,\r\n"
                "tess@example.org,CEN-CART,yesterday,observed,competent,\r\n"
                "tess@example.org,CEN-CART,2024-02-01,telepathy,wizard,forever\r\n"
                "not-an-email,CEN-CART,2024-02-01,,,\r\n"
                "tess@example.org,IV-GARB,01/15/2024,observed,competent,6\r\n")
    plan = preview(world.admin, world.course.id, "records.csv", csv_text.encode(), Options(kind="sign_offs"))
    problems = {r.number: " ".join(r.problems) for r in plan.rows}
    assert problems[2] == ""
    assert "not a competency of this course" in problems[3]
    assert "in the future" in problems[4]
    assert "is not a date" in problems[5]
    assert "Method 'telepathy'" in problems[6] and "Rating 'wizard'" in problems[6] and "Interval" in problems[6]
    assert "not an e-mail address" in problems[7]
    assert "Same record as row 2" in problems[8]
    with pytest.raises(DomainError) as exc:
        run(world.admin, world.course.id, "records.csv", csv_text.encode(), Options(kind="sign_offs"))
    assert exc.value.code == "import_refused"
    assert db.session.scalar(select(func.count()).select_from(SignOff)) == 0


def test_column_mapping_for_arbitrary_headers(world):
    csv_text = "Staff,Skill,When,Eval by\r\ntess@example.org,CEN-CART,3/2/2024,Pat Pharmacist\r\n"
    with pytest.raises(DomainError):
        preview(world.admin, world.course.id, "x.csv", csv_text.encode(), Options(kind="sign_offs"))
    mapping = {"email": "Staff", "competency": "Skill", "assessed": "When", "assessor_name": "Eval by"}
    plan = preview(world.admin, world.course.id, "x.csv", b"Title row\r\n" + csv_text.encode(),
                   Options(kind="sign_offs", mapping=mapping))
    assert not plan.missing_required
    assert plan.ok and "Pat Pharmacist" in plan.rows[0].what
    with pytest.raises(DomainError):
        preview(world.admin, world.course.id, "x.csv", csv_text.encode(),
                Options(kind="sign_offs", mapping={"email": "No such column"}))


def test_windows_1252_certifications(world):
    text = ("Technician email,Technician name,Credential,Number,Issued,Expires,Issued by,Notes\r\n"
            "jose@example.org,José Núñez,PTCB CPhT,445566,05/01/2023,05/31/2025,,“renewed early”\r\n"
            "tess@example.org,Tess Nguyen,Hospital IV certificate,HIV-9,2022-02-02,,,\r\n"
            "tess@example.org,Tess Nguyen,Hospital IV certificate,HIV-10,2022-02-02,,Mercy Hospital,\r\n")
    data = text.encode("cp1252")
    plan = preview(world.admin, world.course.id, "certs.csv", data, Options(kind="certifications"))
    assert [r.number for r in plan.problems] == [3]
    assert plan.problems[0].problems == ["Issuing body: Name the body that issued this credential."]
    lines = text.split("\r\n")
    data = "\r\n".join(lines[:2] + lines[3:]).encode("cp1252")
    run(world.admin, world.course.id, "certs.csv", data, Options(kind="certifications"))
    jose = db.session.scalars(select(Person).where(Person.email == "jose@example.org")).one()
    assert jose.name == "José Núñez"
    cert = db.session.scalars(select(Evidence).where(Evidence.person_id == jose.id)).one()
    assert cert.kind == "certification" and cert.data["credential"] == "ptcb_cpht"
    assert cert.data["expiry_date"] == "2025-05-31" and cert.data["prior_record"] is True
    other = db.session.scalars(select(Evidence).where(Evidence.person_id == world.tech.person.id)).one()
    assert other.data["credential"] == "other" and other.data["credential_other"] == "Hospital IV certificate"


def test_cpe_monitor_transcript(world):
    text = ("NABP e-Profile ID: 1234567\r\nName: Tess Nguyen\r\nTranscript generated 11/30/2026\r\n\r\n"
            "Provider,ACPE Universal Activity Number (UAN),Activity Title,Date of Participation,Contact Hours,CEUs\r\n"
            "Example Provider,0204-0000-24-101-H05-T,Look-alike drugs,06/10/2024,1.5,0.15\r\n"
            "Example Provider,0204-0000-24-102-L03-T,Pharmacy law update,07/01/2024,,0.2\r\n")
    options = Options(kind="ce", technician="tess@example.org")
    plan = preview(world.admin, world.course.id, "CPEMonitor.csv", text.encode(), options)
    assert plan.ok, [(r.number, r.problems) for r in plan.rows]
    run(world.admin, world.course.id, "CPEMonitor.csv", text.encode(), options)
    items = {e.data["uan"]: e for e in db.session.scalars(
        select(Evidence).where(Evidence.person_id == world.tech.person.id))}
    assert items["0204-0000-24-101-H05-T"].data["hours"] == 1.5
    assert items["0204-0000-24-102-L03-T"].data["hours"] == 2  # 0.2 CEU = 2 contact hours
    assert items["0204-0000-24-102-L03-T"].data["completion_date"] == "2024-07-01"
    rerun = preview(world.admin, world.course.id, "CPEMonitor.csv", text.encode(), options)
    assert all(r.skip for r in rerun.rows)


def test_undo_is_refused_once_something_builds_on_the_import(world):
    data = b"Email,Competency,Date assessed\r\ntess@example.org,CEN-CART,2024-02-01\r\n"
    batch = run(world.admin, world.course.id, "x.csv", data, Options(kind="sign_offs"))
    imported = db.session.scalars(select(SignOff)).one()
    reviews.revoke(world.manager, imported.id, "Paper record was for someone else")
    with pytest.raises(DomainError) as exc:
        undo(world.admin, batch.id)
    assert exc.value.code == "import_in_use" and "revoked" in exc.value.message


def test_only_administrators_import(world, make):
    data = b"Email,Competency,Date assessed\r\ntess@example.org,CEN-CART,2024-02-01\r\n"
    with pytest.raises(Forbidden):
        preview(world.manager, world.course.id, "x.csv", data, Options(kind="sign_offs"))
    other = World(make)
    with pytest.raises(DomainError):
        preview(world.admin, other.course.id, "x.csv", data, Options(kind="sign_offs"))
    batch = run(world.admin, world.course.id, "x.csv", data, Options(kind="sign_offs"))
    other_admin = Actor(person=make.person(other.reg, is_admin=True), course=other.course)
    with pytest.raises(DomainError) as exc:
        undo(other_admin, batch.id)
    assert exc.value.status == 404


def test_large_file_statements_per_row_are_bounded(world):
    lines = ["Email,Name,Competency,Date assessed"]
    lines += [f"t{i}@example.org,Tech {i},REG-AUDIT,2024-0{1 + i % 9}-1{i % 10}" for i in range(300)]
    data = ("\r\n".join(lines) + "\r\n").encode()
    calls = []
    with count_queries() as n:
        batch = run(world.admin, world.course.id, "big.csv", data, Options(kind="sign_offs"),
                    progress=lambda done, total: calls.append((done, total)))
    assert batch.summary["created"]["sign_offs"] == 300 and calls[-1] == (300, 300)
    # Natural keys and audit entries go in one statement per chunk; SQLite inserts the people, memberships,
    # evidence and sign-offs one by one (to learn their ids), PostgreSQL in batches.
    assert n[0] <= 300 * 4 + 30, n[0]
