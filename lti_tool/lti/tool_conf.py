"""pylti1p3 reads registrations and deployments through this ToolConf, from a cache in each server process.

The cache rule (why a launch needs no query to find its registration, yet never runs on a stale one):
- Each process keeps, per issuer, plain copies of its registrations and their deployments, together with the
  registry stamp (`RegistryVersion`) read in the same statement that loaded them.
- Any change to a registration or deployment made through the application (admin pages, the `flask lti` CLI,
  dynamic registration, a refreshed platform key set) writes a new stamp in the same transaction, and clears this
  process's cache when it commits.
- Every launch reads the current stamp inside the statement that consumes its nonce (`storage.claim` with
  `also=stamp()`), so other processes' changes are seen at once: when the stamp differs, the registration is
  loaded again before anything is trusted or written. A login, which writes nothing and trusts nothing (the launch
  checks everything again), reads the stamp (`read_stamp`, its one statement) unless a statement showed the copy
  current within LTI_LOGIN_STAMP_SECONDS; at a shift change's rate of launches most logins make no query.
- Edits that bypass the application (SQL typed into psql) write no stamp; cached copies older than
  LTI_REGISTRY_CACHE_SECONDS are loaded again, which bounds how long those go unseen.
"""
import secrets
import threading
import time
from dataclasses import dataclass, field

from flask import current_app, has_app_context
from pylti1p3.deployment import Deployment as LtiDeployment
from pylti1p3.registration import Registration as LtiRegistration
from pylti1p3.tool_config import ToolConfAbstract
from sqlalchemy import event, select
from sqlalchemy.orm import Session, joinedload

from ..extensions import db
from ..models import Deployment, Registration, RegistryVersion
from ..models.upsert import insert, prebuilt
from . import keys
from .registry import bound_audience


@dataclass(frozen=True)
class DeploymentInfo:
    id: int
    deployment_id: str
    active: bool


@dataclass(frozen=True, eq=False)
class RegistrationInfo:
    """A registration's columns as plain values, safe to share between requests (never mutate its dicts)."""

    id: int
    name: str
    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    auth_audience: str | None
    jwks_url: str
    jwks_cache: dict | None
    jwks_fetched_at: object
    role_mapping: dict | None
    product_family: str | None
    auto_deployments: bool
    is_dev_lms: bool
    settings: dict | None
    deployments: dict[str, DeploymentInfo] = field(default_factory=dict)

    @classmethod
    def of(cls, row: Registration) -> "RegistrationInfo":
        return cls(
            id=row.id, name=row.name, issuer=row.issuer, client_id=row.client_id,
            auth_login_url=row.auth_login_url, auth_token_url=row.auth_token_url, auth_audience=row.auth_audience,
            jwks_url=row.jwks_url, jwks_cache=row.jwks_cache, jwks_fetched_at=row.jwks_fetched_at,
            role_mapping=row.role_mapping, product_family=row.product_family,
            auto_deployments=bool(row.auto_deployments), is_dev_lms=bool(row.is_dev_lms), settings=row.settings,
            deployments={d.deployment_id: DeploymentInfo(d.id, d.deployment_id, bool(d.active))
                         for d in row.deployments},
        )


# -- the registry stamp ---------------------------------------------------------------------------------------
_STAMP_ROW = 1


_stamp = None


def stamp():
    """The current registry stamp as a scalar subquery, to be read inside a statement that runs anyway (one
    expression for the process: statements that embed it are built once)."""
    global _stamp
    if _stamp is None:
        table = RegistryVersion.__table__
        _stamp = select(table.c.stamp).where(table.c.id == _STAMP_ROW).scalar_subquery()
    return _stamp


def read_stamp() -> str | None:
    """The current stamp, read on its own: for the login, which writes nothing to carry it (one indexed read)."""
    table = RegistryVersion.__table__
    return db.session.execute(prebuilt("registry-stamp", lambda dialect: select(table.c.stamp).where(
        table.c.id == _STAMP_ROW))).scalar()


def note_registry_change(session: Session) -> None:
    """A new stamp in this transaction; for changes written without the ORM (the hook below sees the others)."""
    _write_new_stamp(session)


def _write_new_stamp(session: Session) -> None:
    new = secrets.token_hex(16)
    stmt = insert(RegistryVersion.__table__, session.get_bind().dialect.name).values(id=_STAMP_ROW, stamp=new)
    session.connection().execute(stmt.on_conflict_do_update(index_elements=["id"], set_={"stamp": new}))
    session.info["registry_changed"] = True


@event.listens_for(Session, "before_flush")
def _stamp_registry_changes(session, flush_context, instances):
    if session.info.get("registry_changed"):
        return  # one new stamp per transaction is enough
    for obj in (*session.new, *session.deleted, *session.dirty):
        if isinstance(obj, Registration | Deployment) and (obj not in session.dirty or session.is_modified(obj)):
            _write_new_stamp(session)
            return


@event.listens_for(Session, "after_commit")
def _forget_after_registry_change(session):
    if session.info.pop("registry_changed", False) and has_app_context():
        cache().clear()


@event.listens_for(Session, "after_rollback")
def _rolled_back(session):
    session.info.pop("registry_changed", None)


