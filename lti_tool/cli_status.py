"""`flask --app lti_tool status rebuild [--course ID]`: judge the stored status again from the history."""
import click
from flask.cli import AppGroup

from .extensions import db
from .services import status_store

status_cli = AppGroup("status", help="The stored competency status.")


@status_cli.command("rebuild")
@click.option("--course", "course_id", type=int, default=None,
              help="Only the members of this course (their status in every course of the tenant)")
def rebuild(course_id):
    """Rewrite the stored status of every technician (or one course's members) from their history. The
    workflow keeps it in step by itself; this is for repairs and after loading data by other means."""
    try:
        written = status_store.rebuild(course_id)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Rebuilt: {written} status rows.")
