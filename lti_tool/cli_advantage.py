"""`flask --app lti_tool lti sync-roster | deliver-scores | worker`: the LTI Advantage jobs and the task queue's
worker."""
import logging

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from .extensions import db
from .models import Course
from .services import DomainError, grades, roster
from .tasks import jobs


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
@click.option("--workers", default=2, show_default=True, help="Worker threads in this process")
@click.option("--no-periodic", is_flag=True, help="Leave the schedule to another worker process")
@click.option("--once", is_flag=True, help="Run every periodic job once in this process, then exit (cron, tests)")
@click.option("--max-delay", default=10.0, show_default=True,
              help="Longest pause between polls of an idle SQLite queue (Redis waits for tasks instead)")
def worker(workers, no_periodic, once, max_delay):
    """The task queue's worker (Huey consumer): scores, exports, rosters, reminders, e-mail, the periodic sweep.
    Run as many as needed on as many machines as share TASK_QUEUE_URL (Redis)."""
    huey = current_app.extensions["huey"]
    if once:
        huey.immediate = True  # what the jobs queue runs here and now
        jobs.run_periodic_once()
        click.echo("Periodic jobs done.")
        return
    if huey.immediate:
        raise click.ClickException("TASK_QUEUE_URL is memory://: tasks run as they are queued, nothing to consume.")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    huey.create_consumer(workers=workers, periodic=not no_periodic, worker_type="thread", max_delay=max_delay).run()


def register(group):
    for command in (sync_roster, deliver_scores, worker):
        group.add_command(command)
