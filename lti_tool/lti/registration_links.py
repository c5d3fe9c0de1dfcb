"""Single-use, expiring dynamic-registration links, handed out by the operator (`flask lti registration-link`).

Dynamic registration makes the tool call addresses a stranger names and creates a tenant, so /lti/register does
nothing at all without one of these links. The token is shown once, to the operator; only its SHA-256 is stored,
so neither the database nor any page can give it out again.
"""
import hashlib
import secrets
from datetime import timedelta

from flask import url_for
from sqlalchemy import select, update

from ..extensions import db
from ..models import RegistrationLink
from ..models.base import utcnow

PARAM = "link"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(name: str | None, days: int) -> tuple[RegistrationLink, str]:
    token = secrets.token_urlsafe(32)
    row = RegistrationLink(token_hash=_hash(token), name=name or None, expires_at=utcnow() + timedelta(days=days))
    db.session.add(row)
    db.session.flush()
    return row, token


def url(token: str) -> str:
    return url_for("lti.register", _external=True, **{PARAM: token})


def usable(token: str | None) -> RegistrationLink | None:
    """The unused, unexpired link with this token; reads only."""
    if not token or len(token) > 200:
        return None
    return db.session.scalars(select(RegistrationLink).where(
        RegistrationLink.token_hash == _hash(token), RegistrationLink.used_at.is_(None),
        RegistrationLink.expires_at > utcnow())).first()


def claim(token: str | None) -> RegistrationLink | None:
    """Mark the link used in this transaction, or None when it is not usable. The conditional UPDATE makes two
    simultaneous registrations with one link race for the row: one wins, the other finds it used. A registration
    refused later in the request rolls back, so the link stays usable for another try."""
    row = usable(token)
    if row is None:
        return None
    claimed = db.session.execute(update(RegistrationLink).where(
        RegistrationLink.id == row.id, RegistrationLink.used_at.is_(None), RegistrationLink.expires_at > utcnow())
        .values(used_at=utcnow()).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        return None
    db.session.refresh(row)
    return row


def listed() -> list[RegistrationLink]:
    return list(db.session.scalars(select(RegistrationLink).order_by(RegistrationLink.id)))


def revoke(link_id: int) -> RegistrationLink:
    row = db.session.get(RegistrationLink, link_id)
    if row is None:
        raise LookupError(f"No registration link {link_id}.")
    if row.used_at is None:
        row.expires_at = utcnow()
        db.session.flush()
    return row
