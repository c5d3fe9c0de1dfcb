"""Transcript data, CSV/JSON/PDF exports, the course matrix, the ZIP export job and the CLI."""
import csv
import io
import json
import re
import tracemalloc
import zipfile
from datetime import UTC, date, datetime, timedelta

import pytest
import zxingcpp
from PIL import Image, ImageDraw
from pypdf import PdfReader
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.models import Evidence, EvidenceCompetency, ExportJob, IssuedCredential, SignOff
from lti_tool.schemas.evidence import load_evidence
from lti_tool.services import Forbidden, NotFound, attestation, reviews, transcript_exports, transcript_pdf, transcripts
from lti_tool.services.actors import Actor
from tests.support.competency_world import T0, World, count_queries

AS_OF = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TODAY = date(2025, 3, 1)
BASE = "https://tool.example.org"

PAYLOADS = {
    "cross_training": {"title": "IV room rotation", "department": "iv_room", "skills": ["Garbing", "Aseptic technique"],
                       "trainer_name": "Dana Trainer", "hours": 16, "start_date": "2025-01-06",
                       "end_date": "2025-01-10"},
    "responsibility": {"title": "Inventory lead", "role": "inventory_lead", "scope": "Weekly cycle counts",
                       "start_date": "2024-06-01", "supervisor": "Pat Manager"},
    "qi_project": {"title": "Fewer missing doses", "problem": "Doses go missing", "aim": "Halve missing doses",
                   "measures": ["Missing dose calls per week"], "results": "Down 40%", "role": "Data collection",
                   "pdsa_cycles": [{"plan": "p", "do": "d", "study": "s", "act": "a", "date": "2024-11-01"}]},
    "certification": {"title": "My CPhT", "credential": "ptcb_cpht", "number": "CPHT-12345",
                      "issued_date": "2024-02-01", "expiry_date": "2026-01-31"},
}


def add_evidence(world, actor, kind, *, status="signed_off", competencies=(), overrides=None):
    payload = {**PAYLOADS.get(kind, {}), **(overrides or {})}
    payload["competency_ids"] = [c.id for c in competencies] or [world.cart.id]
    title, data, _ = load_evidence(kind, payload, today=TODAY)
    person = getattr(actor, "person", actor)
    row = Evidence(person_id=person.id, course_id=world.course.id, kind=kind, title=title, data=data, status=status,
                   revision=1, created_at=T0 - timedelta(days=30))
    row.competency_links = [EvidenceCompetency(competency_id=c.id) for c in competencies]
    db.session.add(row)
    db.session.flush()
    return row


def ce_item(world, actor, uan, hours, done="2025-01-20", status="signed_off", title="CE activity"):
    return add_evidence(world, actor, "continuing_education", status=status, overrides={
        "title": title, "uan": uan, "hours": hours, "completion_date": done, "provider_name": "ACPE provider"})


def rich_world(make):
    """A technician with signed, revoked, corrected sign-offs and one of every evidence kind."""
    world = World(make)
    world.tech.person.name = "Tess Nguyen"
    garb = world.signed(world.garb, now=T0, title="Gloved-fingertip test")
    cart = world.signed(world.cart, now=T0 + timedelta(days=1), title="Cart fill checklist")
    audit = world.signed(world.audit_comp, now=T0 + timedelta(days=2), title="CS audit")
    reviews.revoke(world.manager, audit.id, "Signed in error", now=T0 + timedelta(days=3))
    fixed = reviews.correct(world.manager, cart.id, "Wrong rating", rating="trainer", now=T0 + timedelta(days=4))
    add_evidence(world, world.tech, "cross_training", status="submitted")
    add_evidence(world, world.tech, "responsibility")
    add_evidence(world, world.tech, "qi_project")
    add_evidence(world, world.tech, "certification")
    add_evidence(world, world.tech, "cross_training", status="draft", overrides={"title": "Draft never shown"})
    ce_item(world, world.tech, "0197-0000-24-001-L03-T", 2, title="Pharmacy law update")
    ce_item(world, world.tech, "0197-0000-24-002-H05-T", 1.5, title="Patient safety")
    world.sign_offs = {"garb": garb, "cart": cart, "audit": audit, "fixed": fixed}
    return world


