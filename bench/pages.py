"""Pages and the transcript PDF on PostgreSQL: server time (median of repeated requests), SQL statements and HTML
size of the technician's dashboard, the review queue, the manager's home page, the team matrix's first page and
each of its filters, at 60 and 2,000 technicians (bench/seed.py: ~30 competencies with history each, five
required of everyone and past their date); then the PDF transcript at 50, 200, 400 and 800 entries (half
sign-offs, half evidence items; bench/transcripts.py's data).

Pages are requested in-process through Flask's test client, so the time is the server's: session, queries,
template; no network. "CPU ms" is this process's CPU time (not the database's): on a machine shared with other
work it moves far less than the wall-clock figures. Statements are counted on the engine. The database is
emptied and recreated: never point --database-url at a database you care about.

    .venv/bin/python bench/pages.py --database-url postgresql://postgres@127.0.0.1:5432/bench_pages
    .venv/bin/python bench/pages.py --technicians 60 --pdf-entries 200 --repeat 5
    .venv/bin/python bench/pages.py --only "manager home" --pdf-entries ''

bench/compare.py calls main(argv) and reads the rows it returns.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, select  # noqa: E402

from bench.seed import make_app, reset_schema, seed  # noqa: E402
from lti_tool.extensions import db  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/bench_pages"  # created when missing
WARM_REQUESTS = 11  # before the measured ones
BASE = "https://tool.example.org"
MATRIX = [
    ("matrix: first page", {}),
    ("matrix: department IV room", {"department": "iv_room"}),
    ("matrix: expired", {"status": "expired"}),
    ("matrix: expiring within 30 days", {"expiring": "30"}),
    ("matrix: expiring within 60 days", {"expiring": "60"}),
    ("matrix: expiring within 90 days", {"expiring": "90"}),
    ("matrix: due for revalidation", {"status": "due_for_revalidation"}),
    ("matrix: awaiting review", {"status": "awaiting_review"}),
    ("matrix: in progress", {"status": "in_progress"}),
    ("matrix: not started", {"status": "not_started"}),
    ("matrix: achieved (held)", {"status": "achieved"}),
    ("matrix: needs re-assessment", {"status": "needs_reassessment"}),
    ("matrix: expired + IV room", {"status": "expired", "department": "iv_room"}),
    ("matrix: required", {"status": "required"}),
    ("matrix: required overdue", {"status": "overdue"}),
]


def _token(app, person_id: int, course_id: int) -> str:
    from lti_tool import tool_session
    from lti_tool.models import Membership, Person

    with app.test_request_context("/"):
        person = db.session.get(Person, person_id)
        membership = db.session.scalar(select(Membership).where(Membership.person_id == person_id,
                                                                Membership.course_id == course_id))
        return tool_session.issue(person, membership, None)


def _busiest_technician(course_id: int) -> int:
    """The active technician with the most evidence (the dashboard's worst case in the seeded course)."""
    from sqlalchemy import func

    from lti_tool.models import Evidence, Membership

    return db.session.scalar(
        select(Evidence.person_id).join(Membership, (Membership.person_id == Evidence.person_id)
                                        & (Membership.course_id == course_id) & Membership.active.is_(True))
        .where(Membership.role == "technician")
        .group_by(Evidence.person_id).order_by(func.count().desc(), Evidence.person_id).limit(1))


def measure(app, path: str, params: dict, repeat: int) -> dict | None:
    """Median/min server ms, statements per request, HTML KB; None when the page refuses the parameters."""
    counter = [0]

    def count(conn, cursor, statement, parameters, context, executemany):
        counter[0] += 1

    client = app.test_client()
    with app.app_context():
        engine = db.engine
    first = client.get(path, query_string=params)  # warm: templates compiled, caches filled
    if first.status_code != 200:
        return None
    # A worker's steady state: a statement run 10 times could switch to a generic plan on PostgreSQL (the
    # "not started" filter went from 77 to 255 ms at its 11th request before create_app stopped prepared
    # statements), which fewer requests never showed.
    for _ in range(WARM_REQUESTS - 1):
        client.get(path, query_string=params)
    times, cpu, counts = [], [], []
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(repeat):
            counter[0] = 0
            started, started_cpu = time.perf_counter(), time.process_time()
            resp = client.get(path, query_string=params)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
            counts.append(counter[0])
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "cpu_ms": statistics.median(cpu),
            "queries": max(counts), "kb": len(resp.get_data()) / 1024}


