"""Transcript exports: CSV and JSON of one technician, a course matrix CSV, and the ZIP of every technician's PDF
built as an export job.

The ZIP job is a task on the queue (lti_tool.tasks: "build_export"), run by `flask lti worker`, so it survives
a deploy or a crash of the web process. The ExportJob row is the source of truth: the worker claims it with a
conditional update (two deliveries of the same task never build it twice) and touches its heartbeat after every
technician; a job whose worker died (heartbeat older than EXPORT_STALE_SECONDS) is claimed again by the next
sweep, up to MAX_ATTEMPTS times. The file is written to EXPORT_DIR, which several hosts must share.

Memory stays flat: one technician is loaded, rendered and written at a time; each PDF goes into the ZIP entry
and is dropped; the SQLAlchemy session is committed and emptied after each technician.
"""
import gc
import io
import json
import os
import uuid
import zipfile
from datetime import UTC, datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import or_, select, update

from .. import formatting
from ..extensions import db
from ..lti.roles import TECHNICIAN
from ..models import Course, ExportJob, Membership, Person, SignOff
from ..models.exports import DONE, FAILED, QUEUED, RUNNING
from . import (
    DomainError,
    Forbidden,
    NotFound,
    credentials,
    csv_cells,
    matrix,
    requirements,
    scope,
    settings,
    status,
    transcript_pdf,
    transcripts,
)
from .actors import Actor
from .transcripts import SIGNER_ROLE_LABELS

MAX_ATTEMPTS = 3
GC_EVERY = 10
CSV_COLUMNS = ["section", "group", "code", "title", "status", "signed_by", "signer_role", "date", "method",
               "rating", "evidence", "evidence_kind", "expires", "state", "detail"]


# --- one technician ----------------------------------------------------------------------------------------------

def to_json(transcript: dict) -> str:
    return json.dumps(transcript, indent=2, ensure_ascii=False, sort_keys=False)


