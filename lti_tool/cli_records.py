"""`flask --app lti_tool records import FILE --issuer URL --course CONTEXT_ID --as EMAIL [--kind ...] [--dry-run]`:
the operator's go-live import of prior records, the same dry run and import as the administrator's page.

The import is attested by a tenant administrator named with --as (their e-mail): imported sign-offs carry their
name as the attesting actor, as on the page.
"""
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import func, select

from .extensions import db
from .models import Course, Membership, Person, Registration
from .services import DomainError, prior_records
from .services.actors import Actor

records_cli = AppGroup("records", help="Go-live import of prior records (sign-offs, certifications, CE).")


def _registration(issuer: str, client_id: str | None) -> Registration:
    query = select(Registration).where(Registration.issuer == issuer.rstrip("/"))
    if client_id:
        query = query.where(Registration.client_id == client_id)
    rows = db.session.scalars(query).all()
    if not rows:
        raise click.ClickException(f"No platform registered with issuer {issuer}.")
    if len(rows) > 1:
        raise click.ClickException("Several registrations share this issuer; choose one with --client-id: "
                                   + ", ".join(r.client_id for r in rows))
    return rows[0]


def _actor(registration: Registration, course: Course, email: str) -> Actor:
    person = db.session.scalar(select(Person).where(Person.registration_id == registration.id,
                                                    func.lower(Person.email) == email.strip().lower(),
                                                    Person.is_admin.is_(True)))
    if person is None:
        raise click.ClickException(f"No administrator with e-mail {email} at this platform (they must have opened "
                                   "the tool once as an institution or system Administrator).")
    membership = db.session.scalar(select(Membership).where(Membership.person_id == person.id,
                                                            Membership.course_id == course.id))
    return Actor(person=person, course=course, membership=membership)


@records_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--issuer", required=True, help="The platform's issuer URL.")
@click.option("--client-id", help="When several registrations share the issuer.")
@click.option("--course", "context_id", required=True, help="The LMS course (LTI context id) the records go to.")
@click.option("--as", "as_email", required=True, help="E-mail of the tenant administrator who attests the import.")
@click.option("--kind", type=click.Choice(sorted(prior_records.KIND_LABELS)), default="sign_offs",
              show_default=True)
@click.option("--technician", default="", help="E-mail or LMS id, for a file about one person (CPE Monitor).")
@click.option("--map", "mapping", multiple=True, metavar="FIELD=HEADER",
              help="Read FIELD from the column HEADER, e.g. --map assessor_name='Eval by'.")
@click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing.")
def import_records(file, issuer, client_id, context_id, as_email, kind, technician, mapping, dry_run):
    """Import prior records from a CSV or XLSX FILE."""
    registration = _registration(issuer, client_id)
    course = db.session.scalar(select(Course).where(Course.registration_id == registration.id,
                                                    Course.context_id == context_id))
    if course is None:
        raise click.ClickException(f"No course {context_id} at this platform (it appears after its first launch).")
    actor = _actor(registration, course, as_email)
    chosen = {}
    for item in mapping:
        field, sep, header = item.partition("=")
        if not sep:
            raise click.BadParameter(f"'{item}' is not FIELD=HEADER.", param_hint="--map")
        chosen[field.strip()] = header.strip()
    options = prior_records.Options(kind=kind, mapping=chosen, technician=technician)
    data = file.read_bytes()
    try:
        plan = prior_records.preview(actor, course.id, file.name, data, options)
        for row in plan.problems:
            click.echo(f"row {row.number}: " + " ".join(row.problems), err=True)
        if plan.missing_required:
            click.echo("missing columns: " + ", ".join(plan.missing_required), err=True)
        click.echo(f"{len(plan.to_create)} to create, {len(plan.skipped)} already imported, "
                   f"{len(plan.problems)} with problems, {len(plan.new_people)} new people")
        if dry_run:
            for row in plan.to_create:
                click.echo(f"row {row.number}: {row.what}")
            db.session.rollback()
            return
        if not plan.ok:
            raise click.ClickException("Nothing was imported: fix the rows above and run again.")
        # Inline and all or nothing (one transaction), with a progress line on stderr.
        batch = prior_records.run(actor, course.id, file.name, data, options,
                                  progress=lambda done, total: click.echo(f"\r{done:,}/{total:,} rows written",
                                                                          nl=False, err=True))
        click.echo("", err=True)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from exc
    click.echo(f"import {batch.id}: {batch.summary['created']}")
