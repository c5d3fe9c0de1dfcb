"""`flask --app lti_tool lti sync-roster | deliver-scores | worker`: the LTI Advantage jobs."""
import time

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from . import submissions
from .extensions import db
from .lti import storage
from .models import Course
from .services import DomainError, grades, roster


@click.command("sync-roster")
@with_appcontext
@click.option("--course-id", type=int, help="One course (the tool's id); default every course offering a roster")
def sync_roster(course_id):
    """Read course rosters from the LMS (Names and Role Provisioning)."""
    query = select(Course).where(Course.nrps_url.is_not(None)).order_by(Course.id)
    if course_id:
        query = query.where(Course.id == course_id)
    courses = db.session.scalars(query).all()
    if not courses:
        raise click.ClickException("No course offers a roster yet (a manager must launch the tool from it first).")
    failed = 0
    for course in courses:
        try:
            result = roster.sync_roster(course)
            db.session.commit()
            click.echo(f"{course.display_title}: {result.added} added, {result.updated} updated, "
                       f"{result.deactivated} marked inactive ({result.pages} pages)")
        except DomainError as exc:
            db.session.rollback()
            failed += 1
            click.echo(f"{course.display_title}: {exc.message}", err=True)
    if failed:
        raise click.ClickException(f"{failed} course(s) could not be synchronised.")


@click.command("deliver-scores")
@with_appcontext
def deliver_scores():
    """Send due gradebook scores now (retries follow their back-off)."""
    noted = grades.queue_expiries()
    db.session.commit()
    counts = grades.deliver_due()
    click.echo(f"{noted} expiries noted; sent {counts['sent']}, retrying {counts['retried']}, "
               f"failed {counts['failed']}, waiting {counts['waiting']}")


@click.command("worker")
@with_appcontext
@click.option("--interval", default=30, show_default=True, help="Seconds between rounds")
@click.option("--rounds", default=0, help="Stop after this many rounds (0: run until stopped)")
def worker(interval, rounds):
    """Run the outbox and expiry jobs in a loop (next to gunicorn, e.g. as a systemd service)."""
    done = 0
    while True:
        # Expired launch state (anonymous logins write it) and old submission keys.
        storage.purge_expired()
        submissions.purge_old()
        grades.queue_expiries()
        db.session.commit()
        counts = grades.deliver_due()
        if any(counts.values()):
            click.echo(f"sent {counts['sent']}, retrying {counts['retried']}, failed {counts['failed']}")
        done += 1
        if rounds and done >= rounds:
            break
        time.sleep(interval)


def register(group):
    for command in (sync_roster, deliver_scores, worker):
        group.add_command(command)