@pytest.fixture
def world(make):
    return rich_world(make)


def test_transcript_lists_attestations_sections_and_ce(world):
    data = transcripts.build(world.tech, world.tech.person.id, as_of=AS_OF)

    assert data["person"]["name"] == "Tess Nguyen" and data["organization"] == world.reg.name
    by_code = {c["code"]: c for c in data["competencies"]}
    assert set(by_code) == {"IV-GARB", "CEN-CART", "REG-AUDIT"}
    garb = by_code["IV-GARB"]
    assert garb["status"] == "achieved" and garb["held"]
    [att] = garb["attestations"]
    assert att["signer_name"] == world.manager.person.display_name and att["signer_role_label"] == "Manager"
    assert att["method_label"] == "Observed" and att["rating_label"] == "Competent"
    assert att["evidence_title"] == "Gloved-fingertip test" and att["evidence_kind_label"] == "Cross-training"
    assert att["expires_at"].startswith("2025-07-15") and att["state"] == "valid"

    audit = by_code["REG-AUDIT"]
    assert audit["status"] == "needs_reassessment" and not audit["held"]  # revoked: never "not started"
    assert audit["attestations"][0]["state"] == "revoked"
    assert audit["attestations"][0]["revocation_reason"] == "Signed in error"
    cart = by_code["CEN-CART"]
    states = [a["state"] for a in cart["attestations"]]
    assert states == ["corrected", "valid"]
    assert cart["attestations"][1]["rating_label"] == "Can train others"
    assert cart["attestations"][1]["correction_reason"] == "Wrong rating"
    assert cart["sign_off_id"] == world.sign_offs["fixed"].id

    [group] = data["cross_training"]
    assert group["department"] == "IV room / sterile compounding"
    titles = {i["title"]: i for i in group["items"]}
    assert set(titles) == {"IV room rotation", "Gloved-fingertip test", "Cart fill checklist", "CS audit"}
    assert titles["IV room rotation"]["status_label"] == "Awaiting review"  # the draft is left out
    assert not titles["IV room rotation"]["verified"] and titles["Gloved-fingertip test"]["verified"]
    # The CS audit's only sign-off was revoked: it reads so and no longer verifies the item.
    assert titles["CS audit"]["sign_off_state"] == "revoked" and not titles["CS audit"]["verified"]
    assert titles["CS audit"]["status_label"].startswith("Sign-off revoked on ")
    assert data["responsibilities"][0]["role_label"] == "Inventory lead"
    assert data["qi_projects"][0]["pdsa_cycles"] == 1
    [cert] = data["certifications"]
    assert cert["credential_label"].startswith("PTCB Certified Pharmacy Technician") and cert["verified"]

    ce = data["continuing_education"]["status"]
    assert ce["rule"] == "ptcb_cpht"
    # The cycle is the verified certification's: it ends on its expiration date, 2026-01-31 (inclusive), so
    # the 24-month cycle began 2024-02-01 (the same dates as the dashboard's).
    assert (ce["cycle_start"], ce["cycle_end"]) == ("2024-02-01", "2026-01-31")
    assert ce["verified"]["hours"] == 3.5 and not ce["verified"]["met"]
    assert {r["code"]: r["met"] for r in ce["verified"]["requirements"]} == {
        "law": True, "patient_safety": True, "technician_specific": False}
    assert [a["title"] for a in data["continuing_education"]["activities"]] == ["Pharmacy law update",
                                                                                "Patient safety"]
    json.dumps(data)  # JSON-ready


