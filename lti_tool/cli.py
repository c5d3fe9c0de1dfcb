"""Admin CLI: `flask --app lti_tool lti ...` and `flask --app lti_tool demo ...`."""
import json

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from . import cli_advantage
from .cli_frameworks import frameworks_cli
from .cli_transcripts import transcripts_cli
from .extensions import db
from .lti import keys
from .lti.roles import TOOL_ROLES
from .lti.urls import tool_urls
from .models import Deployment, Registration
from .services import demo
from .services.frameworks import ensure_default_framework

# AppGroup runs each command inside the app context, also under app.test_cli_runner() and other embedders
# (a plain click.Group only got one from `flask`'s own group).
lti_cli = AppGroup("lti", help="LTI registrations, deployments and keys.")
demo_cli = AppGroup("demo", help="Demo data for the development LMS.")


def _base_url_context(base_url):
    base = base_url or current_app.config.get("TOOL_BASE_URL") or "http://127.0.0.1:5000"
    return current_app.test_request_context("/", base_url=base)


def _registration(issuer, client_id) -> Registration:
    row = db.session.scalars(
        select(Registration).where(Registration.issuer == issuer, Registration.client_id == client_id)
    ).first()
    if row is None:
        raise click.ClickException(f"No registration for issuer {issuer} and client id {client_id}.")
    return row


@lti_cli.command("add-platform")
@click.option("--name", required=True)
@click.option("--issuer", required=True, help="The platform's issuer, e.g. https://canvas.instructure.com")
@click.option("--client-id", required=True)
@click.option("--auth-url", required=True, help="OIDC authorization endpoint")
@click.option("--token-url", required=True, help="OAuth2 token endpoint")
@click.option("--jwks-url", required=True, help="The platform's public key set")
@click.option("--deployment-id", "deployment_ids", multiple=True, required=True)
@click.option("--audience", default=None, help="Token audience, when the platform needs one (Moodle does not)")
def add_platform(name, issuer, client_id, auth_url, token_url, jwks_url, deployment_ids, audience):
    """Register a platform (issuer + client id) with one or more deployment ids. Running it again updates."""
    for url in (issuer, auth_url, token_url, jwks_url):
        if not url.startswith(("https://", "http://")):
            raise click.BadParameter(f"{url!r} is not an http(s) URL")
    row = db.session.scalars(
        select(Registration).where(Registration.issuer == issuer, Registration.client_id == client_id)
    ).first()
    created = row is None
    if created:
        row = Registration(issuer=issuer, client_id=client_id)
        db.session.add(row)
    row.name, row.auth_login_url, row.auth_token_url, row.jwks_url = name, auth_url, token_url, jwks_url
    row.auth_audience = audience
    row.jwks_cache = None
    db.session.flush()
    existing = {d.deployment_id for d in row.deployments}
    for dep in deployment_ids:
        if dep not in existing:
            db.session.add(Deployment(registration_id=row.id, deployment_id=dep))
    db.session.commit()
    click.echo(f"{'Added' if created else 'Updated'} platform {name} ({issuer}, client id {client_id}) "
               f"with deployments: {', '.join(sorted(existing | set(deployment_ids)))}")


@lti_cli.command("add-deployment")
@click.option("--issuer", required=True)
@click.option("--client-id", required=True)
@click.option("--deployment-id", required=True)
def add_deployment(issuer, client_id, deployment_id):
    row = _registration(issuer, client_id)
    if any(d.deployment_id == deployment_id for d in row.deployments):
        raise click.ClickException("That deployment is already registered.")
    db.session.add(Deployment(registration_id=row.id, deployment_id=deployment_id))
    db.session.commit()
    click.echo(f"Added deployment {deployment_id} to {row.name}")


