"""`flask --app lti_tool frameworks ...`: list, import and export competency frameworks.

Imports from the command line are global (shipped-style, visible to every tenant) unless --issuer and
--client-id name one registration, whose tenant then owns the framework.
"""
import json
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select

from .extensions import db
from .models import Framework, Registration
from .services import DomainError
from .services import frameworks as service
from .services.framework_io import FORMATS, FrameworkImportError

frameworks_cli = AppGroup("frameworks", help="Competency frameworks: list, import (CASE, Moodle CSV, native "
                                                "JSON) and export.")


def _fail(exc: DomainError):
    db.session.rollback()
    raise click.ClickException(exc.message) from exc


@frameworks_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
def list_frameworks(as_json):
    """Every framework: the shipped (global) ones and each tenant's own."""
    rows = list(db.session.scalars(select(Framework).order_by(Framework.name, Framework.version, Framework.id)))
    counts = service.competency_counts(r.id for r in rows)
    tenants = {r.id: r.name for r in db.session.scalars(select(Registration))}
    data = [{"id": r.id, "code": r.code, "name": r.name, "version": r.version,
             "tenant": tenants.get(r.registration_id) if r.registration_id else None,
             "competencies": counts.get(r.id, 0)} for r in rows]
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    if not data:
        click.echo("No frameworks. `flask --app lti_tool frameworks load-default` installs the shipped one.")
    for r in data:
        click.echo(f"{r['id']:>4}  {r['code']:<20} {r['version']:<10} {r['competencies']:>4} competencies  "
                   f"{r['name']}  [{r['tenant'] or 'global'}]")


@frameworks_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--issuer", default=None, help="Import for this registration's tenant (with --client-id)")
@click.option("--client-id", default=None)
@click.option("--framework-version", "version", default=None,
              help="Version to record (Moodle CSV has none; default 1, or the file's own)")
def import_framework(file, issuer, client_id, version):
    """Import FILE: a CASE 1.1 package (JSON), a Moodle competency framework CSV or a native framework JSON."""
    registration_id = None
    if issuer or client_id:
        if not (issuer and client_id):
            raise click.UsageError("Give both --issuer and --client-id, or neither for a global framework.")
        reg = db.session.scalars(select(Registration).where(
            Registration.issuer == issuer, Registration.client_id == client_id)).first()
        if reg is None:
            raise click.ClickException(f"No registration for issuer {issuer} and client id {client_id}.")
        registration_id = reg.id
    try:
        result = service.import_framework(None, file.read_bytes(), filename=file.name,
                                          registration_id=registration_id, version=version)
    except FrameworkImportError as exc:
        _fail(exc)
    db.session.commit()
    fw = result.framework
    click.echo(f"Imported {fw.name} ({fw.code} version {fw.version}) from {result.format}: "
               f"{result.competencies} competencies, framework id {fw.id}, "
               f"{'tenant ' + str(registration_id) if registration_id else 'global'}.")
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)


@frameworks_cli.command("export")
@click.argument("framework")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              help="Write to this file (default: standard output)")
@click.option("--base-uri", default=None, help="CASE only: the base of item URIs (default urn:uuid:...)")
def export_framework(framework, fmt, output, base_uri):
    """Export FRAMEWORK (an id or a code) as CASE 1.1 JSON, Moodle CSV or native JSON."""
    try:
        found = service.find_framework(None, framework)
        text = service.export_framework(None, found.id, fmt, base_uri=base_uri)
    except DomainError as exc:
        _fail(exc)
    if output:
        output.write_text(text, encoding="utf-8")
        click.echo(f"Wrote {found.code} version {found.version} as {fmt} to {output}", err=True)
    else:
        click.echo(text, nl=False)


@frameworks_cli.command("load-default")
def load_default():
    """Install the shipped "Pharmacy Technician" framework (does nothing if this version is installed)."""
    existing = service.default_framework()
    framework = existing or service.ensure_default_framework()
    db.session.commit()
    state = "already installed" if existing else "installed"
    click.echo(f"{framework.name} {framework.version} {state} (framework id {framework.id}).")


@frameworks_cli.command("publish")
@click.argument("framework")
@click.option("--private", is_flag=True, help="Withdraw it from the CASE API instead")
def publish(framework, private):
    """Make a tenant's framework readable by anyone over the CASE 1.1 REST API (/ims/case/v1p1/...), or not."""
    from .services import case_api

    try:
        found = service.find_framework(None, framework)
        case_api.set_public(None, found.id, not private)
    except DomainError as exc:
        _fail(exc)
    db.session.commit()
    state = "public on the CASE API" if not private else "no longer public"
    click.echo(f"{found.name} {found.version} (framework id {found.id}) is {state}.")
