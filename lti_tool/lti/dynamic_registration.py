"""LTI Dynamic Registration, as Moodle 4.x and Canvas perform it.

The LMS opens /lti/register?link=...&openid_configuration=...&registration_token=... in a window (the operator's
registration link, to which the LMS adds its two parameters); the tool reads the platform's configuration, shows
what it is about to register, POSTs its own configuration, stores the result as a new registration and closes the
window with the org.imsglobal.lti.close postMessage. Every call goes through lti/http.py.
"""
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext as _
from pylti1p3.dynamic_registration import DynamicRegistration

from ..extensions import db
from ..models import Deployment, Registration
from ..services.launches import TIME_ZONE_PARAMETER
from . import registry
from .http import OutboundError, http_session
from .urls import SCOPES, tool_urls

PLATFORM_CONF = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONF = "https://purl.imsglobal.org/spec/lti-tool-configuration"
REQUIRED = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint")


class RegistrationError(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class ToolDynamicRegistration(DynamicRegistration):
    description = "Competency evidence, sign-off and transcripts for pharmacy technicians."

    def __init__(self, openid_configuration_url: str, registration_token: str | None):
        self.openid_configuration_url = openid_configuration_url
        self.registration_token = registration_token or None
        self.client_name = current_app.config["TOOL_TITLE"]
        self.urls = tool_urls()
        self._platform = None

    # pylti1p3's hooks ------------------------------------------------------------------------
    def get_request_session(self):
        return http_session()

    def get_initiate_login_uri(self):
        return self.urls["login"]

    def get_jwks_uri(self):
        return self.urls["jwks"]

    def get_redirect_uris(self):
        return [self.urls["launch"]]

    def get_target_link_uri(self):
        return self.urls["launch"]

    def get_domain(self):
        return urlsplit(self.urls["launch"]).netloc

    def get_scopes(self):
        return SCOPES

    def get_claims(self):
        return ["iss", "sub", "name", "given_name", "family_name", "email"]

    def get_logo_uri(self):
        return self.urls["launch"].rsplit("/lti/", 1)[0] + "/static/img/logo.svg"

    def get_messages(self):
        return [
            {"type": "LtiResourceLinkRequest", "target_link_uri": self.urls["launch"], "label": self.client_name},
            {"type": "LtiDeepLinkingRequest", "target_link_uri": self.urls["deep_linking"],
             "label": f"Add {self.client_name} content"},
        ]

    def lti_registration_data(self):
        data = super().lti_registration_data()
        # The person's time zone at every launch (Moodle and Canvas substitute the variable); dates and times on
        # pages are then shown in it (services.settings.viewer_time_zone).
        data[TOOL_CONF]["custom_parameters"] = {TIME_ZONE_PARAMETER: "$Person.address.timezone"}
        return data

    def get_openid_configuration_endpoint(self):
        return self.openid_configuration_url

    def get_registration_token(self):
        return self.registration_token

    # our flow ----------------------------------------------------------------------------------
    def read_platform(self) -> dict:
        url = self.openid_configuration_url
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise RegistrationError(_("The LMS did not give an openid_configuration address. Start the "
                                    "registration from the LMS's tool administration page."))
        try:
            resp = http_session().get(url, headers={"Accept": "application/json"})
        except OutboundError as exc:
            raise RegistrationError(f"The LMS's configuration could not be read: {exc}") from exc
        if not resp.ok:
            raise RegistrationError(f"The LMS's configuration could not be read (HTTP {resp.status_code}).")
        try:
            platform = resp.json()
        except ValueError as exc:
            raise RegistrationError(_("The LMS's configuration could not be read (it is not JSON).")) from exc
        if not isinstance(platform, dict):
            raise RegistrationError(_("The LMS's configuration is not a JSON object."))
        missing = [k for k in REQUIRED if not platform.get(k) or not isinstance(platform.get(k), str)]
        if missing:
            raise RegistrationError("The LMS's configuration lacks " + ", ".join(missing) + ".")
        if not isinstance(platform.get(PLATFORM_CONF), dict):
            raise RegistrationError(_("The configuration is not an LTI platform configuration."))
        try:
            registry.check_values(issuer=platform["issuer"], auth_login_url=platform["authorization_endpoint"],
                                  auth_token_url=platform["token_endpoint"], jwks_url=platform["jwks_uri"],
                                  registration_endpoint_url=platform["registration_endpoint"])
        except registry.RegistryError as exc:
            raise RegistrationError(f"The LMS's configuration is not usable: {exc}") from exc
        self._platform = platform
        return platform

    def register_and_store(self, name: str | None = None) -> Registration:
        """POST the tool's configuration to the platform and store the new registration. Never updates one."""
        platform = self._platform or self.read_platform()
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self.registration_token:
            headers["Authorization"] = "Bearer " + self.registration_token
        try:
            resp = http_session().post(platform["registration_endpoint"], json=self.lti_registration_data(),
                                       headers=headers)
        except OutboundError as exc:
            raise RegistrationError(f"The LMS's registration endpoint could not be reached: {exc}") from exc
        if not resp.ok:
            # The answer is the platform's text: never shown (it could be anything the address returned).
            raise RegistrationError(f"The LMS refused the registration (HTTP {resp.status_code}).")
        try:
            answer = resp.json()
        except ValueError as exc:
            raise RegistrationError(_("The LMS's answer to the registration is not JSON.")) from exc
        client_id = answer.get("client_id") if isinstance(answer, dict) else None
        # str() of a missing or null client_id would register a client called "None".
        if not isinstance(client_id, str | int) or isinstance(client_id, bool) or not str(client_id).strip():
            raise RegistrationError(_("The LMS's answer to the registration has no client_id."))
        client_id = str(client_id)
        tool_conf = answer.get(TOOL_CONF) if isinstance(answer.get(TOOL_CONF), dict) else {}
        issuer = platform["issuer"]
        conf = platform[PLATFORM_CONF]
        family = conf.get("product_family_code") if isinstance(conf.get("product_family_code"), str) else None
        deployment_id = tool_conf.get("deployment_id")
        try:
            row = registry.create(
                name=(name or (family or "LMS").title() + " " + urlsplit(issuer).netloc)[:200], issuer=issuer,
                client_id=client_id, auth_login_url=platform["authorization_endpoint"],
                auth_token_url=platform["token_endpoint"], jwks_url=platform["jwks_uri"],
                auth_audience=platform.get("authorization_server")
                if isinstance(platform.get("authorization_server"), str) else None,
                product_family=family[:100] if family else None,
                # Canvas creates deployments only when the tool is installed in an account or course; trust new
                # deployment ids that arrive in launches signed by this registration.
                auto_deployments=not deployment_id)
        except registry.RegistryError as exc:
            raise RegistrationError(str(exc), status=409) from exc
        if deployment_id:
            db.session.add(Deployment(registration_id=row.id, deployment_id=str(deployment_id)[:255]))
        db.session.flush()
        return row
