"""pylti1p3 reads registrations and deployments from the database through this ToolConf."""
from pylti1p3.deployment import Deployment as LtiDeployment
from pylti1p3.registration import Registration as LtiRegistration
from pylti1p3.tool_config import ToolConfAbstract
from sqlalchemy import select

from ..extensions import db
from ..models import Deployment, Registration
from . import keys
from .registry import bound_audience


class ToolRegistration(LtiRegistration):
    """pylti1p3's registration, carrying our row. The tool's signing key is read only when something signs
    (Advantage service calls, deep-linking responses): a launch does not need it, and must not create one."""

    def __init__(self, row: Registration):
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


def registrations_for_issuer(issuer: str) -> list[Registration]:
    return list(db.session.scalars(select(Registration).where(Registration.issuer == issuer)))


def find_registration_row(issuer: str, client_id: str | None,
                          deployment_id: str | None = None) -> Registration | None:
    rows = registrations_for_issuer(issuer)
    if client_id:
        return next((r for r in rows if r.client_id == client_id), None)
    if len(rows) <= 1:
        return rows[0] if rows else None
    # A login without client_id from an issuer with several registrations: the one that has the deployment,
    # else the first registered, so a registration added later never takes over the issuer's existing logins.
    owners = [r for r in rows if deployment_id and any(d.deployment_id == deployment_id for d in r.deployments)]
    return owners[0] if len(owners) == 1 else min(rows, key=lambda r: r.id)


def find_deployment_row(registration: Registration, deployment_id: str) -> Deployment | None:
    return db.session.scalars(
        select(Deployment).where(
            Deployment.registration_id == registration.id,
            Deployment.deployment_id == deployment_id,
            Deployment.active.is_(True),
        )
    ).first()


class DbToolConf(ToolConfAbstract):
    """Many client ids per issuer (Canvas), each with many deployments."""

    def check_iss_has_one_client(self, iss):
        return False

    def check_iss_has_many_clients(self, iss):
        return True

    def find_registration_by_issuer(self, iss, *args, **kwargs):
        row = find_registration_row(iss, None)
        return ToolRegistration(row) if row else None

    def find_registration_by_params(self, iss, client_id, *args, **kwargs):
        row = find_registration_row(iss, client_id)
        return ToolRegistration(row) if row else None

    def find_deployment(self, iss, deployment_id):
        row = find_registration_row(iss, None, deployment_id)
        return self._deployment(row, deployment_id)

    def find_deployment_by_params(self, iss, deployment_id, client_id, *args, **kwargs):
        return self._deployment(find_registration_row(iss, client_id), deployment_id)

    @staticmethod
    def _deployment(row, deployment_id):
        if row is None:
            return None
        found = find_deployment_row(row, deployment_id)
        return LtiDeployment().set_deployment_id(found.deployment_id) if found else None
