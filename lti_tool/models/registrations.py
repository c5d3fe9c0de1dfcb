"""LTI platform registrations, their deployments and the tool's signing keys."""
from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, utcnow


class Registration(db.Model):
    """One (issuer, client_id) pair: a Canvas developer key or a Moodle tool registration."""

    __tablename__ = "registrations"
    __table_args__ = (UniqueConstraint("issuer", "client_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    auth_login_url: Mapped[str] = mapped_column(String(1000))
    auth_token_url: Mapped[str] = mapped_column(String(1000))
    auth_audience: Mapped[str | None] = mapped_column(String(1000))
    jwks_url: Mapped[str] = mapped_column(String(1000))
    # Last JWKS fetched from jwks_url; refreshed when stale or when a launch names an unknown kid.
    jwks_cache: Mapped[dict | None] = mapped_column(JSON)
    jwks_fetched_at = mapped_column(UTCDateTime)
    # Overrides of the default LTI role -> tool role mapping, {"<role URI or short name>": "<tool role>"}.
    role_mapping: Mapped[dict | None] = mapped_column(JSON)
    # Set by dynamic registration: the platform's product (canvas, moodle, ...).
    product_family: Mapped[str | None] = mapped_column(String(100))
    # Record new deployment ids from launches this registration signed (Canvas installs after registering).
    auto_deployments: Mapped[bool] = mapped_column(Boolean, default=False)
    is_dev_lms: Mapped[bool] = mapped_column(Boolean, default=False)
    # Tenant settings, e.g. {"revalidation_warning_days": 30}; see services.settings for defaults.
    settings: Mapped[dict | None] = mapped_column(JSON)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    deployments: Mapped[list["Deployment"]] = relationship(
        back_populates="registration", cascade="all, delete-orphan", order_by="Deployment.id"
    )

    def __repr__(self):
        return f"<Registration {self.id} {self.issuer} {self.client_id}>"


class Deployment(db.Model):
    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("registration_id", "deployment_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"), index=True)
    deployment_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    registration: Mapped[Registration] = relationship(back_populates="deployments")


class ToolKey(db.Model):
    """An RSA key the tool signs with. The newest unretired key signs; every unretired key is published."""

    __tablename__ = "tool_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kid: Mapped[str] = mapped_column(String(100), unique=True)
    private_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict] = mapped_column(JSON)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    retired_at = mapped_column(UTCDateTime)


class RegistrationLink(db.Model):
    """A dynamic-registration link the operator handed out (`flask lti registration-link`). Only the SHA-256 of
    its token is kept; the link registers one platform, once, before it expires."""

    __tablename__ = "registration_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # What the operator called it; becomes the registration's name.
    name: Mapped[str | None] = mapped_column(String(200))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    expires_at = mapped_column(UTCDateTime, nullable=False)
    used_at = mapped_column(UTCDateTime)
    registration_id: Mapped[int | None] = mapped_column(ForeignKey("registrations.id", ondelete="SET NULL"))


class RegistryVersion(db.Model):
    """A single row whose stamp changes in the same transaction as any change to a registration or deployment.

    Each server process caches registrations and deployments (lti/tool_conf.py) and compares this stamp, read in
    a statement a launch runs anyway, with the one its cache was filled at."""

    __tablename__ = "registry_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # A random token, not a counter: emptying and refilling the table can never bring back a stamp seen before.
    stamp: Mapped[str | None] = mapped_column(String(32))