def test_transcript_query_count_is_fixed(make):
    small = rich_world(make)
    db.session.expire_all()
    with count_queries() as few:
        transcripts.build(small.tech, small.tech.person.id, as_of=AS_OF)
    big = rich_world(make)
    for n in range(25):
        big.signed(big.garb, now=T0 + timedelta(hours=n), title=f"Extra {n}")
        add_evidence(big, big.tech, "qi_project", overrides={"title": f"QI {n}"})
        ce_item(big, big.tech, f"0197-0000-24-{100 + n:03d}-L04-T", 1)
    db.session.expire_all()
    with count_queries() as many:
        data = transcripts.build(big.tech, big.tech.person.id, as_of=AS_OF)
    assert len(data["qi_projects"]) == 26
    assert many[0] == few[0] <= 13  # 13: the history's requirements in effect at as_of (issue 15)


def test_transcript_of_now_reads_the_stored_status(world):
    """Without as_of the competencies' statuses are the stored ones (one statement, not the history's three),
    and they read as a judgment of the whole history at the same moment does."""
    def statuses(data):
        return {c["code"]: (c["status"], c["held"], c["sign_off_id"], c["achieved_at"], c["expires_at"])
                for c in data["competencies"]}

    db.session.expire_all()
    with count_queries() as stored:
        now = transcripts.build(world.tech, world.tech.person.id)
    db.session.expire_all()
    with count_queries() as judged:
        then = transcripts.build(world.tech, world.tech.person.id, as_of=datetime.now(UTC))
    assert statuses(now) == statuses(then)
    assert statuses(now)["REG-AUDIT"][0] == "needs_reassessment" and statuses(now)["IV-GARB"][0] == "expired"
    assert stored[0] < judged[0]


def test_scope_someone_else_and_managers(world, make):
    with pytest.raises(NotFound):
        transcripts.build(world.tech2, world.tech.person.id)
    stranger = make.actor(make.course(make.registration()), "manager")
    with pytest.raises(NotFound):
        transcripts.build(stranger, world.tech.person.id)
    with pytest.raises(NotFound):
        transcripts.build(world.manager, 999_999)
    # A manager of another course of the same tenant sees nothing of this technician.
    other_manager = make.actor(make.course(world.reg), "manager")
    with pytest.raises(NotFound):
        transcripts.build(other_manager, world.tech.person.id)
    data = transcripts.build(world.manager, world.tech.person.id, as_of=AS_OF)
    assert data["scope"] == "courses managed by the requester" and data["counts"]["held"] == 2


def test_csv_and_json_exports(world):
    data = transcripts.build(world.tech, world.tech.person.id, as_of=AS_OF)
    rows = list(csv.DictReader(io.StringIO(transcript_exports.to_csv(data))))
    sections = {r["section"] for r in rows}
    assert {"competency", "cross_training", "responsibility", "qi_project", "certification",
            "continuing_education", "ce_requirement", "ce_total"} <= sections
    revoked = next(r for r in rows if r["code"] == "REG-AUDIT")
    assert revoked["state"] == "Revoked" and revoked["detail"] == "Signed in error"
    garb = next(r for r in rows if r["code"] == "IV-GARB")
    assert garb["signed_by"] == world.manager.person.display_name and garb["method"] == "Observed"
    assert json.loads(transcript_exports.to_json(data))["competencies"][0]["code"] == "IV-GARB"


def pdf_text(pdf: bytes) -> tuple[str, list[str]]:
    reader = PdfReader(io.BytesIO(pdf))
    pages = [page.extract_text() for page in reader.pages]
    return "\n".join(pages), pages


@pytest.mark.parametrize("size", ["a4", "letter"])
def test_pdf_contains_the_entries_and_a_verification_link_on_every_page(world, size):
    data = transcripts.build(world.tech, world.tech.person.id, as_of=AS_OF)
    pdf = transcript_pdf.render(data, f"{BASE}/verify/abc", size)
    text, pages = pdf_text(pdf)
    text = " ".join(text.split())
    for expected in ("Competency transcript", "Tess Nguyen", "IV-GARB Garbing and gloved-fingertip testing",
                     "Gloved-fingertip test", "Observed", "Revoked", "Signed in error", "Corrected",
                     "IV room / sterile compounding", "IV room rotation", "Inventory lead", "Fewer missing doses",
                     "CPHT-12345", "PTCB CPhT recertification", "Pharmacy law update", "Awaiting review"):
        assert expected in text, expected
    assert "Draft never shown" not in text
    width, height = PdfReader(io.BytesIO(pdf)).pages[0].mediabox.upper_right
    assert (round(float(width)), round(float(height))) == ((595, 842) if size == "a4" else (612, 792))
    for n, page in enumerate(pages, start=1):
        assert f"{BASE}/verify/abc" in page and f"Page {n} of {len(pages)}" in page


