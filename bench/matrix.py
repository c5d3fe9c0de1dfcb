"""Server time and SQL query count of the team matrix page (GET /team/) with 2,000 technicians on the shipped
default framework: first page and a later page, with and without filters.

The page is requested through the app in-process (Flask's test client), so the time is the server's: routing,
session, queries, template, no network. Queries are counted on the engine (every statement sent). Usage:

    .venv/bin/python bench/matrix.py --database-url postgresql://postgres@127.0.0.1:5432/bench
"""
import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.seed import make_app, reset_schema, seed  # noqa: E402
from bench.timing import timed_requests  # noqa: E402
from lti_tool.extensions import db  # noqa: E402

SCENARIOS = [
    ("first page", {}),
    ("page 30 of 38", {"page": "30"}),
    ("department: IV room", {"department": "iv_room"}),
    ("area: cross-training by department", {"area": "XT"}),
    ("status: expired", {"status": "expired"}),
    ("status: expired, page 5", {"status": "expired", "page": "5"}),
    ("expiring within 30 days", {"expiring": "30"}),
    ("status: awaiting review", {"status": "awaiting_review"}),
    ("status: not started", {"status": "not_started"}),
    ("due + IV room, inactive included", {"status": "due_for_revalidation", "department": "iv_room",
                                          "inactive": "1"}),
]


def session_token(app, made):
    from lti_tool import tool_session
    from lti_tool.models import Membership, Person

    with app.test_request_context("/"):
        person = db.session.get(Person, made["manager_id"])
        membership = db.session.get(Membership, made["membership_id"])
        return tool_session.issue(person, membership, None)


def area_id(app, made, code):
    from sqlalchemy import select

    from lti_tool.models import Competency, CourseFramework

    with app.app_context():
        return db.session.scalar(select(Competency.id).join(
            CourseFramework, CourseFramework.framework_id == Competency.framework_id).where(
            CourseFramework.course_id == made["course_id"], Competency.code == code))


def measure(app, token, params, repeat):
    times, counts, resp = timed_requests(app, "/team/", {"lt": token, **params}, repeat)
    body = resp.get_data(as_text=True)
    rows = body.count('<th scope="row" class="name-col">')
    heading = body.split('<h2 id="grid-title">', 1)[1].split("</h2>", 1)[0].split()
    total = heading[heading.index("of") + 1] if "of" in heading else "0"
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "queries": sorted(set(counts)), "rows": rows, "total": total, "kb": len(body.encode()) / 1024}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        required=not os.environ.get("DATABASE_URL"), help="PostgreSQL URL (the tables are rebuilt)")
    parser.add_argument("--technicians", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7, help="requests per scenario (median reported)")
    args = parser.parse_args(argv)

    app = make_app(args.database_url)
    with app.app_context():
        dialect = db.engine.dialect.name
        reset_schema()
        made = seed(args.technicians)
    print(f"{dialect}: {made['technicians']} technicians x {made['competencies']} competencies, "
          f"{made['evidence']} evidence items, {made['sign_offs']} sign-offs, {made['open_requests']} open "
          f"requests (seeded in {made['seconds']:.1f} s)\n")
    token = session_token(app, made)
    xt = area_id(app, made, "XT")
    header = f"{'scenario':<40} {'rows':>5} {'match':>6} {'median ms':>10} {'min ms':>8} {'max ms':>8} " \
             f"{'queries':>8} {'HTML KB':>8}"
    print(header)
    print("-" * len(header))
    for name, params in SCENARIOS:
        params = {k: (str(xt) if k == "area" else v) for k, v in params.items()}
        result = measure(app, token, params, args.repeat)
        queries = "/".join(map(str, result["queries"]))
        print(f"{name:<40} {result['rows']:>5} {result['total']:>6} {result['median']:>10.1f} "
              f"{result['min']:>8.1f} {result['max']:>8.1f} {queries:>8} {result['kb']:>8.0f}")


if __name__ == "__main__":
    main()
