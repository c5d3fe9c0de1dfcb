"""Transcript benchmark: time and peak memory for one transcript PDF with 200 entries, and for the ZIP of every
technician's PDF in a course of 500 technicians (the export job's own function, build_zip).

    .venv/bin/python bench/transcripts.py                       # SQLite file in a temp dir
    .venv/bin/python bench/transcripts.py --technicians 100     # a smaller ZIP
    .venv/bin/python bench/transcripts.py --database-url postgresql://postgres@127.0.0.1/lti_bench

Memory is reported two ways: the tracemalloc peak of Python allocations during the step (the number that shows
whether the ZIP grows with the number of technicians), and the process's maximum resident set size
(resource.getrusage), which includes the interpreter, reportlab and the database driver. The database is
emptied and recreated: never point --database-url at a database you care about.
"""
import argparse
import os
import resource
import sys
import tempfile
import time
import tracemalloc
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import config  # noqa: E402
from lti_tool import create_app  # noqa: E402
from lti_tool.extensions import db  # noqa: E402
from lti_tool.lti import keys  # noqa: E402
from lti_tool.models import (  # noqa: E402
    Competency,
    Course,
    CourseFramework,
    Evidence,
    EvidenceCompetency,
    Framework,
    Membership,
    Person,
    Registration,
    SignOff,
)
from lti_tool.services import transcript_exports  # noqa: E402
from lti_tool.services.actors import Actor  # noqa: E402