def printed_qr(pdf: bytes, page_number: int = 0) -> str:
    """What a phone reads from the QR code of one page: the page's QR form drawn again from its rectangles,
    8 pixels per point, and read by ZXing."""
    page = PdfReader(io.BytesIO(pdf)).pages[page_number]
    assert b"/FormXob.verify-qr Do" in page.get_contents().get_data()
    [form] = [ref.get_object() for name, ref in page["/Resources"]["/XObject"].items() if "verify-qr" in name]
    side, scale = float(form["/BBox"][2]), 8
    image = Image.new("L", (round(side * scale),) * 2, 255)
    draw = ImageDraw.Draw(image)
    rectangles = re.findall(r"([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+) re", form.get_data().decode())
    assert len(rectangles) > 100
    for x, y, w, h in ((float(v) for v in rect) for rect in rectangles):
        draw.rectangle([x * scale, (side - y - h) * scale, (x + w) * scale - 1, (side - y) * scale - 1], fill=0)
    [code] = zxingcpp.read_barcodes(image)
    return code.text


def test_pdf_qr_code_reads_as_the_verification_link_on_every_page(world):
    link = f"{BASE}/verify/0b6f3c9e-2d4a-4e1b-9f7c-5a8d2e6b1c3f"
    for n in range(60):
        add_evidence(world, world.tech, "qi_project", overrides={"title": f"Project number {n:03d}"})
    pdf = transcript_pdf.render(transcripts.build(world.tech, world.tech.person.id, as_of=AS_OF), link)
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    assert pages > 2
    assert {printed_qr(pdf, n) for n in range(pages)} == {link}


def test_pdf_is_us_letter_unless_a4_is_asked_for(world):
    data = transcripts.build(world.tech, world.tech.person.id, as_of=AS_OF)
    pdf = transcript_pdf.render(data, f"{BASE}/verify/abc")
    width, height = PdfReader(io.BytesIO(pdf)).pages[0].mediabox.upper_right
    assert (round(float(width)), round(float(height))) == (612, 792)
    text = " ".join(pdf_text(pdf)[0].split())
    assert "As of: Mar 1, 2025" in text, text[:300]


def test_pdf_with_500_evidence_items_renders(world):
    for n in range(500):
        add_evidence(world, world.tech, "qi_project", overrides={"title": f"Project number {n:03d}"})
    for n in range(30):
        world.signed(world.cart, now=T0 + timedelta(hours=n + 10), title=f"Cart check {n}")
    data = transcripts.build(world.tech, world.tech.person.id, as_of=AS_OF)
    assert data["counts"]["evidence"] >= 500
    text, pages = pdf_text(transcript_pdf.render(data, f"{BASE}/verify/x", "letter"))
    assert len(pages) > 10
    text = " ".join(text.split())
    assert "Project number 000" in text and "Project number 499" in text and "Cart check 29" in text
    assert all(f"of {len(pages)}" in p for p in pages)


