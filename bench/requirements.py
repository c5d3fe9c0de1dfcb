"""Requirements at scale (issue 15), on the seeded course of 2,000 technicians: how long saving a requirement for
everyone takes (its required-by dates are written to the stored status of every technician in the same
transaction), retiring it again, both for one fixed date and for "90 days after assignment" with technicians
assigned over two years (a date per technician), and the team matrix filtered on "overdue" (one where-clause on
the stored rows).

    .venv/bin/python bench/requirements.py --database-url postgresql://postgres@127.0.0.1:5432/bench
"""
import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.matrix import session_token  # noqa: E402
from bench.seed import make_app, reset_schema, seed  # noqa: E402
from bench.timing import timed_requests  # noqa: E402
from lti_tool.extensions import db  # noqa: E402


def _actor(made):
    from lti_tool.models import Membership, Person
    from lti_tool.services.actors import Actor

    membership = db.session.get(Membership, made["membership_id"])
    return Actor(person=db.session.get(Person, made["manager_id"]), course=membership.course, membership=membership)


def _save_and_retire(actor, made, repeat, due, label):
    from sqlalchemy import func, select

    from lti_tool.models import StoredStatus
    from lti_tool.services import requirement_edits

    saves, retires = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        row = requirement_edits.create(actor, made["course_id"], {
            "name": "IV room orientation", "departments": ["iv_room"], "audience": "everyone", **due})
        db.session.commit()
        saves.append((time.perf_counter() - started) * 1000)
        required, dates = db.session.execute(
            select(func.count(), func.count(StoredStatus.required_by.distinct())).select_from(StoredStatus)
            .where(StoredStatus.requirement_id == row.id)).one()
        started = time.perf_counter()
        requirement_edits.retire(actor, row.id)
        db.session.commit()
        retires.append((time.perf_counter() - started) * 1000)
    print(f"save a requirement for everyone, {label} ({len(row.competency_ids)} competencies, {required} required "
          f"pairs, {dates} dates): median {statistics.median(saves):.0f} ms; "
          f"retire it: median {statistics.median(retires):.0f} ms")


def _assign_over(course_id, days, today):
    """Spread the technicians' assignment dates over `days` days before today (setup, not measured)."""
    from sqlalchemy import select, update

    from lti_tool.models import Membership

    people = db.session.scalars(select(Membership.person_id).where(
        Membership.course_id == course_id, Membership.role == "technician").order_by(Membership.person_id)).all()
    for offset, person_id in enumerate(people):
        db.session.execute(update(Membership).where(Membership.course_id == course_id,
                                                    Membership.person_id == person_id)
                           .values(assigned_on=today - timedelta(days=offset % days)))
    db.session.commit()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        required=not os.environ.get("DATABASE_URL"), help="database URL (the tables are rebuilt)")
    parser.add_argument("--technicians", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    app = make_app(args.database_url)
    with app.app_context():
        from lti_tool.services import requirement_edits, status

        reset_schema()
        made = seed(args.technicians)
        print(f"{db.engine.dialect.name}: {made['technicians']} technicians x {made['competencies']} competencies "
              f"(seeded in {made['seconds']:.1f} s)")
        actor = _actor(made)
        today = status.local_today(actor.course.registration)
        fixed = {"due_kind": "date", "due_on": (today - timedelta(days=1)).isoformat()}
        _save_and_retire(actor, made, args.repeat, fixed, "by one date")
        _assign_over(made["course_id"], 730, today)
        _save_and_retire(actor, made, args.repeat, {"due_kind": "days", "due_days": "90"},
                         "90 days after assignment, assigned over 2 years")
        requirement_edits.create(actor, made["course_id"], {
            "name": "IV room orientation", "departments": ["iv_room"], "audience": "everyone", "due_kind": "date",
            "due_on": (today - timedelta(days=1)).isoformat()})
        db.session.commit()
    token = session_token(app, made)
    for params in ({"status": "overdue"}, {"status": "required", "page": "5"}):
        times, counts, _ = timed_requests(app, "/team/", {"lt": token, **params}, args.repeat)
        print(f"matrix {params}: median {statistics.median(times):.0f} ms, {sorted(set(counts))} queries")


if __name__ == "__main__":
    main()
