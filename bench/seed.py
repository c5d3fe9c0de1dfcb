"""Seed a benchmark course: N technicians (default 2,000) on the shipped default framework, with a realistic mix of
sign-offs (some expired or due for revalidation, a few revoked), open review requests and drafts.

Rows go in with bulk INSERTs (executemany / insertmanyvalues), not one ORM object at a time, so 2,000 technicians
take seconds. Usage:

    .venv/bin/python bench/seed.py --database-url postgresql://postgres@127.0.0.1:5432/bench --reset
"""
import argparse
import hashlib
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from urllib.parse import urlsplit, urlunsplit  # noqa: E402

from sqlalchemy import create_engine, text  # noqa: E402

import config  # noqa: E402
from lti_tool import create_app  # noqa: E402
from lti_tool.extensions import db  # noqa: E402

GIVEN = ["Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Grace", "Hiro", "Ines", "Jamal", "Kofi", "Lena", "Mateo",
         "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tess", "Uma", "Vik", "Wen", "Yara", "Zoe"]
FAMILY = ["Nguyen", "Garcia", "Smith", "Okafor", "Kowalski", "Haddad", "Ivanova", "Tanaka", "Silva", "Brown",
          "Mensah", "Rossi", "Khan", "Dubois", "Larsen", "Murphy", "Novak", "Chen", "Lopez", "Ahmed"]


