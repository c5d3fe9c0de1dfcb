"""Reminder e-mails at scale: 10,000 reminders for 2,000 technicians planned and queued (time, SQL statements),
then sent by worker processes to a local SMTP server (messages per second).

The data: one tenant, 10 courses of 200 technicians (plus a manager each) on a framework of 5 competencies; every
technician holds all 5, signed so that each expires within the next 60 days, which makes one reminder per
technician and competency. Planning runs in this process; sending runs in `flask lti worker` processes against
the queue (Redis by default) and an aiosmtpd server started here.

    .venv/bin/python bench/reminders.py                       # PostgreSQL + Redis
    .venv/bin/python bench/reminders.py --workers 2 --threads 4
    .venv/bin/python bench/reminders.py --database-url sqlite:////tmp/reminders.sqlite3 --queue-url sqlite:////tmp/q.db

**The database is emptied and recreated.** Never point --database-url at a database you care about.
"""
import argparse
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, func, select, text  # noqa: E402

import config  # noqa: E402
from lti_tool import create_app  # noqa: E402
from lti_tool.extensions import db  # noqa: E402
from lti_tool.models import (  # noqa: E402
    Competency,
    Course,
    CourseFramework,
    Deployment,
    Evidence,
    Framework,
    Membership,
    Person,
    Registration,
    SentMessage,
    SignOff,
)
from lti_tool.services import mailer, preferences, reminders, status_store  # noqa: E402

COMPETENCIES = 5
COURSES = 10


def make_app(database_url, queue_url, queue_name, smtp_port):
    settings = config.load({"LTI_TOOL_ENV": "testing", "DATABASE_URL": config.normalise_database_url(database_url)})
    settings.update(PROXY_FIX_HOPS=0, TASK_QUEUE_URL=queue_url, TASK_QUEUE_NAME=queue_name, MAIL_BACKEND="smtp",
                    MAIL_HOST="127.0.0.1", MAIL_PORT=smtp_port, MAIL_TLS="none")
    return create_app(settings)


