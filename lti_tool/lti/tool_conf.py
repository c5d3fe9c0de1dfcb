"""pylti1p3 reads registrations and deployments from the database through this ToolConf."""
from pylti1p3.deployment import Deployment as LtiDeployment
from pylti1p3.registration import Registration as LtiRegistration
from pylti1p3.tool_config import ToolConfAbstract
from sqlalchemy import select

from ..extensions import db
from ..models import Deployment, Registration
from . import keys


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
        if row.auth_audience:
            self.set_auth_audience(row.auth_audience)

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


def find_registration_row(issuer: str, client_id: str | None) -> Registration | None:
    rows = registrations_for_issuer(issuer)
    if client_id:
        return next((r for r in rows if r.client_id == client_id), None)
    # A login without client_id is only unambiguous when the issuer has a single registration.
    return rows[0] if len(rows) == 1 else None


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
        row = find_registration_row(iss, None)
        return self._deployment(row, deployment_id)

    def find_deployment_by_params(self, iss, deployment_id, client_id, *args, **kwargs):
        return self._deployment(find_registration_row(iss, client_id), deployment_id)

    @staticmethod
    def _deployment(row, deployment_id):
        if row is None:
            return None
        found = find_deployment_row(row, deployment_id)
        return LtiDeployment().set_deployment_id(found.deployment_id) if found else None
