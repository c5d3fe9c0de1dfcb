"""Creating and changing registrations (tenants): the rules that keep one tenant from becoming another.

- No registration ever replaces another: an (issuer, client id) pair that exists is refused.
- A client id at a token endpoint belongs to one registration: the tool signs client assertions with iss = sub =
  client id, so a second registration claiming the same client id at the same token endpoint's origin (under
  another issuer) could obtain the first one's access tokens.
- The token audience (`authorization_server`) is honored only on the token URL's own origin, so an assertion is
  never addressed to a server other than the one it is posted to.
- URLs change only by the operator's hand (CLI), and each change is in the audit log.
"""
from sqlalchemy import select

from ..extensions import db
from ..models import AuditEntry, Registration
from .urls import origin

URL_FIELDS = ("auth_login_url", "auth_token_url", "jwks_url", "auth_audience")
LIMITS = {"issuer": 500, "client_id": 255, "auth_login_url": 1000, "auth_token_url": 1000, "jwks_url": 1000,
          "auth_audience": 1000, "name": 200}


class RegistryError(Exception):
    """A registration the tool refuses; the message is fit for the page or the CLI."""


def bound_audience(token_url: str, audience: str | None) -> str | None:
    """`audience` when it is on the token URL's origin, else None (the assertion's aud is then the token URL)."""
    if audience and origin(audience) and origin(audience) == origin(token_url):
        return audience
    return None


def check_values(**values) -> None:
    for field, value in values.items():
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise RegistryError(f"The {field.replace('_', ' ')} is missing.")
        if len(value) > LIMITS.get(field, 1000):
            raise RegistryError(f"The {field.replace('_', ' ')} is longer than the tool accepts.")
        if field.endswith("_url") or field in ("issuer", "auth_audience"):
            if not origin(value):
                raise RegistryError(f"The {field.replace('_', ' ')} {value!r} is not an http(s) URL.")


def conflict(issuer: str, client_id: str, token_url: str, *, own_id: int | None = None) -> str | None:
    """Why a registration with these values would collide with another one, or None."""
    rows = db.session.scalars(select(Registration).where(Registration.client_id == client_id)).all()
    for row in rows:
        if row.id == own_id:
            continue
        if row.issuer == issuer:
            return (f"The LMS {issuer} with client id {client_id} is already registered with this tool. An existing "
                    "registration is never replaced: ask the tool's operator to change it.")
        if origin(row.auth_token_url) == origin(token_url):
            return (f"Client id {client_id} at {origin(token_url)} already belongs to another registration of this "
                    "tool.")
    return None


def create(*, name: str, issuer: str, client_id: str, auth_login_url: str, auth_token_url: str, jwks_url: str,
           auth_audience: str | None = None, **extra) -> Registration:
    check_values(name=name, issuer=issuer, client_id=client_id, auth_login_url=auth_login_url,
                 auth_token_url=auth_token_url, jwks_url=jwks_url, auth_audience=auth_audience)
    problem = conflict(issuer, client_id, auth_token_url)
    if problem:
        raise RegistryError(problem)
    row = Registration(name=name, issuer=issuer, client_id=client_id, auth_login_url=auth_login_url,
                       auth_token_url=auth_token_url, jwks_url=jwks_url,
                       auth_audience=bound_audience(auth_token_url, auth_audience), **extra)
    db.session.add(row)
    db.session.flush()
    operator_audit("registration.created", row, row.id, None, _urls(row))
    return row


def change_urls(row: Registration, **urls) -> dict:
    """The operator changes a registration's URLs (CLI). Returns what changed; the JWKS cache is dropped."""
    check_values(**urls)
    if "auth_token_url" in urls:
        problem = conflict(row.issuer, row.client_id, urls["auth_token_url"], own_id=row.id)
        if problem:
            raise RegistryError(problem)
    before = _urls(row)
    for field, value in urls.items():
        setattr(row, field, value)
    row.auth_audience = bound_audience(row.auth_token_url, row.auth_audience)
    after = _urls(row)
    changed = {k: after[k] for k in after if after[k] != before[k]}
    if changed:
        row.jwks_cache = None
        row.jwks_fetched_at = None
        db.session.flush()
        operator_audit("registration.urls_changed", row, row.id, {k: before[k] for k in changed}, changed)
    return changed


def _urls(row) -> dict:
    return {f: getattr(row, f) for f in URL_FIELDS}


def operator_audit(action, entity, registration_id, before, after):
    """An audit row for what the operator (CLI) or a registration link did, not a person of any tenant."""
    db.session.add(AuditEntry(registration_id=registration_id, actor_role="operator", action=action,
                              entity_type=entity.__tablename__, entity_id=entity.id, before=before, after=after))
    db.session.flush()