def to_csv(transcript: dict) -> str:
    """One row per attestation, evidence item and CE requirement; the `section` column says which."""
    out = io.StringIO()
    writer = csv_cells.DictWriter(out, CSV_COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for entry in transcript["competencies"]:
        for att in entry["attestations"]:
            writer.writerow({
                "section": "competency", "group": entry["framework"]["name"], "code": entry["code"],
                "title": entry["title"], "status": entry["status_label"], "signed_by": att["signer_name"],
                "signer_role": att["signer_role_label"], "date": att["signed_at"], "method": att["method_label"],
                "rating": att["rating_label"], "evidence": att["evidence_title"],
                "evidence_kind": att["evidence_kind_label"], "expires": att["expires_at"] or "",
                "state": att["state_label"],
                "detail": att["revocation_reason"] or att["correction_reason"] or att["comment"] or ""})
    for group in transcript["cross_training"]:
        for item in group["items"]:
            writer.writerow({"section": "cross_training", "group": group["department"], "title": item["title"],
                             "status": item["status_label"], "signed_by": item.get("trainer_name") or "",
                             "date": item.get("start_date") or "", "expires": item.get("end_date") or "",
                             "detail": "; ".join(item.get("skills") or [])
                             + (f" ({item['hours']} h)" if item.get("hours") is not None else "")})
    for item in transcript["responsibilities"]:
        writer.writerow({"section": "responsibility", "group": item.get("role_label") or "", "title": item["title"],
                         "status": item["status_label"], "signed_by": item.get("supervisor") or "",
                         "date": item.get("start_date") or "", "expires": item.get("end_date") or "",
                         "detail": item.get("scope") or ""})
    for item in transcript["qi_projects"]:
        writer.writerow({"section": "qi_project", "title": item["title"], "status": item["status_label"],
                         "date": item.get("last_cycle_date") or "", "detail": item.get("aim") or ""})
    for item in transcript["certifications"]:
        writer.writerow({"section": "certification", "group": item.get("issuer") or "",
                         "code": item.get("number") or "", "title": item.get("credential_label") or item["title"],
                         "status": item["status_label"], "date": item.get("issued_date") or "",
                         "expires": item.get("expiry_date") or "", "state": "Expired" if item.get("expired") else ""})
    ce = transcript["continuing_education"]
    for item in ce["activities"]:
        writer.writerow({"section": "continuing_education", "code": item.get("uan") or "", "title": item["title"],
                         "status": item["status_label"], "date": item.get("completion_date") or "",
                         "detail": f"{item.get('hours')} h"})
    # Per cycle (services.ce.report, as on every page): "status" is the verified answer; the detail gives the
    # recorded hours beside the verified ones.
    for cycle in ce.get("cycles") or [ce["status"]]:
        for req, sent in zip(cycle["verified"]["requirements"], cycle["recorded"]["requirements"], strict=True):
            writer.writerow({"section": "ce_requirement", "group": cycle["name"], "code": req["code"],
                             "title": req["label"], "status": "Met" if req["met"] else "Not met",
                             "date": cycle["cycle_start"], "expires": cycle["cycle_end"],
                             "detail": f"{sent['hours']:g} h recorded; {req['hours']:g} of {req['min_hours']:g} h "
                                       "verified"})
        writer.writerow({"section": "ce_total", "group": cycle["name"], "title": "Total CE hours",
                         "status": "Met" if cycle["verified"]["met"] else "Not met",
                         "date": cycle["cycle_start"], "expires": cycle["cycle_end"],
                         "detail": f"{cycle['recorded']['hours']:g} h recorded; {cycle['verified']['hours']:g} of "
                                   f"{cycle['verified']['required_hours']:g} h verified. "
                                   f"{cycle['verified']['summary']}"})
    return out.getvalue()


def _matrix_cell(entry, signers: dict, tz) -> str:
    """"Achieved: signed Nov 30, 2026 by Maria Manager (Manager); expires May 30, 2027" for a held competency
    (and an expired one); the status alone otherwise."""
    required = requirements.note(entry)
    if entry.sign_off_id is None or entry.sign_off_id not in signers:
        return f"{entry.label}; {required}" if required else entry.label
    name, role = signers[entry.sign_off_id]
    cell = (f"{entry.label}: signed {formatting.us_date(entry.achieved_at, tz)} by {name} "
            f"({SIGNER_ROLE_LABELS.get(role, role)})")
    if entry.expires_at is not None:
        verb = "expired" if entry.status == status.EXPIRED else "expires"
        cell += f"; {verb} {formatting.us_date(entry.expires_at, tz)}"
    return f"{cell}; {required}" if required else cell


def course_matrix_csv(actor, course_id: int, as_of=None) -> str:
    """Technicians (rows) x competencies (columns) of one course, in framework order, leaves only (areas are
    groupings, not competencies): status, and for held ones the date, signer and expiration. Managers only."""
    course = scope.course(actor, course_id)
    if not scope.manages(actor.person.id, course.id):
        if scope.is_member(actor.person.id, course.id):
            raise Forbidden(_("Only the course's managers can export the team matrix."))
        raise NotFound(_("No such course."))
    competencies = matrix.course_tree(course).leaves
    statuses = status.team_statuses(actor, course, competency_ids=[c.id for c in competencies], as_of=as_of)
    people = {p.id: p for p in db.session.scalars(select(Person).where(Person.id.in_(list(statuses))))}
    held_ids = {e.sign_off_id for row in statuses.values() for e in row.values() if e.sign_off_id is not None}
    signers = {row.id: (row.signer_name, row.signer_role) for row in db.session.execute(
        select(SignOff.id, SignOff.signer_name, SignOff.signer_role).where(SignOff.id.in_(held_ids)))} \
        if held_ids else {}
    tz = settings.time_zone(course.registration)
    out = io.StringIO()
    writer = csv_cells.writer(out, lineterminator="\r\n")
    writer.writerow(["technician", "email", *(f"{c.code} {c.title}" for c in competencies), "held"])
    for person_id in sorted(statuses, key=lambda p: people[p].display_name.lower()):
        cells = [_matrix_cell(statuses[person_id][c.id], signers, tz) for c in competencies]
        held = sum(1 for e in statuses[person_id].values() if e.held)
        writer.writerow([people[person_id].display_name, people[person_id].email or "", *cells,
                         f"{held}/{len(competencies)}"])
    return out.getvalue()


def pdf_for(actor, person_id: int, base: str, page_size: str = "letter", as_of=None,
            out=None) -> tuple[dict, bytes | None]:
    """(transcript, PDF bytes), registering the printed transcript so its verification link answers. With `out`
    (a binary file) the PDF is written there and (transcript, None) returned."""
    transcript = transcripts.build(actor, person_id, as_of=as_of)
    row = credentials.register_transcript(transcript, actor.registration_id)
    return transcript, transcript_pdf.render(transcript, credentials.verify_url(base, row.public_id), page_size,
                                             out)


def file_name(transcript: dict, extension: str) -> str:
    name = "".join(ch if ch.isalnum() else "-" for ch in transcript["person"]["name"]).strip("-").lower()
    return f"transcript-{name or 'technician'}-{transcript['person']['id']}.{extension}"


# --- the ZIP job --------------------------------------------------------------------------------------------------

def export_dir() -> str:
    configured = current_app.config.get("EXPORT_DIR")
    path = configured or (current_app.config["ATTACHMENT_DIR"].rstrip("/\\") + "-exports")
    os.makedirs(path, exist_ok=True)
    return path


def _technicians(course_id: int) -> list[int]:
    return list(db.session.scalars(
        select(Membership.person_id).where(Membership.course_id == course_id, Membership.active.is_(True),
                                           Membership.role == TECHNICIAN).order_by(Membership.person_id)))


def create_zip_job(actor, course_id: int, page_size: str = "letter", base: str | None = None) -> ExportJob:
    course = scope.course(actor, course_id)
    if not scope.manages(actor.person.id, course.id):
        if scope.is_member(actor.person.id, course.id):
            raise Forbidden(_("Only the course's managers can export every technician's transcript."))
        raise NotFound(_("No such course."))
    if page_size not in transcript_pdf.PAGE_SIZES:
        raise DomainError(_("Choose A4 or Letter."), fields={"page_size": "Choose a4 or letter."})
    job = ExportJob(public_id=str(uuid.uuid4()), registration_id=actor.registration_id, course_id=course.id,
                    requested_by_id=actor.person.id, options={"page_size": page_size, "base": base}, status=QUEUED,
                    total=len(_technicians(course.id)))
    db.session.add(job)
    db.session.flush()
    return job


def job_for(actor, public_id: str) -> ExportJob:
    """A job the actor may see: one they started, in their tenant. Anything else: not found."""
    job = db.session.scalars(select(ExportJob).where(ExportJob.public_id == str(public_id))).first()
    if job is None or job.registration_id != actor.registration_id or job.requested_by_id != actor.person.id:
        raise NotFound(_("No such export."))
    return job


def _stale_after() -> timedelta:
    return timedelta(seconds=current_app.config["EXPORT_STALE_SECONDS"])


def progress(job: ExportJob, now: datetime | None = None) -> dict:
    now = now or datetime.now(UTC)
    state = job.status
    if state == RUNNING and job.heartbeat_at is not None and now - job.heartbeat_at > _stale_after():
        state = "resuming"  # its worker stopped; the sweep gives the job to another one
    percent = 100 if state == DONE else (int(100 * job.done_count / job.total) if job.total else 0)
    return {"id": job.public_id, "status": state, "done": job.done_count, "total": job.total, "percent": percent,
            "error": job.error, "file_size": job.file_size,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None}


def _claimable(now: datetime):
    return (ExportJob.status == QUEUED) | (
        (ExportJob.status == RUNNING) & or_(ExportJob.heartbeat_at.is_(None),
                                            ExportJob.heartbeat_at < now - _stale_after()))


def claim(job_id: int, now: datetime | None = None) -> bool:
    """Take the job for this worker: queued, or running with a worker that stopped. One conditional update, so of
    two workers handed the same job only one gets it. Committed at once."""
    now = now or datetime.now(UTC)
    claimed = db.session.execute(
        update(ExportJob).where(ExportJob.id == job_id, _claimable(now), ExportJob.attempts < MAX_ATTEMPTS)
        .values(status=RUNNING, started_at=now, heartbeat_at=now, attempts=ExportJob.attempts + 1,
                done_count=0)).rowcount == 1
    db.session.commit()
    return claimed


def unfinished(now: datetime | None = None) -> list[int]:
    """Jobs the sweep must queue again: never picked up, or their worker stopped. A job that has used up its
    attempts is marked failed here, so somebody sees why."""
    now = now or datetime.now(UTC)
    rows = db.session.execute(select(ExportJob.id, ExportJob.attempts).where(_claimable(now))).all()
    gave_up = [job_id for job_id, attempts in rows if attempts >= MAX_ATTEMPTS]
    if gave_up:
        db.session.execute(update(ExportJob).where(ExportJob.id.in_(gave_up)).values(
            status=FAILED, finished_at=now, error="The export stopped several times. Start it again."))
        db.session.flush()
    return [job_id for job_id, attempts in rows if attempts < MAX_ATTEMPTS]


def build_zip(job_id: int, base: str | None = None, *, commit_every: int = 1) -> bool:
    """Build the ZIP of job `job_id` (in the current app context) if this worker can claim it. Writes each
    technician's PDF into the archive as soon as it is made, commits progress, and empties the session between
    technicians. Returns False when another worker has the job or it is finished."""
    if not claim(job_id):
        return False
    job = db.session.get(ExportJob, job_id)
    base = base or (job.options or {}).get("base") or current_app.config["TOOL_BASE_URL"]
    course_id, requested_by_id, page_size = job.course_id, job.requested_by_id, (job.options or {}).get("page_size",
                                                                                                      "letter")
    # One file per attempt: a worker taken for dead but only slow never writes into the file of its successor.
    path = os.path.join(export_dir(), f"{job.public_id}-{job.attempts}.zip")
    try:
        person_ids = _technicians(course_id)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for n, person_id in enumerate(person_ids, start=1):
                requester = db.session.get(Person, requested_by_id)
                course = db.session.get(Course, course_id)
                membership = db.session.scalars(select(Membership).where(
                    Membership.person_id == requested_by_id, Membership.course_id == course_id)).first()
                actor = Actor(person=requester, course=course, membership=membership)
                transcript, pdf = pdf_for(actor, person_id, base, page_size)
                with archive.open(file_name(transcript, "pdf"), "w", force_zip64=True) as entry:
                    entry.write(pdf)
                del pdf, transcript
                # reportlab's documents hold reference cycles; collect them every few PDFs rather than whenever
                # the collector's thresholds say, so the peak is bounded whatever the number of technicians (a
                # full collection costs ~80 ms, so not after every PDF).
                if n % GC_EVERY == 0:
                    gc.collect()
                if n % commit_every == 0 or n == len(person_ids):
                    row = db.session.get(ExportJob, job_id)
                    row.done_count, row.total = n, len(person_ids)
                    row.heartbeat_at = datetime.now(UTC)
                    db.session.commit()
                    db.session.expunge_all()
        job = db.session.get(ExportJob, job_id)
        job.status, job.file_path, job.file_size = DONE, path, os.path.getsize(path)
        job.finished_at = datetime.now(UTC)
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        current_app.logger.exception("Transcript export %s failed", job_id)
        job = db.session.get(ExportJob, job_id)
        job.status, job.error, job.finished_at = FAILED, f"The export stopped: {exc}", datetime.now(UTC)
        db.session.commit()
        if os.path.exists(path):
            os.remove(path)
    return True