# -- the per-process cache ------------------------------------------------------------------------------------
@dataclass
class _Entry:
    loaded_at: float
    stamp: str | None
    rows: list[RegistrationInfo]
    # When a statement last showed this copy current (its load, a launch's nonce, a login's read).
    checked_at: float = 0.0


class RegistryCache:
    def __init__(self):
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def registrations(self, issuer: str) -> list[RegistrationInfo]:
        entry = self._entries.get(issuer)
        max_age = current_app.config["LTI_REGISTRY_CACHE_SECONDS"]
        if entry is None or time.monotonic() - entry.loaded_at > max_age:
            entry = self._load(issuer)
        return entry.rows

    def is_current(self, issuer: str, seen_stamp: str | None) -> bool:
        """False when the stamp read by a statement differs from the one this issuer's copies were loaded at."""
        entry = self._entries.get(issuer)
        if entry is None or entry.stamp != seen_stamp:
            return False
        entry.checked_at = time.monotonic()
        return True

    def checked_within(self, issuer: str, seconds: float) -> bool:
        """Whether a statement showed this issuer's copies current less than `seconds` ago."""
        entry = self._entries.get(issuer)
        return entry is not None and time.monotonic() - entry.checked_at < seconds

    def reload(self, issuer: str) -> list[RegistrationInfo]:
        return self._load(issuer).rows

    def _load(self, issuer: str) -> _Entry:
        result = db.session.execute(
            select(Registration, stamp()).options(joinedload(Registration.deployments))
            .where(Registration.issuer == issuer).order_by(Registration.id)
        ).unique().all()
        now = time.monotonic()
        entry = _Entry(now, result[0][1] if result else None, [RegistrationInfo.of(row) for row, _ in result], now)
        if result:  # an unknown issuer is not remembered: registering it elsewhere must take effect at once
            with self._lock:
                self._entries[issuer] = entry
        return entry


def cache() -> RegistryCache:
    """This app's cache (one per app, so that two apps in one process, as in the tests, never share copies)."""
    return current_app.extensions.setdefault("lti_registry_cache", RegistryCache())


def pick(rows, client_id: str | None, deployment_id: str | None = None):
    """The issuer's registration (`rows` in id order) that a login or launch means."""
    if client_id:
        return next((r for r in rows if r.client_id == client_id), None)
    if len(rows) <= 1:
        return rows[0] if rows else None
    # A login without client_id from an issuer with several registrations: the one that has the deployment,
    # else the first registered, so a registration added later never takes over the issuer's existing logins.
    owners = [r for r in rows if deployment_id and deployment_id in r.deployments]
    return owners[0] if len(owners) == 1 else rows[0]


def registration_info(issuer: str, client_id: str | None,
                      deployment_id: str | None = None) -> RegistrationInfo | None:
    """The registration from this process's cache (see the rule at the top)."""
    return pick(cache().registrations(issuer), client_id, deployment_id)


def find_deployment_row(registration, deployment_id: str) -> DeploymentInfo | None:
    """The active deployment, or None (unknown or disabled: see `deployment_known`)."""
    found = registration.deployments.get(deployment_id)
    return found if found is not None and found.active else None


def deployment_known(registration, deployment_id: str) -> bool:
    return deployment_id in registration.deployments


# -- pylti1p3's view --------------------------------------------------------------------------------------------
class ToolRegistration(LtiRegistration):
    """pylti1p3's registration, carrying our row. The tool's signing key is read only when something signs
    (Advantage service calls, deep-linking responses): a launch does not need it, and must not create one."""

    def __init__(self, row):
        self.row = row
        self._key = None
        (
            self.set_issuer(row.issuer)
            .set_client_id(row.client_id)
            .set_auth_login_url(row.auth_login_url)
            .set_auth_token_url(row.auth_token_url)
            .set_key_set_url(row.jwks_url)
        )
        # A client assertion's aud is the token URL it is posted to; a separate audience only on that origin.
        audience = bound_audience(row.auth_token_url, row.auth_audience)
        if audience:
            self.set_auth_audience(audience)

    def _signing_key(self):
        if self._key is None:
            self._key = keys.signing_key()
        return self._key

    def get_tool_private_key(self):
        return self._signing_key().private_pem

    def get_kid(self):
        return self._signing_key().kid

    def get_jwks(self):
        return keys.jwks()["keys"]


class DbToolConf(ToolConfAbstract):
    """Many client ids per issuer (Canvas), each with many deployments."""

    def check_iss_has_one_client(self, iss):
        return False

    def check_iss_has_many_clients(self, iss):
        return True

    def find_registration_by_issuer(self, iss, *args, **kwargs):
        row = registration_info(iss, None)
        return ToolRegistration(row) if row else None

    def find_registration_by_params(self, iss, client_id, *args, **kwargs):
        row = registration_info(iss, client_id)
        return ToolRegistration(row) if row else None

    def find_deployment(self, iss, deployment_id):
        return self._deployment(registration_info(iss, None), deployment_id)

    def find_deployment_by_params(self, iss, deployment_id, client_id, *args, **kwargs):
        return self._deployment(registration_info(iss, client_id), deployment_id)

    @staticmethod
    def _deployment(row, deployment_id):
        if row is None:
            return None
        found = find_deployment_row(row, deployment_id)
        return LtiDeployment().set_deployment_id(found.deployment_id) if found else None