def pages(app, technicians: int, repeat: int, only: str = "") -> list[dict]:
    with app.app_context():
        reset_schema()
        made = seed(technicians)
        tech = _busiest_technician(made["course_id"])
    manager = _token(app, made["manager_id"], made["course_id"])
    technician = _token(app, tech, made["course_id"])
    rows = []
    scenarios = [("dashboard /me/", "/me/", {"lt": technician}), ("review queue", "/team/queue", {"lt": manager}),
                 ("manager home /app/", "/app/", {"lt": manager})]
    scenarios += [(name, "/team/", {"lt": manager, **params}) for name, params in MATRIX]
    for name, path, params in scenarios:
        if only and only not in name:
            continue
        result = measure(app, path, params, repeat)
        rows.append({"what": name, "technicians": technicians, **(result or {"skipped": True})})
    return rows


def pdfs(app, sizes, repeat: int) -> list[dict]:
    from bench import transcripts as transcript_bench
    from lti_tool.lti import keys
    from lti_tool.models import Course, Membership, Person
    from lti_tool.services import transcript_exports
    from lti_tool.services.actors import Actor

    rows = []
    for entries in sizes:
        with app.app_context():
            reset_schema()
            keys.ensure_published()
            course_id, manager_id = transcript_bench.seed(1, max(1, entries // 2))
            manager = db.session.get(Person, manager_id)
            membership = db.session.scalar(select(Membership).where(Membership.person_id == manager_id))
            actor = Actor(person=manager, course=db.session.get(Course, course_id), membership=membership)
            first = db.session.scalar(select(Membership.person_id).where(
                Membership.course_id == course_id, Membership.role == "technician"))
            transcript_exports.pdf_for(actor, first, BASE, "letter")  # warm: fonts, imports
            db.session.rollback()
            times, cpu = [], []
            for _ in range(repeat):
                started, started_cpu = time.perf_counter(), time.process_time()
                transcript, pdf = transcript_exports.pdf_for(actor, first, BASE, "letter")
                times.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
                db.session.rollback()
            counts = transcript["counts"]
            rows.append({"what": f"PDF {counts['attestations']} sign-offs + {counts['evidence']} evidence",
                         "entries": counts["attestations"] + counts["evidence"],
                         "median_ms": statistics.median(times), "min_ms": min(times),
                         "cpu_ms": statistics.median(cpu), "kb": len(pdf) / 1024})
    return rows


def _numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL),
                        help=f"PostgreSQL URL, emptied and recreated (default {DEFAULT_URL})")
    parser.add_argument("--technicians", default="60,2000", help="team sizes, comma-separated")
    parser.add_argument("--pdf-entries", default="50,200,400,800", help="PDF sizes (entries), comma-separated; "
                        "'' for none")
    parser.add_argument("--repeat", type=int, default=7, help="requests per scenario (the median is reported)")
    parser.add_argument("--only", default="", help="only the pages whose name contains this, e.g. 'manager home'")
    args = parser.parse_args(argv)
    app = make_app(args.database_url)
    rows = []
    header = (f"{'page':<36} {'techs':>6} {'median ms':>10} {'min ms':>8} {'CPU ms':>8} {'queries':>8} "
              f"{'HTML KB':>8}")
    for size in _numbers(args.technicians):
        print(header if not rows else "")
        print("-" * len(header))
        for row in pages(app, size, args.repeat, args.only):
            rows.append(row)
            if row.get("skipped"):
                print(f"{row['what']:<36} {size:>6} {'(refused: not in this version)':>47}")
                continue
            print(f"{row['what']:<36} {size:>6} {row['median_ms']:>10.1f} {row['min_ms']:>8.1f} "
                  f"{row['cpu_ms']:>8.1f} {row['queries']:>8} {row['kb']:>8.0f}")
    sizes = _numbers(args.pdf_entries)
    if sizes:
        print(f"\n{'transcript PDF (US Letter)':<44} {'median ms':>10} {'min ms':>8} {'CPU ms':>8} {'KB':>6}")
        for row in pdfs(app, sizes, args.repeat):
            rows.append(row)
            print(f"{row['what']:<44} {row['median_ms']:>10.1f} {row['min_ms']:>8.1f} {row['cpu_ms']:>8.1f} "
                  f"{row['kb']:>6.0f}")
    return rows


if __name__ == "__main__":
    main()
