"""The go-live import of prior sign-offs at size: a 5,000-row file (default) for seeded technicians and new people,
dry run then import (inline, as the CLI does, then as the queue task does), with rows per second, SQL statements
and peak Python memory (measured in a further run of the same size, since tracemalloc slows what it watches).

    .venv/bin/python bench/imports.py --database-url postgresql://postgres@127.0.0.1:5432/bench --rows 5000
    .venv/bin/python bench/imports.py ... --profile 30   # the 30 costliest functions of the import (cProfile)

The tables are dropped and rebuilt.
"""
import argparse
import cProfile
import os
import pstats
import sys
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, select  # noqa: E402

from bench.seed import make_app, reset_schema, seed  # noqa: E402
from lti_tool.extensions import db  # noqa: E402
from lti_tool.services.prior_records.importer import FLUSH_EVERY  # noqa: E402


def sign_off_file(codes: list[str], rows: int, tag: str) -> bytes:
    """`rows` prior sign-offs, one line per (person, competency, date): every person has each code once or
    more, on different days, half of them people the tool has never seen."""
    people = rows // len(codes) + 1
    lines = ["Technician email,Technician name,Competency code,Date assessed,Assessor name,Assessor role"]
    start = date(2023, 1, 2)
    for i in range(rows):
        day = start + timedelta(days=(i * 7) % 600)
        lines.append(f"prior{i % people}-{tag}@example.org,Prior Tech {i % people},{codes[i % len(codes)]},"
                     f"{day.isoformat()},Dana Lee,Pharmacist")
    return ("\r\n".join(lines) + "\r\n").encode()


def _actor_and_codes(made):
    from lti_tool.models import Competency, Course, CourseFramework, Membership, Person
    from lti_tool.services.actors import Actor

    course = db.session.get(Course, made["course_id"])
    admin = db.session.get(Person, made["manager_id"])
    admin.is_admin = True
    codes = list(db.session.scalars(select(Competency.code).join(
        CourseFramework, CourseFramework.framework_id == Competency.framework_id)
        .where(CourseFramework.course_id == course.id)))
    membership = db.session.scalar(select(Membership).where(Membership.id == made["membership_id"]))
    return Actor(person=admin, course=course, membership=membership), codes


def one_import(app, made, rows: int, tag: str, *, memory=False, profile=0, task=False) -> dict:
    from lti_tool.services import prior_records

    statements = [0]

    def count(*_):
        statements[0] += 1

    with app.app_context():
        actor, codes = _actor_and_codes(made)
        data = sign_off_file(codes, rows, tag)
        options = prior_records.Options(kind="sign_offs")
        started = time.perf_counter()
        plan = prior_records.preview(actor, actor.course.id, "prior.csv", data, options)
        dry = time.perf_counter() - started
        assert plan.ok, [(r.number, r.problems) for r in plan.problems[:5]]
        db.session.rollback()
        actor, _ = _actor_and_codes(made)
        db.session.commit()
        if memory:
            tracemalloc.start()
        profiler = cProfile.Profile() if profile else None
        event.listen(db.engine, "before_cursor_execute", count)
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        if task:
            # What the queue worker does with a queued batch: claim it, write committed chunks with progress.
            from lti_tool.models import ImportBatch
            from lti_tool.services.prior_records import jobs

            batch_id = jobs.stage(actor, plan, data, options).id
            jobs.queue(actor, batch_id)
            db.session.commit()
            jobs.apply(batch_id)
            batch = db.session.get(ImportBatch, batch_id)
            assert batch.status == "applied", batch.error
        else:
            batch = prior_records.run(actor, actor.course.id, "prior.csv", data, options)
            db.session.commit()
        if profiler:
            profiler.disable()
        applied = time.perf_counter() - started
        event.remove(db.engine, "before_cursor_execute", count)
        peak = tracemalloc.get_traced_memory()[1] / 1024 / 1024 if memory else None
        if memory:
            tracemalloc.stop()
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(profile)
        return {"rows": rows, "dry_s": dry, "import_s": applied, "statements": statements[0], "peak_mb": peak,
                "created": batch.summary["created"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        required=not os.environ.get("DATABASE_URL"), help="the tables are rebuilt")
    parser.add_argument("--technicians", type=int, default=200)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--profile", type=int, default=0, help="print the N costliest functions of the import")
    parser.add_argument("--no-memory", action="store_true", help="skip the second run that measures memory")
    args = parser.parse_args(argv)
    app = make_app(args.database_url)
    with app.app_context():
        dialect = db.engine.dialect.name
        reset_schema()
        made = seed(args.technicians, per_person=5)
    print(f"{dialect}: {made['technicians']} technicians seeded; importing {args.rows:,} prior sign-offs")
    result = one_import(app, made, args.rows, "a", profile=args.profile)
    print(f"dry run {result['dry_s']:.1f} s; import {result['import_s']:.1f} s = "
          f"{result['rows'] / result['import_s']:.0f} rows/s, {result['statements']:,} statements "
          f"({result['statements'] / result['rows']:.2f} per row); created {result['created']}")
    result = one_import(app, made, args.rows, "t", task=True)
    print(f"as the queue task (committed chunks of {FLUSH_EVERY} rows with progress): import "
          f"{result['import_s']:.1f} s = {result['rows'] / result['import_s']:.0f} rows/s, "
          f"{result['statements']:,} statements")
    if not args.no_memory:
        again = one_import(app, made, args.rows, "b", memory=True)
        print(f"peak Python memory of the import (tracemalloc, second run): {again['peak_mb']:.0f} MB")


if __name__ == "__main__":
    main()