@lti_cli.command("list-platforms")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
def list_platforms(as_json):
    rows = list(db.session.scalars(select(Registration).order_by(Registration.id)))
    data = [{"id": r.id, "name": r.name, "issuer": r.issuer, "client_id": r.client_id,
             "auth_url": r.auth_login_url, "token_url": r.auth_token_url, "jwks_url": r.jwks_url,
             "deployments": [d.deployment_id for d in r.deployments], "role_mapping": r.role_mapping or {}}
            for r in rows]
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    if not data:
        click.echo("No platforms registered.")
    for r in data:
        click.echo(f"{r['id']}: {r['name']}\n   issuer      {r['issuer']}\n   client id   {r['client_id']}\n"
                   f"   deployments {', '.join(r['deployments']) or '(none)'}")


@lti_cli.command("show-config")
@click.option("--base-url", default=None, help="The tool's public address (default: TOOL_BASE_URL)")
def show_config(base_url):
    """Print the URLs an LMS administrator enters when registering the tool."""
    with _base_url_context(base_url):
        urls = tool_urls()
    labels = {"login": "OIDC login (initiation) URL", "launch": "Launch / redirect URL",
              "deep_linking": "Deep linking URL", "jwks": "Public keyset (JWKS) URL",
              "canvas_config": "Canvas JSON configuration URL", "registration": "Dynamic registration URL"}
    for key, label in labels.items():
        click.echo(f"{label:32} {urls[key]}")


@lti_cli.command("rotate-key")
def rotate_key():
    """Add a new signing key. Older keys stay published until `retire-key`."""
    key = keys.rotate()
    db.session.commit()
    click.echo(f"New signing key {key.kid}; published keys: {', '.join(k.kid for k in keys.published_keys())}")


@lti_cli.command("retire-key")
@click.argument("kid")
def retire_key(kid):
    """Stop publishing an old key (after platforms have refreshed their copy of the JWKS)."""
    try:
        keys.retire(kid)
    except (LookupError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Retired {kid}")


@lti_cli.command("map-role")
@click.option("--issuer", required=True)
@click.option("--client-id", required=True)
@click.argument("lti_role")
@click.argument("tool_role", type=click.Choice(TOOL_ROLES + ("default",)))
def map_role(issuer, client_id, lti_role, tool_role):
    """Override the mapping of one LTI role (full URI or context role name like Mentor) for a registration."""
    row = _registration(issuer, client_id)
    mapping = dict(row.role_mapping or {})
    if tool_role == "default":
        mapping.pop(lti_role, None)
    else:
        mapping[lti_role] = tool_role
    row.role_mapping = mapping or None
    db.session.commit()
    click.echo(f"Role mapping for {row.name}: {json.dumps(mapping)}")


@lti_cli.command("purge")
def purge():
    """Delete expired state, nonces and launch data."""
    from .lti.storage import purge_expired

    count = purge_expired()
    db.session.commit()
    click.echo(f"Deleted {count} expired entries")


@demo_cli.command("load")
@click.option("--base-url", default=None, help="Where the app is served (default: TOOL_BASE_URL)")
def demo_load(base_url):
    """Register the development LMS and make sure the tool has a signing key."""
    if not current_app.config["DEV_LMS_ENABLED"]:
        raise click.ClickException("The development LMS is switched off in this configuration.")
    from flask import url_for

    from .lti import dev_platform

    # The first signing key is committed in its own transaction: create it before this session writes, or
    # SQLite refuses the second writer ("database is locked").
    keys.signing_key()
    with _base_url_context(base_url) as ctx:
        host = ctx.request.host_url.rstrip("/")
        registration = dev_platform.ensure_registered(
            host + "/dev", url_for("dev.authorize", _external=True), url_for("dev.token", _external=True),
            url_for("dev.jwks", _external=True))
    ensure_default_framework()
    created = demo.load(registration)
    db.session.commit()
    click.echo(("Demo data loaded." if created else "Demo data was already there.")
               + f" Open {host}/dev/ to launch as a demo technician or manager.")


def register(app):
    cli_advantage.register(lti_cli)
    app.cli.add_command(lti_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(frameworks_cli)
    app.cli.add_command(transcripts_cli)
