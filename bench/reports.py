"""Server time and SQL query count of the competency roster report (GET /reports/roster) for 2,000 technicians on
the shipped default framework (bench/seed.py), as a page, CSV and PDF, today and as of a past date; the
compliance summary (13 status passes: 12 month-ends and the as-of day); and a 5,000-row go-live import of prior
sign-offs (dry run and import).

The pages are requested through the app in-process (Flask's test client), so the time is the server's: routing,
session, queries, template or PDF, no network. Queries are counted on the engine. Usage:

    .venv/bin/python bench/reports.py --database-url postgresql://postgres@127.0.0.1:5432/bench_h8
"""
import argparse
import os
import statistics
import sys
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select  # noqa: E402

from bench.matrix import area_id, session_token  # noqa: E402
from bench.seed import make_app, reset_schema, seed  # noqa: E402
from bench.timing import timed_requests  # noqa: E402
from lti_tool.extensions import db  # noqa: E402


def timed_get(app, path, query, repeat):
    times, counts, resp = timed_requests(app, path, query, repeat)
    return {"median": statistics.median(times), "min": min(times), "queries": sorted(set(counts)),
            "kb": len(resp.get_data()) / 1024}


def import_rows(app, made, rows: int):
    """A 5,000-row file of prior sign-offs for the seeded technicians (and new people), dry run then import."""
    from lti_tool.models import Competency, Course, CourseFramework, Membership, Person
    from lti_tool.services import prior_records
    from lti_tool.services.actors import Actor

    with app.app_context():
        course = db.session.get(Course, made["course_id"])
        manager = db.session.get(Person, made["manager_id"])
        manager.is_admin = True
        codes = list(db.session.scalars(select(Competency.code).join(
            CourseFramework, CourseFramework.framework_id == Competency.framework_id)
            .where(CourseFramework.course_id == course.id, Competency.code.like("USP%"))))
        emails = [f"prior{i}-{rows}-{time.time_ns()}@example.org" for i in range(rows // len(codes) + 1)]
        lines = ["Technician email,Technician name,Competency code,Date assessed,Assessor name,Assessor role"]
        start = date(2023, 1, 2)
        for i in range(rows):
            day = start + timedelta(days=(i * 7) % 600)
            lines.append(f"{emails[i // len(codes)]},Prior Tech {i // len(codes)},{codes[i % len(codes)]},"
                         f"{day.isoformat()},Dana Lee,Pharmacist")
        data = ("\r\n".join(lines) + "\r\n").encode()
        membership = db.session.scalar(select(Membership).where(Membership.id == made["membership_id"]))
        actor = Actor(person=manager, course=course, membership=membership)
        options = prior_records.Options(kind="sign_offs")
        started = time.perf_counter()
        plan = prior_records.preview(actor, course.id, "prior.csv", data, options)
        dry = time.perf_counter() - started
        assert plan.ok, [(r.number, r.problems) for r in plan.problems[:5]]
        tracemalloc.start()
        started = time.perf_counter()
        batch = prior_records.run(actor, course.id, "prior.csv", data, options)
        db.session.commit()
        applied = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] / 1024 / 1024
        tracemalloc.stop()
        return {"rows": rows, "dry_s": dry, "import_s": applied, "peak_mb": peak, "created": batch.summary["created"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        required=not os.environ.get("DATABASE_URL"), help="PostgreSQL URL (the tables are rebuilt)")
    parser.add_argument("--technicians", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5, help="requests per scenario (median reported)")
    parser.add_argument("--import-rows", type=int, default=5000)
    args = parser.parse_args(argv)

    app = make_app(args.database_url)
    with app.app_context():
        dialect = db.engine.dialect.name
        reset_schema()
        made = seed(args.technicians)
    print(f"{dialect}: {made['technicians']} technicians x {made['competencies']} competencies, "
          f"{made['sign_offs']} sign-offs (seeded in {made['seconds']:.1f} s)\n")
    token = session_token(app, made)
    usp = f"area:{area_id(app, made, 'USP')}"
    past = (date.today() - timedelta(days=180)).isoformat()
    scenarios = [
        ("roster page: USP area, today", "/reports/roster", {"set": usp}),
        ("roster page: USP area, 180 days ago", "/reports/roster", {"set": usp, "as_of": past}),
        ("roster CSV: USP area", "/reports/roster", {"set": usp, "format": "csv"}),
        ("roster PDF: USP area", "/reports/roster", {"set": usp, "format": "pdf"}),
        ("compliance summary page (13 passes)", "/reports/summary", {}),
    ]
    header = f"{'scenario':<40} {'median ms':>10} {'min ms':>8} {'queries':>8} {'KB':>8}"
    print(header)
    print("-" * len(header))
    for name, path, params in scenarios:
        result = timed_get(app, path, {"lt": token, **params}, args.repeat if "summary" not in path else 2)
        queries = "/".join(map(str, result["queries"]))
        print(f"{name:<40} {result['median']:>10.1f} {result['min']:>8.1f} {queries:>8} {result['kb']:>8.0f}")
    if args.import_rows:
        result = import_rows(app, made, args.import_rows)
        print(f"\nimport of {result['rows']} prior sign-offs: dry run {result['dry_s']:.1f} s, import "
              f"{result['import_s']:.1f} s (peak Python memory {result['peak_mb']:.0f} MB); "
              f"created {result['created']}")


if __name__ == "__main__":
    main()