def test_pdf_for_registers_a_transcript_whose_link_verifies(world):
    from lti_tool.services import credentials

    data, pdf = transcript_exports.pdf_for(world.tech, world.tech.person.id, BASE, as_of=AS_OF)
    row = db.session.scalars(select(IssuedCredential).where(IssuedCredential.kind == "transcript")).one()
    assert f"{BASE}/verify/{row.public_id}" in pdf_text(pdf)[0]
    # It covers the sign-offs in force when printed; the revoked and the corrected ones are printed as such.
    assert set(row.covers["sign_off_ids"]) == {world.sign_offs["garb"].id, world.sign_offs["fixed"].id}
    assert credentials.status_of(row.public_id)["status"] == "valid"
    reviews.revoke(world.manager, world.sign_offs["garb"].id, "Media fill failed", now=datetime.now(UTC))
    result = credentials.status_of(row.public_id)
    # That it was revoked and when, never why (issue 11).
    assert result["status"] == "revoked" and any("IV-GARB" in r and "revoked on" in r for r in result["reasons"])
    assert not any("Media fill failed" in r for r in result["reasons"])


def test_course_matrix_csv(world, make):
    text = transcript_exports.course_matrix_csv(world.manager, world.course.id)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:2] == ["technician", "email"] and "IV-GARB Garbing and gloved-fingertip testing" in rows[0]
    tess = next(r for r in rows if r[0] == "Tess Nguyen")
    garb_col = rows[0].index("IV-GARB Garbing and gloved-fingertip testing")
    assert tess[garb_col].startswith(("Achieved", "Expired", "Due for revalidation"))
    assert len(rows) == 3  # header + two technicians
    with pytest.raises(Forbidden):
        transcript_exports.course_matrix_csv(world.tech, world.course.id)
    with pytest.raises(NotFound):
        transcript_exports.course_matrix_csv(make.actor(make.course(make.registration()), "manager"),
                                             world.course.id)


def test_matrix_csv_neutralises_formulas(world):
    world.tech2.person.name = "=HYPERLINK(\"http://evil\")"
    text = transcript_exports.course_matrix_csv(world.manager, world.course.id)
    assert "'=HYPERLINK" in text


def _course_with_technicians(world, make, n):
    """A second course of the tenant using the world's framework, with its own manager and n technicians who each
    hold a signed-off competency."""
    from lti_tool.models import CourseFramework

    course = make.course(world.reg)
    db.session.add(CourseFramework(course_id=course.id, framework_id=world.framework.id))
    manager = make.actor(course, "manager")
    for i in range(n):
        actor = make.actor(course, "technician")
        actor.person.name = f"Technician {i:03d}"
        ev = world.evidence(actor, [world.cart], title=f"Cart {i}", course=course)
        req = reviews.request_review(actor, ev.id, now=T0)[0]
        reviews.sign_off(manager, req.id, "competent", "observed", [], now=T0)
    return manager


def _run_zip(job_id, peak=False):
    if peak:
        tracemalloc.start()
    transcript_exports.build_zip(job_id, BASE)
    result = tracemalloc.get_traced_memory()[1] if peak else None
    if peak:
        tracemalloc.stop()
    return db.session.get(ExportJob, job_id), result


def test_zip_job_builds_every_technicians_pdf(world, make):
    manager = _course_with_technicians(world, make, 3)
    job = transcript_exports.create_zip_job(manager, manager.course.id, "letter")
    db.session.commit()
    job, _ = _run_zip(job.id)
    progress = transcript_exports.progress(job)
    assert progress["status"] == "done" and progress["done"] == progress["total"] == 3 and progress["percent"] == 100
    with zipfile.ZipFile(job.file_path) as archive:
        names = archive.namelist()
        assert len(names) == 3 and all(n.endswith(".pdf") for n in names)
        assert "CEN-CART Cart fill" in " ".join(pdf_text(archive.read(names[0]))[0].split())
    assert db.session.query(IssuedCredential).filter_by(kind="transcript").count() == 3


