"""Admin CLI: `flask --app lti_tool lti ...` and `flask --app lti_tool demo ...`."""
import json

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from . import cli_advantage
from .cli_frameworks import frameworks_cli
from .cli_records import records_cli
from .cli_status import status_cli
from .cli_transcripts import transcripts_cli
from .extensions import db
from .lti import keys, registration_links, registry
from .lti.roles import TOOL_ROLES
from .lti.urls import tool_urls
from .models import Deployment, Registration
from .models.base import utcnow
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
@click.option("--audience", default=None, help="Token audience, when the platform needs one (Moodle does not); "
              "used only on the token URL's own origin")
def add_platform(name, issuer, client_id, auth_url, token_url, jwks_url, deployment_ids, audience):
    """Register a platform (issuer + client id) with one or more deployment ids. Running it again for the same
    issuer and client id changes its URLs (recorded in the audit log) and adds deployments."""
    row = db.session.scalars(
        select(Registration).where(Registration.issuer == issuer, Registration.client_id == client_id)
    ).first()
    created = row is None
    try:
        if created:
            row = registry.create(name=name, issuer=issuer, client_id=client_id, auth_login_url=auth_url,
                                  auth_token_url=token_url, jwks_url=jwks_url, auth_audience=audience)
        else:
            registry.check_values(name=name)
            row.name = name
            registry.change_urls(row, auth_login_url=auth_url, auth_token_url=token_url, jwks_url=jwks_url,
                                 auth_audience=audience)
    except registry.RegistryError as exc:
        raise click.BadParameter(str(exc)) from exc
    existing = {d.deployment_id for d in row.deployments}
    for dep in deployment_ids:
        if dep not in existing:
            db.session.add(Deployment(registration_id=row.id, deployment_id=dep))
    db.session.commit()
    click.echo(f"{'Added' if created else 'Updated'} platform {name} ({issuer}, client id {client_id}) "
               f"with deployments: {', '.join(sorted(existing | set(deployment_ids)))}")


@lti_cli.command("registration-link")
@click.option("--name", default=None, help="A name for the LMS it registers (shown to its administrators)")
@click.option("--expires-days", type=click.IntRange(1, 90), default=None,
              help="Days the link stays valid (default LTI_REGISTRATION_LINK_DAYS, 7)")
@click.option("--base-url", default=None, help="The tool's public address (default: TOOL_BASE_URL)")
def registration_link(name, expires_days, base_url):
    """Print a single-use dynamic registration link (the last line). Paste it into Moodle as the Tool URL, or
    into Canvas's LTI Registration. It is shown only now: the tool keeps only its hash."""
    days = expires_days or current_app.config["LTI_REGISTRATION_LINK_DAYS"]
    if name is not None and (not name.strip() or len(name) > 200):
        raise click.BadParameter("give a name of 1 to 200 characters", param_hint="--name")
    row, token = registration_links.create(name.strip() if name else None, days)
    registry.operator_audit("registration_link.created", row, None, None,
                            {"name": row.name, "expires_at": row.expires_at.isoformat()})
    db.session.commit()
    with _base_url_context(base_url):
        link = registration_links.url(token)
    click.echo(f"Registration link {row.id}{' for ' + row.name if row.name else ''}: single use, valid until "
               f"{row.expires_at:%b %-d, %Y %H:%M} UTC. Paste it into the LMS as the tool's registration URL "
               "(Moodle: Tool URL; Canvas: LTI Registration).")
    click.echo(link)


@lti_cli.command("registration-links")
def registration_links_list():
    """List registration links (never their tokens): unused, used (by which registration) or expired."""
    rows = registration_links.listed()
    if not rows:
        click.echo("No registration links.")
    now = utcnow()
    for r in rows:
        state = (f"used {r.used_at:%b %-d, %Y} (registration {r.registration_id})" if r.used_at else
                 "expired" if r.expires_at <= now else f"unused, valid until {r.expires_at:%b %-d, %Y %H:%M} UTC")
        click.echo(f"{r.id}: {r.name or '(no name)'}: {state}")


@lti_cli.command("revoke-registration-link")
@click.argument("link_id", type=int)
def revoke_registration_link(link_id):
    """Make an unused registration link invalid now."""
    try:
        row = registration_links.revoke(link_id)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc
    registry.operator_audit("registration_link.revoked", row, None, None, {"id": row.id})
    db.session.commit()
    click.echo(f"Registration link {link_id} can no longer be used.")


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
              "canvas_config": "Canvas JSON configuration URL"}
    for key, label in labels.items():
        click.echo(f"{label:32} {urls[key]}")
    click.echo(f"{'Dynamic registration':32} a single-use link: flask --app lti_tool lti registration-link")


@lti_cli.command("rotate-key")
def rotate_key():
    """Add a new signing key. Older keys stay published until `retire-key`."""
    key = keys.rotate()
    registry.operator_audit("key.rotated", key, None, None,
                            {"kid": key.kid, "published": [k.kid for k in keys.published_keys()]})
    db.session.commit()
    click.echo(f"New signing key {key.kid}; published keys: {', '.join(k.kid for k in keys.published_keys())}")


@lti_cli.command("retire-key")
@click.argument("kid")
def retire_key(kid):
    """Stop publishing an old key (after platforms have refreshed their copy of the JWKS)."""
    try:
        key = keys.retire(kid)
    except (LookupError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    registry.operator_audit("key.retired", key, None, None, {"kid": kid})
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
    """Delete expired state, nonces and launch data, and form submission keys older than a day."""
    from .lti.storage import purge_expired
    from .submissions import purge_old

    count = purge_expired()
    keys = purge_old()
    db.session.commit()
    click.echo(f"Deleted {count} expired entries and {keys} old submission keys")


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
    app.cli.add_command(status_cli)
    app.cli.add_command(records_cli)
