"""`flask --app lti_tool transcripts export --technician EMAIL --format pdf|csv|json|ob3|clr --output FILE`.

The export is made as the technician would make it for themself (every course of their tenant). An email can
belong to people of several tenants (LMS registrations): then --issuer (the platform's issuer URL) picks one, and
without it the command refuses and lists the issuers.
"""
import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select

from .extensions import db
from .models import Person, Registration
from .services import DomainError, credentials, transcript_exports, transcript_pdf, transcripts
from .services.actors import Actor

transcripts_cli = AppGroup("transcripts", help="Technicians' transcripts and credentials.")
FORMATS = ("pdf", "csv", "json", "ob3", "clr")


def find_technician(email: str, issuer: str | None) -> Person:
    query = (select(Person, Registration.issuer).join(Registration, Registration.id == Person.registration_id)
             .where(func.lower(Person.email) == email.strip().lower()))
    if issuer:
        query = query.where(Registration.issuer == issuer.rstrip("/"))
    rows = db.session.execute(query.order_by(Person.id)).all()
    if not rows:
        where = f" at issuer {issuer}" if issuer else ""
        raise click.ClickException(f"No technician with email {email}{where}.")
    if len(rows) > 1:
        issuers = sorted({row[1] for row in rows})
        if len(issuers) > 1:
            raise click.ClickException(
                f"{email} belongs to people of {len(issuers)} platforms; choose one with --issuer: "
                + ", ".join(issuers))
        raise click.ClickException(f"{email} belongs to {len(rows)} people at {issuers[0]}; cannot tell them apart.")
    return rows[0][0]


@transcripts_cli.command("export")
@click.option("--technician", "email", required=True, help="The technician's email address")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), required=True)
@click.option("--issuer", default=None, help="The LMS platform's issuer, when the email is known on several")
@click.option("--page-size", type=click.Choice(sorted(transcript_pdf.PAGE_SIZES)), default="letter", show_default=True)
@click.option("--base-url", default=None, help="The tool's public address for links (default: TOOL_BASE_URL)")
def export(email, fmt, output, issuer, page_size, base_url):
    """Write one technician's transcript or credentials to FILE."""
    person = find_technician(email, issuer)
    actor = Actor(person=person)
    base = (base_url or current_app.config["TOOL_BASE_URL"]).rstrip("/")
    title = current_app.config["TOOL_TITLE"]
    try:
        if fmt == "pdf":
            _, content = transcript_exports.pdf_for(actor, person.id, base, page_size)
        elif fmt == "csv":
            content = transcript_exports.to_csv(transcripts.build(actor, person.id)).encode("utf-8")
        elif fmt == "json":
            content = transcript_exports.to_json(transcripts.build(actor, person.id)).encode("utf-8")
        elif fmt == "ob3":
            content = json.dumps(credentials.ob3_bundle(actor, person.id, base, title), indent=2).encode("utf-8")
        else:
            _, token = credentials.clr_credential(actor, person.id, base, title)
            content = token.encode("ascii")
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from exc
    Path(output).write_bytes(content)
    db.session.commit()
    click.echo(f"Wrote {fmt} transcript of {person.display_name} to {output} ({len(content)} bytes)")