def test_zip_memory_stays_flat(world, make):
    """Peak traced memory while zipping 60 technicians is not much above that of 20: it does not grow with the
    number of technicians (a proportional growth would triple it)."""
    small = _course_with_technicians(world, make, 20)
    large = _course_with_technicians(world, make, 60)
    small_job = transcript_exports.create_zip_job(small, small.course.id).id
    large_job = transcript_exports.create_zip_job(large, large.course.id).id
    db.session.commit()
    job, peak_20 = _run_zip(small_job, peak=True)
    assert job.done_count == 20
    job, peak_60 = _run_zip(large_job, peak=True)
    assert job.done_count == 60
    print(f"tracemalloc peak: 20 technicians {peak_20 / 1e6:.1f} MB, 60 technicians {peak_60 / 1e6:.1f} MB")
    assert peak_60 < peak_20 * 1.5, (peak_20, peak_60)


def test_job_is_private_to_who_started_it(world, make):
    job = transcript_exports.create_zip_job(world.manager, world.course.id)
    other = make.actor(world.course, "manager")
    with pytest.raises(NotFound):
        transcript_exports.job_for(other, job.public_id)
    assert transcript_exports.job_for(world.manager, job.public_id) is job
    with pytest.raises(Forbidden):
        transcript_exports.create_zip_job(world.tech, world.course.id)
    job.status, job.heartbeat_at = "running", datetime.now(UTC) - timedelta(minutes=30)
    assert transcript_exports.progress(job)["status"] == "resuming"


def test_failed_zip_is_reported(world, monkeypatch):
    job_id = transcript_exports.create_zip_job(world.manager, world.course.id).id
    db.session.commit()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(transcript_pdf, "render", broken)
    transcript_exports.build_zip(job_id, BASE)
    job = db.session.get(ExportJob, job_id)
    assert job.status == "failed" and "disk full" in job.error and job.file_path is None


# --- CLI -----------------------------------------------------------------------------------------------------------

def test_cli_exports_each_format(world, app, tmp_path):
    db.session.commit()
    runner = app.test_cli_runner()
    email = world.tech.person.email
    for fmt, check in (("pdf", lambda b: b.startswith(b"%PDF")), ("csv", lambda b: b.startswith(b"section,")),
                       ("json", lambda b: json.loads(b)["person"]["email"] == email),
                       ("ob3", lambda b: {c["name"] for c in json.loads(b)["credentials"]} == {
                           "CEN-CART Cart fill", "PTCB Certified Pharmacy Technician (CPhT)"}),
                       ("clr", lambda b: b.count(b".") == 2)):
        out = tmp_path / f"t.{fmt}"
        result = runner.invoke(args=["transcripts", "export", "--technician", email.upper(), "--format", fmt,
                                     "--output", str(out)])
        assert result.exit_code == 0, result.output
        assert check(out.read_bytes()), fmt


def test_cli_refuses_unknown_and_ambiguous_emails(world, app, make, tmp_path):
    other_reg = make.registration(issuer="https://other.example.org")
    make.person(other_reg, email=world.tech.person.email)
    db.session.commit()
    runner = app.test_cli_runner()
    out = tmp_path / "t.pdf"
    result = runner.invoke(args=["transcripts", "export", "--technician", "nobody@example.org", "--format", "pdf",
                                 "--output", str(out)])
    assert result.exit_code != 0 and "No technician with email nobody@example.org" in result.output
    result = runner.invoke(args=["transcripts", "export", "--technician", world.tech.person.email, "--format", "pdf",
                                 "--output", str(out)])
    assert result.exit_code != 0 and "--issuer" in result.output and "https://other.example.org" in result.output
    assert not out.exists()
    result = runner.invoke(args=["transcripts", "export", "--technician", world.tech.person.email, "--format", "pdf",
                                 "--output", str(out), "--issuer", world.reg.issuer])
    assert result.exit_code == 0, result.output and out.read_bytes().startswith(b"%PDF")


def test_sign_off_snapshot_is_what_the_transcript_reports(world):
    so = db.session.get(SignOff, world.sign_offs["garb"].id)
    assert attestation.verify(so)["snapshot_intact"]
    data = transcripts.build(Actor(person=world.tech.person), world.tech.person.id, as_of=AS_OF)
    att = next(c for c in data["competencies"] if c["code"] == "IV-GARB")["attestations"][0]
    assert att["evidence_hash"] == so.evidence_hash