def ensure_database(url):
    if not url.startswith("postgresql"):
        return
    from sqlalchemy import create_engine

    base, name = url.rsplit("/", 1)
    engine = create_engine(config.normalise_database_url(base + "/postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


def seed(technicians: int, now: datetime):
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.session.commit()
    db.drop_all()
    db.create_all()
    reg = Registration(name="Bench Health", issuer="https://lms.bench.example.org", client_id="bench",
                       auth_login_url="https://lms.bench.example.org/auth",
                       auth_token_url="https://lms.bench.example.org/token",
                       jwks_url="https://lms.bench.example.org/jwks", settings={"time_zone": "America/Chicago"})
    db.session.add(reg)
    db.session.flush()
    db.session.add(Deployment(registration_id=reg.id, deployment_id="bench"))
    framework = Framework(registration_id=reg.id, code="bench", name="Bench", version="1",
                          scale=[{"code": "competent", "label": "Competent", "proficient": True}])
    db.session.add(framework)
    db.session.flush()
    competencies = [Competency(framework_id=framework.id, code=f"C{i}", title=f"Competency {i}", position=i,
                               revalidation_months=12) for i in range(COMPETENCIES)]
    db.session.add_all(competencies)
    courses = [Course(registration_id=reg.id, context_id=f"course-{c}", title=f"Pharmacy {c}") for c in range(COURSES)]
    db.session.add_all(courses)
    db.session.flush()
    db.session.add_all([CourseFramework(course_id=c.id, framework_id=framework.id) for c in courses])
    people = db.session.execute(Person.__table__.insert().returning(Person.__table__.c.id,
                                                                    sort_by_parameter_order=True), [
        {"registration_id": reg.id, "sub": f"p{n}", "name": f"Technician {n}", "given_name": f"Tech{n}",
         "email": f"tech{n}@bench.example.org", "is_admin": False, "created_at": now, "updated_at": now}
        for n in range(technicians + COURSES)]).scalars().all()
    techs, managers = people[:technicians], people[technicians:]
    per_course = technicians // COURSES
    rows = [{"person_id": p, "course_id": courses[i // per_course % COURSES].id, "role": "technician",
             "lti_roles": [], "active": True, "source": "roster", "created_at": now, "updated_at": now}
            for i, p in enumerate(techs)]
    rows += [{"person_id": m, "course_id": courses[i].id, "role": "manager", "lti_roles": [], "active": True,
              "source": "launch", "created_at": now, "updated_at": now} for i, m in enumerate(managers)]
    db.session.execute(Membership.__table__.insert(), rows)
    evidence = db.session.execute(Evidence.__table__.insert().returning(Evidence.__table__.c.id,
                                                                        sort_by_parameter_order=True), [
        {"person_id": p, "course_id": courses[i // per_course % COURSES].id, "kind": "cross_training",
         "title": f"Evidence {k}", "data": {}, "status": "signed_off", "revision": 1, "created_at": now,
         "updated_at": now} for i, p in enumerate(techs) for k in range(COMPETENCIES)]).scalars().all()
    sign_offs = []
    for n, evidence_id in enumerate(evidence):
        i, k = divmod(n, COMPETENCIES)
        expires = now + timedelta(days=1 + (n * 7) % 59, hours=3)  # spread over the next 60 days
        sign_offs.append({
            "person_id": techs[i], "competency_id": competencies[k].id, "course_id": courses[i // per_course
                                                                                              % COURSES].id,
            "evidence_id": evidence_id, "signer_id": managers[i // per_course % COURSES], "signer_name": "Manager",
            "signer_role": "manager", "rating_code": "competent", "rating_label": "Competent", "proficient": True,
            "method": "observed", "checklist_seen": [], "evidence_revision": 1, "evidence_hash": "0" * 64,
            "evidence_snapshot": {}, "signed_at": expires - timedelta(days=365), "expires_at": expires})
    db.session.execute(SignOff.__table__.insert(), sign_offs)
    # Bulk INSERTs bypass the workflow that keeps the stored status, which planning reads: judge it once, as
    # `status rebuild` does.
    status_store.rebuild()
    # Managers want no digest here: the figure is for the 10,000 reminders.
    for m in managers:
        preferences.update(db.session.get(Person, m), reminders=True, review_updates=True, digest="off")
    db.session.commit()


def count_statements():
    counter = [0]

    def before(conn, cursor, statement, parameters, context, executemany):
        counter[0] += 1

    event.listen(db.engine, "before_cursor_execute", before)
    return counter, lambda: event.remove(db.engine, "before_cursor_execute", before)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/reminders_bench"))
    parser.add_argument("--queue-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--technicians", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker process")
    args = parser.parse_args()

    from tests.support.queue import SmtpSink

    sink = SmtpSink()
    name = f"bench-{uuid.uuid4().hex[:8]}"
    ensure_database(args.database_url)
    app = make_app(args.database_url, args.queue_url, name, sink.port)
    now = datetime.now(UTC).replace(hour=15, minute=0)
    with app.app_context():
        started = time.perf_counter()
        seed(args.technicians, now)
        print(f"seeded {args.technicians} technicians x {COMPETENCIES} sign-offs "
              f"in {time.perf_counter() - started:.1f}s")

        counter, stop = count_statements()
        started = time.perf_counter()
        created = reminders.plan(now)
        db.session.commit()
        planned = time.perf_counter() - started
        queries = counter[0]
        started = time.perf_counter()
        for batch in mailer.batches(created):
            app.extensions["huey_tasks"]["send_messages"](batch)
        queued = time.perf_counter() - started
        stop()
        print(f"planned {len(created)} reminders in {planned:.2f}s with {queries} SQL statements; "
              f"queued {len(mailer.batches(created))} send tasks in {queued:.2f}s")
        counter, stop = count_statements()
        started = time.perf_counter()
        again = reminders.plan(now + timedelta(minutes=15))
        db.session.commit()
        stop()
        print(f"planning again (nothing new: {len(again)} rows) took {time.perf_counter() - started:.2f}s "
              f"with {counter[0]} SQL statements")

    env = dict(os.environ, LTI_TOOL_ENV="testing", DATABASE_URL=args.database_url, TASK_QUEUE_URL=args.queue_url,
               TASK_QUEUE_NAME=name, MAIL_BACKEND="smtp", MAIL_HOST="127.0.0.1", MAIL_PORT=str(sink.port),
               MAIL_TLS="none", PROXY_FIX_HOPS="0")
    started = time.perf_counter()
    procs = [subprocess.Popen([str(ROOT / ".venv/bin/flask"), "--app", "lti_tool", "lti", "worker", "--no-periodic",
                               "--workers", str(args.threads), "--max-delay", "0.5"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(args.workers)]
    try:
        deadline = time.monotonic() + 900
        while len(sink.messages) < len(created) and time.monotonic() < deadline:
            time.sleep(0.5)
        elapsed = time.perf_counter() - started
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
    with app.app_context():
        sent = db.session.scalar(select(func.count()).select_from(SentMessage).where(SentMessage.status == "sent"))
        app.extensions["huey"].storage.flush_all()
    print(f"{args.workers} worker processes x {args.threads} threads sent {len(sink.messages)} messages "
          f"({sent} rows marked sent) in {elapsed:.1f}s including worker start-up: "
          f"{len(sink.messages) / elapsed:.0f} messages/s")
    sink.stop()


if __name__ == "__main__":
    main()
