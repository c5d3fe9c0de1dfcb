"""The tool's RSA signing keys: every unretired key is published; the newest settled one signs."""
import json
import uuid
from datetime import timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import current_app, has_app_context
from jwcrypto.jwk import JWK
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import ToolKey
from ..models.base import utcnow


def generate_rsa_pem(bits: int = 2048) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_jwk_from_pem(private_pem: str, kid: str) -> dict:
    jwk = json.loads(JWK.from_pem(private_pem.encode()).export_public())
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return jwk


def _new_key() -> ToolKey:
    kid = uuid.uuid4().hex
    pem = generate_rsa_pem()
    return ToolKey(kid=kid, private_pem=pem, public_jwk=public_jwk_from_pem(pem, kid))


def create_key() -> ToolKey:
    key = _new_key()
    db.session.add(key)
    db.session.flush()
    return key


def published_keys() -> list[ToolKey]:
    return list(db.session.scalars(select(ToolKey).where(ToolKey.retired_at.is_(None)).order_by(ToolKey.id)))


def _newest_key() -> ToolKey | None:
    return db.session.scalars(
        select(ToolKey).where(ToolKey.retired_at.is_(None)).order_by(ToolKey.id.desc()).limit(1)
    ).first()


def _settled_key(now=None) -> ToolKey | None:
    """The newest unretired key that has been published for LTI_KEY_ACTIVATION_DELAY seconds: platforms cache
    our JWKS, so a freshly rotated key only starts signing once they have had time to fetch it."""
    delay = current_app.config.get("LTI_KEY_ACTIVATION_DELAY", 0) if has_app_context() else 0
    if not delay:
        return None
    cutoff = (now or utcnow()) - timedelta(seconds=delay)
    return db.session.scalars(
        select(ToolKey).where(ToolKey.retired_at.is_(None), ToolKey.created_at <= cutoff)
        .order_by(ToolKey.id.desc()).limit(1)
    ).first()


def signing_key(now=None) -> ToolKey:
    """The newest settled key (see _settled_key), else the newest unretired key. On a fresh install one is
    created on first use and committed at once, in its own transaction: the platform checks a client assertion by
    fetching /lti/jwks while the request that signed it is still running (Moodle does so inside its token
    endpoint), so the key must already be published. Retiring the settled key hands signing to the newest."""
    key = _settled_key(now) or _newest_key()
    if key is None:
        with Session(db.engine) as session, session.begin():
            session.add(_new_key())
        key = _newest_key()
    return key


def jwks() -> dict:
    return {"keys": [k.public_jwk for k in published_keys()]}


def rotate() -> ToolKey:
    """Add a new signing key; older keys stay published until retired, so tokens in flight still verify."""
    return create_key()


def retire(kid: str) -> ToolKey:
    key = db.session.scalars(select(ToolKey).where(ToolKey.kid == kid)).first()
    if key is None:
        raise LookupError(f"No key with kid {kid}")
    if key.retired_at is None:
        if len(published_keys()) == 1:
            raise ValueError("Refusing to retire the only published key; rotate first.")
        key.retired_at = utcnow()
        db.session.flush()
    return key


def ensure_published() -> None:
    """Create and commit a first key if there is none, so other processes (and platforms) can see it."""
    if not published_keys():
        create_key()
        db.session.commit()