def ensure_postgres_database(url: str) -> None:
    """Create the benchmark's PostgreSQL database when missing (a fresh machine has none)."""
    url = config.normalise_database_url(url)
    if not url.startswith("postgresql"):
        return
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = create_engine(urlunsplit(parts._replace(path="/postgres")), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def make_app(database_url: str):
    url = config.normalise_database_url(database_url)
    ensure_postgres_database(url)
    return create_app(dict(config.load({"LTI_TOOL_ENV": "testing", "DATABASE_URL": url}), PROXY_FIX_HOPS=0))


def reset_schema():
    from sqlalchemy import text

    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.session.commit()
    db.drop_all()
    db.create_all()
    db.session.commit()


def _insert(model, rows, returning=True):
    """Core executemany on the table (the ORM's bulk path splits rows into small groups); ids in row order."""
    if not rows:
        return []
    table = model.__table__
    if returning:
        stmt = table.insert().returning(table.c.id, sort_by_parameter_order=True)
        return list(db.session.execute(stmt, rows).scalars())
    db.session.execute(table.insert(), rows)
    return []


def seed(technicians: int = 2000, *, rng_seed: int = 7, now: datetime | None = None, per_person: int = 30) -> dict:
    """Build the course inside the current app context and commit. Returns ids and counts."""
    from sqlalchemy import text

    from lti_tool.models import (
        Course,
        CourseFramework,
        Deployment,
        Evidence,
        EvidenceCompetency,
        Membership,
        Person,
        Registration,
        ReviewRequest,
        SignOff,
        SignOffRevocation,
    )
    from lti_tool.services import frameworks, matrix
    from lti_tool.services.status import expiry_for

    rng = random.Random(rng_seed)
    now = now or datetime.now(UTC)
    started = time.perf_counter()
    suffix = f"{int(time.time() * 1000) % 10**9}"
    registration = Registration(name="Bench LMS", issuer=f"https://bench-{suffix}.example.org",
                                client_id=f"bench-{suffix}", auth_login_url="https://bench.example.org/auth",
                                auth_token_url="https://bench.example.org/token",
                                jwks_url="https://bench.example.org/jwks")
    db.session.add(registration)
    db.session.flush()
    deployment = Deployment(registration_id=registration.id, deployment_id="1")
    course = Course(registration_id=registration.id, context_id=f"bench-{suffix}", title="Pharmacy team (bench)",
                    roster_synced_at=now - timedelta(minutes=40))
    db.session.add_all([deployment, course])
    db.session.flush()
    framework = frameworks.ensure_default_framework()
    db.session.add(CourseFramework(course_id=course.id, framework_id=framework.id))
    manager = Person(registration_id=registration.id, sub="bench-manager", name="Morgan Manager",
                     given_name="Morgan", family_name="Manager", last_launch_at=now)
    db.session.add(manager)
    db.session.flush()
    manager_membership = Membership(person_id=manager.id, course_id=course.id, role="manager", lti_roles=[],
                                    last_launch_at=now)
    db.session.add(manager_membership)
    db.session.flush()
    leaves = matrix.course_tree(course).leaves
    scale = {level["code"]: level for level in framework.scale}

    people = []
    for i in range(technicians):
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        launched = rng.random() > 0.15  # about one in seven never opened the tool (roster only)
        people.append({"registration_id": registration.id, "sub": f"tech-{i}", "name": f"{given} {family} {i}",
                       "given_name": given, "family_name": f"{family} {i:05d}",
                       "email": f"tech{i}@bench.example.org", "is_admin": False,
                       "last_launch_at": now - timedelta(days=rng.randint(0, 60)) if launched else None,
                       "created_at": now, "updated_at": now})
    person_ids = _insert(Person, people)
    _insert(Membership, [{"person_id": pid, "course_id": course.id, "role": "technician", "lti_roles": [],
                          "active": rng.random() > 0.04, "source": "roster", "created_at": now,
                          "updated_at": now} for pid in person_ids], returning=False)

    # What each technician has done: (person, competency, kind of history).
    plans = []
    for pid in person_ids:
        for comp in rng.sample(leaves, min(per_person, len(leaves))):
            roll = rng.random()
            kind = ("signed" if roll < 0.72 else "open" if roll < 0.80 else "draft" if roll < 0.90
                    else "not_yet" if roll < 0.95 else "revoked")
            plans.append((pid, comp, kind))

    evidence_rows = []
    for pid, comp, kind in plans:
        created = now - timedelta(days=rng.randint(1, 1000))
        status = {"signed": "signed_off", "revoked": "signed_off", "not_yet": "signed_off", "open": "submitted",
                  "draft": "draft"}[kind]
        evidence_rows.append({
            "person_id": pid, "course_id": course.id, "kind": (comp.evidence_kinds or ["cross_training"])[0],
            "title": f"{comp.code} evidence", "data": {"department": (comp.departments or ["other"])[0],
                                                       "hours": rng.randint(1, 40)},
            "status": status, "revision": 1, "created_at": created, "updated_at": created,
            "submitted_at": created + timedelta(days=1) if kind != "draft" else None})
    evidence_ids = _insert(Evidence, evidence_rows)
    _insert(EvidenceCompetency, [{"evidence_id": eid, "competency_id": comp.id}
                                 for eid, (_p, comp, _k) in zip(evidence_ids, plans, strict=True)], returning=False)

    requests, sign_offs, revoke_after = [], [], []
    for eid, row, (pid, comp, kind) in zip(evidence_ids, evidence_rows, plans, strict=True):
        if kind == "draft":
            continue
        requested = row["submitted_at"]
        if kind == "open":
            requests.append({"evidence_id": eid, "competency_id": comp.id, "course_id": course.id,
                             "person_id": pid, "status": "open", "evidence_revision": 1, "requested_at": requested})
            continue
        signed_at = min(now - timedelta(hours=1), requested + timedelta(days=rng.randint(0, 14)))
        level = scale["not_yet" if kind == "not_yet" else rng.choice(["competent", "competent", "trainer"])]
        digest = hashlib.sha256(f"{eid}".encode()).hexdigest()
        sign_offs.append({
            "review_request_id": None, "person_id": pid, "competency_id": comp.id, "course_id": course.id,
            "evidence_id": eid, "signer_id": manager.id, "signer_name": manager.name, "signer_role": "manager",
            "rating_code": level["code"], "rating_label": level["label"], "proficient": bool(level["proficient"]),
            "method": rng.choice(["observed", "demonstrated", "verified_document", "attested"]),
            "checklist_seen": list(comp.checklist or [])[:2], "comment": None, "evidence_revision": 1,
            "evidence_hash": digest, "evidence_snapshot": {"kind": row["kind"], "title": row["title"],
                                                           "data": row["data"], "attachments": [], "revision": 1},
            "signed_at": signed_at, "expires_at": expiry_for(comp, signed_at, bool(level["proficient"])),
            "corrects_id": None, "correction_reason": None})
        revoke_after.append(kind == "revoked")
    _insert(ReviewRequest, requests, returning=False)
    sign_off_ids = _insert(SignOff, sign_offs)
    _insert(SignOffRevocation, [
        {"sign_off_id": sid, "revoked_by_id": manager.id, "reason": "Assessed on the wrong equipment",
         "revoked_at": now - timedelta(days=1)}
        for sid, revoked in zip(sign_off_ids, revoke_after, strict=True) if revoked], returning=False)
    # A requirement for everyone, past its date: the USP <797> annual set a survey asks about first (the stored
    # status's "required" and "overdue", the matrix's filters and the manager's notices read it).
    try:
        from lti_tool.models import Requirement
    except ImportError:  # an older tree without requirements
        Requirement = None
    if Requirement is not None:
        required = [leaf.id for leaf in leaves[:5]]
        db.session.add(Requirement(registration_id=registration.id, course_id=course.id, name="Annual sterile set",
                                   competency_ids=required, chosen_ids=required, audience="everyone",
                                   due_on=(now - timedelta(days=30)).date(), created_by_id=manager.id))
    db.session.commit()
    try:  # bulk INSERTs bypass the workflow that keeps the stored status: judge it once, as `status rebuild` does
        from lti_tool.services import status_store
    except ImportError:  # an older tree without a stored status
        status_store = None
    if status_store is not None:
        status_store.rebuild(course.id)
        db.session.commit()
    if db.engine.dialect.name == "postgresql":
        # Fresh bulk-loaded tables have no planner statistics until autovacuum gets to them; without these the
        # first queries run as nested loops over every row. VACUUM too: it sets the hint bits and visibility map
        # that a settled database has (index-only scans), and autovacuum no longer starts on the new rows in the
        # middle of the measurements (pages right after seeding ran 20-40 % slower than the same pages later).
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM (ANALYZE)"))
    return {"registration_id": registration.id, "course_id": course.id, "manager_id": manager.id,
            "membership_id": manager_membership.id, "technicians": technicians, "competencies": len(leaves),
            "evidence": len(evidence_ids), "sign_offs": len(sign_off_ids), "open_requests": len(requests),
            "seconds": time.perf_counter() - started}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"), required=not os.environ.get(
        "DATABASE_URL"), help="where to seed (PostgreSQL or SQLite URL)")
    parser.add_argument("--technicians", type=int, default=2000)
    parser.add_argument("--reset", action="store_true", help="drop and recreate every table first")
    args = parser.parse_args(argv)
    app = make_app(args.database_url)
    with app.app_context():
        if args.reset:
            reset_schema()
        made = seed(args.technicians)
    print(f"Seeded course {made['course_id']}: {made['technicians']} technicians x {made['competencies']} "
          f"competencies, {made['evidence']} evidence items, {made['sign_offs']} sign-offs, "
          f"{made['open_requests']} open review requests in {made['seconds']:.1f} s")


if __name__ == "__main__":
    main()