SCALE = [{"code": "not_yet", "label": "Not yet competent", "proficient": False},
         {"code": "competent", "label": "Competent", "proficient": True}]
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
BASE = "https://tool.example.org"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed(n_technicians: int, entries_for_first: int):
    """One tenant, one course, 40 competencies; the first technician has `entries_for_first` signed-off entries
    (sign-offs with their evidence), every other technician 5. Rows are written directly, in bulk."""
    reg = Registration(name="Bench Health System", issuer="https://bench.example.org", client_id="bench",
                       auth_login_url="https://bench.example.org/a", auth_token_url="https://bench.example.org/t",
                       jwks_url="https://bench.example.org/j")
    db.session.add(reg)
    db.session.flush()
    course = Course(registration_id=reg.id, context_id="bench-course", title="Bench course")
    framework = Framework(registration_id=reg.id, code="bench", name="Bench framework", version="1", scale=SCALE)
    db.session.add_all([course, framework])
    db.session.flush()
    competencies = [Competency(framework_id=framework.id, code=f"C-{i:03d}", title=f"Competency number {i}",
                               departments=["central"], revalidation_months=24, position=i) for i in range(40)]
    db.session.add_all(competencies)
    db.session.add(CourseFramework(course_id=course.id, framework_id=framework.id))
    manager = Person(registration_id=reg.id, sub="manager", name="Mina Manager", email="mina@example.org")
    db.session.add(manager)
    db.session.flush()
    db.session.add(Membership(person_id=manager.id, course_id=course.id, role="manager", lti_roles=[]))
    for n in range(n_technicians):
        person = Person(registration_id=reg.id, sub=f"tech-{n}", name=f"Technician {n:04d}",
                        email=f"tech{n}@example.org")
        db.session.add(person)
        db.session.flush()
        db.session.add(Membership(person_id=person.id, course_id=course.id, role="technician", lti_roles=[]))
        entries = entries_for_first if n == 0 else 5
        for e in range(entries):
            competency = competencies[e % len(competencies)]
            ev = Evidence(person_id=person.id, course_id=course.id, kind="cross_training",
                          title=f"Cross-training session {e}", status="signed_off", revision=1,
                          data={"department": "central", "skills": ["Cart fill", "Unit dose"],
                                "trainer_name": "Dana Trainer", "hours": 4, "start_date": "2025-01-06",
                                "end_date": "2025-01-06"},
                          competency_links=[EvidenceCompetency(competency_id=competency.id)])
            db.session.add(ev)
            db.session.flush()
            signed = T0 + timedelta(hours=e)
            db.session.add(SignOff(person_id=person.id, competency_id=competency.id, course_id=course.id,
                                   evidence_id=ev.id, signer_id=manager.id, signer_name="Mina Manager",
                                   signer_role="manager", rating_code="competent", rating_label="Competent",
                                   proficient=True, method="observed", checklist_seen=[], evidence_revision=1,
                                   evidence_hash="0" * 64, evidence_snapshot={}, signed_at=signed,
                                   expires_at=signed + timedelta(days=730)))
        if n % 50 == 0:
            db.session.commit()
    db.session.commit()
    return course.id, manager.id


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--technicians", type=int, default=500)
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-transcripts-")
    url = config.normalise_database_url(args.database_url or f"sqlite:///{tmp}/bench.sqlite3")
    settings = config.load({"LTI_TOOL_ENV": "testing", "DATABASE_URL": url})
    settings.update(PROXY_FIX_HOPS=0, ATTACHMENT_DIR=os.path.join(tmp, "attachments"))
    app = create_app(settings)
    with app.app_context():
        db.drop_all()
        db.create_all()
        keys.ensure_published()
        started = time.perf_counter()
        course_id, manager_id = seed(args.technicians, args.entries)
        print(f"database {url.split('@')[-1]}: seeded {args.technicians} technicians in "
              f"{time.perf_counter() - started:.1f} s")

        manager = db.session.get(Person, manager_id)
        membership = db.session.query(Membership).filter_by(person_id=manager_id).one()
        actor = Actor(person=manager, course=db.session.get(Course, course_id), membership=membership)
        first = db.session.query(Membership.person_id).filter_by(course_id=course_id, role="technician") \
            .order_by(Membership.person_id).first()[0]

        for size in ("a4", "letter"):
            tracemalloc.start()
            started = time.perf_counter()
            transcript, pdf = transcript_exports.pdf_for(actor, first, BASE, size)
            elapsed = time.perf_counter() - started
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            db.session.rollback()
            print(f"one PDF ({size}), {transcript['counts']['attestations']} sign-offs + "
                  f"{transcript['counts']['evidence']} evidence entries: {elapsed:.2f} s, {len(pdf) / 1024:.0f} KiB, "
                  f"tracemalloc peak {peak / 1e6:.1f} MB, max RSS so far {rss_mb():.0f} MB")
            started = time.perf_counter()
            transcript_exports.pdf_for(actor, first, BASE, size)
            db.session.rollback()
            print(f"  the same PDF without tracemalloc: {time.perf_counter() - started:.2f} s")

        job = transcript_exports.create_zip_job(actor, course_id, "a4")
        db.session.commit()
        job_id = job.id
        rss_before = rss_mb()
        tracemalloc.start()
        started = time.perf_counter()
        transcript_exports.build_zip(job_id, BASE)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        job = db.session.get(transcript_exports.ExportJob, job_id)
        with zipfile.ZipFile(job.file_path) as archive:
            count = len(archive.namelist())
        print(f"ZIP of {count} technicians' PDFs: {elapsed:.1f} s ({elapsed / max(count, 1) * 1000:.0f} ms each, "
              f"under tracemalloc), {job.file_size / 1e6:.1f} MB, tracemalloc peak {peak / 1e6:.1f} MB, "
              f"max RSS {rss_before:.0f} MB before -> {rss_mb():.0f} MB after")
        started = time.perf_counter()
        # build_zip empties the session: load the acting manager again.
        manager = db.session.get(Person, manager_id)
        membership = db.session.query(Membership).filter_by(person_id=manager_id).one()
        actor = Actor(person=manager, course=db.session.get(Course, course_id), membership=membership)
        job2 = transcript_exports.create_zip_job(actor, course_id, "a4")
        db.session.commit()
        transcript_exports.build_zip(job2.id, BASE)
        print(f"the same ZIP without tracemalloc: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
