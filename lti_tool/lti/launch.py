"""OIDC login and message launch on top of pylti1p3, hardened.

pylti1p3 2.0 leaves several gaps that matter in production (see shared REFERENCE): no timeouts, no JWKS
re-fetch on an unknown kid, aud/azp/iss not checked, nonces never consumed, state only in a cookie. The
subclasses below close them and turn every refusal into a LaunchError a person can read.
"""
import dataclasses
import secrets
from datetime import timedelta
from functools import lru_cache
from urllib.parse import urlencode, urlsplit

import jwt
from flask import current_app, request
from flask_babel import gettext as _
from jwt.algorithms import RSAAlgorithm
from pylti1p3.contrib.flask import FlaskCookieService, FlaskMessageLaunch, FlaskOIDCLogin, FlaskRequest
from pylti1p3.exception import LtiException
from sqlalchemy import select

from .. import tool_session
from ..extensions import db
from ..models import Deployment, Registration, driver
from ..models.base import utcnow
from ..models.upsert import insert
from ..services.launches import launch_rows_read
from . import login_state, storage
from .claims import check_claims
from .errors import ADMIN_REGISTRATION_ADVICE, LaunchError
from .http import http_session
from .tool_conf import (
    DbToolConf,
    DeploymentInfo,
    ToolRegistration,
    cache,
    deployment_known,
    find_deployment_row,
    note_registry_change,
    pick,
    read_stamp,
    registration_info,
    stamp,
)

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
ALLOWED_ALGS = ("RS256", "RS384", "RS512")
SUPPORTED_MESSAGES = ("LtiResourceLinkRequest", "LtiDeepLinkingRequest")


def lti_request() -> FlaskRequest:
    """The request's parameters for pylti1p3: the query string's, and a POST's form fields over them."""
    merged = request.args.to_dict()
    if request.method == "POST":
        merged.update(request.form.to_dict())
    return FlaskRequest(request_data=merged or None)


def nonce_key(nonce: str) -> str:
    return f"nonce-{nonce}"


def _browser_digest() -> str | None:
    cookie = tool_session.browser_cookie()
    return tool_session.browser_digest(cookie) if cookie else None


@lru_cache(maxsize=256)
def _auth_request(auth_login_url: str, client_id: str, launch_url: str) -> str:
    """The authentication request's fixed part (OIDC implicit flow, as LTI 1.3 asks), the same for every login of
    a registration: built once; each login appends its state, nonce and hints."""
    sep = "&" if "?" in auth_login_url else "?"
    return auth_login_url + sep + urlencode({
        "scope": "openid", "response_type": "id_token", "response_mode": "form_post", "prompt": "none",
        "client_id": client_id, "redirect_uri": launch_url}) + "&"


class ToolOIDCLogin(FlaskOIDCLogin):
    """Third-party-initiated login: a signed state bound to the browser's cookie (login_state.py); writes nothing."""

    def __init__(self, lti_req):
        super().__init__(lti_req, DbToolConf(), cookie_service=FlaskCookieService(lti_req))
        self.registration_row = None
        self.browser = None

    def build_redirect(self, launch_url: str):
        # The login writes nothing (its state is signed: login_state.py); its one statement, the registry stamp,
        # is a read that needs no transaction, and is skipped when another statement showed the cached copy
        # current a moment ago (tool_conf.py).
        issuer = self._get_request_param("iss")
        window = current_app.config["LTI_LOGIN_STAMP_SECONDS"]
        if not (issuer and cache().checked_within(issuer, window)):
            storage.autocommit()
        login_hint = self._get_request_param("login_hint")
        target = self._get_request_param("target_link_uri")
        if not issuer:
            raise LaunchError(_("The LMS did not say who it is"),
                              _("The login request has no issuer (iss)."), status=400, code="missing_iss")
        if not login_hint:
            raise LaunchError(_("The LMS did not say who you are"),
                              _("The login request has no login_hint."), status=400, code="missing_login_hint")
        client_id = self._get_request_param("client_id")
        row = registration_info(issuer, client_id, self._get_request_param("lti_deployment_id"))
        if row is None:
            raise self._unknown(issuer, client_id)
        if target and urlsplit(target).netloc not in ("", urlsplit(launch_url).netloc):
            raise LaunchError(_("The link points elsewhere"),
                              _("The target_link_uri is not an address of this tool."), status=400,
                              code="foreign_target")
        if not cache().checked_within(issuer, window) and not cache().is_current(issuer, read_stamp()):
            # A registration changed since this process cached it: read it again before redirecting anywhere.
            row = pick(cache().reload(issuer), client_id)
            if row is None:
                raise self._unknown(issuer, client_id)
        self.registration_row = row
        # The browser's cookie, kept if it has one (a session token may already be bound to it), refreshed below.
        self.browser = tool_session.browser_cookie() or secrets.token_urlsafe(24)
        nonce = secrets.token_urlsafe(24)
        state = login_state.issue(row.id, nonce, tool_session.browser_digest(self.browser))
        params = {"state": state, "nonce": nonce, "login_hint": login_hint}
        hint = self._get_request_param("lti_message_hint")
        if hint:
            params["lti_message_hint"] = hint
        return _auth_request(row.auth_login_url, row.client_id, launch_url) + urlencode(params), state, nonce

    @staticmethod
    def _unknown(issuer, client_id):
        return LaunchError(
            "This LMS is not registered with the tool",
            f"No registration matches issuer {issuer}" + (f" and client id {client_id}." if client_id else "."),
            ADMIN_REGISTRATION_ADVICE, status=400, code="unknown_registration",
        )

    def apply_cookies(self, response):
        tool_session.set_browser_cookie(response, self.browser)
        return response


class ToolMessageLaunch(FlaskMessageLaunch):
    """Validates an id_token POST completely; sets .browser_bound when the browser showed the cookie its state
    is bound to."""

    def __init__(self, lti_req):
        session = storage.DbSessionService(lti_req, current_app.config["LTI_LAUNCH_DATA_TTL"])
        super().__init__(lti_req, DbToolConf(), session_service=session,
                         cookie_service=FlaskCookieService(lti_req), requests_session=_HttpOnDemand())
        self.registration_row = None
        self.deployment_row = None
        self.browser_bound = False
        self.state = None
        self._state_data = None
        # browser_digest() of the cookie the browser showed, when it is the one the state is bound to.
        self.browser_digest = None
        # The launch's stored rows, read with the nonce (services/launches.record_launch's `found`).
        self.launch_rows = None

    # -- the order matters: nothing is consumed before the signature and claims check out ----------
    def validate(self):
        self._validated = True
        # One statement for a returning user's launch (consume), committed on its own; a launch that must write
        # more opens a transaction for that (storage.transaction). On PostgreSQL that statement runs on a
        # connection of its own (models/driver.py) and the session, if anything uses it, is an ordinary one.
        if not driver.usable():
            storage.autocommit()
        try:
            self.validate_jwt_format()
            self.validate_registration()
            self.validate_jwt_signature()
            check_claims(self._jwt["body"])  # signed, but must also fit what the tool stores
            self.validate_state()
            self.validate_nonce()
            self.validate_deployment()
            self.validate_message()
            self.consume()
            self.save_launch_data()
        except LtiException as exc:
            self._validated = False
            raise LaunchError(_("The launch could not be checked"), str(exc), status=400) from exc
        except Exception:
            self._validated = False
            raise
        return self

    def validate_jwt_format(self):
        token = self._get_request_param("id_token")
        if not token:
            raise LaunchError(_("No launch token"), _("The LMS sent no id_token."), status=400, code="missing_id_token")
        try:
            super().validate_jwt_format()
        except LtiException as exc:
            raise LaunchError(_("The launch token is damaged"), _("The id_token is not a readable JWT."),
                              status=400, code="malformed_token") from exc
        if not isinstance(self._jwt.get("body"), dict) or not isinstance(self._jwt.get("header"), dict):
            raise LaunchError(_("The launch token is damaged"), _("The id_token is not a JWT object."), status=400,
                              code="malformed_token")
        return self

    def validate_registration(self):
        body = self._jwt["body"]
        iss = body.get("iss")
        aud = body.get("aud")
        client_id = aud[0] if isinstance(aud, list) and aud else aud
        if isinstance(aud, list) and len(aud) > 1:
            azp = body.get("azp")
            client_id = azp if azp in aud else None
        if not iss or not isinstance(iss, str):
            raise LaunchError(_("The LMS did not say who it is"), _("The id_token has no issuer (iss)."),
                              status=400, code="missing_iss")
        row = registration_info(iss, client_id) if isinstance(client_id, str) else None
        if row is None:
            raise LaunchError(_("This LMS is not registered with the tool"),
                              f"No registration matches issuer {iss} and client id {client_id}.",
                              ADMIN_REGISTRATION_ADVICE, status=401, code="unknown_registration")
        self.registration_row = row
        self._registration = ToolRegistration(row)
        return self

    # -- keys -----------------------------------------------------------------------------------
    def _fetch_jwks(self):
        row = self.registration_row
        try:
            resp = self._requests_session.get(row.jwks_url)
            resp.raise_for_status()
            data = resp.json()
            if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
                raise ValueError("no keys")
        except Exception as exc:
            current_app.logger.warning("JWKS fetch from %s failed: %s", row.jwks_url, exc)
            raise LaunchError(_("The LMS's keys could not be read"),
                              f"Fetching the platform's public keys from {row.jwks_url} failed.",
                              "An administrator should check the registration's JWKS URL and that the LMS is up.",
                              status=400, code="jwks_unavailable") from exc
        # Stored on the registration (every process reads it from there) and in this launch's copy.
        stored = db.session.get(Registration, row.id)
        if stored is None:
            raise LaunchError(_("This LMS is not registered with the tool"), _("The registration was just removed."),
                              ADMIN_REGISTRATION_ADVICE, status=401, code="unknown_registration")
        stored.jwks_cache, stored.jwks_fetched_at = data, utcnow()
        self.registration_row = dataclasses.replace(row, jwks_cache=data, jwks_fetched_at=stored.jwks_fetched_at)
        return data

    def get_public_key(self):
        header = self._jwt.get("header", {})
        kid, alg = header.get("kid"), header.get("alg")
        if alg not in ALLOWED_ALGS:
            raise LaunchError(_("The launch token is not signed the way LTI requires"),
                              f"Signature algorithm {alg!r} is not accepted; LTI requires RS256.",
                              status=401, code="bad_alg")
        if not kid:
            raise LaunchError(_("The launch token names no key"), _("The id_token header has no kid."),
                              status=401, code="missing_kid")
        row = self.registration_row
        max_age = timedelta(seconds=current_app.config["LTI_JWKS_CACHE_SECONDS"])

        def stale(row):
            return not row.jwks_cache or not row.jwks_fetched_at or utcnow() - row.jwks_fetched_at > max_age

        if stale(row) or _find_key(row.jwks_cache, kid, alg) is None:
            # Another process may have fetched the keys since this one cached the registration: read it again
            # (one query, only here) rather than fetch them a second time.
            row = pick(cache().reload(row.issuer), row.client_id) or row
            self.registration_row = row
        keyset = row.jwks_cache
        fresh = False
        if stale(row):
            keyset, fresh = self._fetch_jwks(), True
        key = _find_key(keyset, kid, alg)
        if key is None and not fresh:
            # The platform may have rotated its keys since we cached them: fetch again, once.
            key = _find_key(self._fetch_jwks(), kid, alg)
        if key is None:
            raise LaunchError(_("The launch token was signed with an unknown key"),
                              f"The platform's key set has no key {kid!r} for {alg}.",
                              "If the LMS rotated its keys recently, an administrator should check its JWKS URL.",
                              status=401, code="unknown_kid")
        return _public_key(key), alg

    def validate_jwt_signature(self):
        public_key, alg = self.get_public_key()
        row = self.registration_row
        try:
            claims = jwt.decode(
                self._get_id_token(), public_key, algorithms=[alg], audience=row.client_id,
                issuer=row.issuer, leeway=current_app.config["LTI_JWT_LEEWAY"],
                options={"require": ["exp", "iat", "iss", "aud", "nonce"], "verify_sub": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise LaunchError(_("The launch has expired"), _("The id_token's expiry time has passed."),
                              _("Open the tool again from your course. If it keeps happening, the LMS server's "
                              "clock may be wrong."), status=401, code="expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise LaunchError(_("The launch comes from the future"), _("The id_token was issued after the current "
                              "time (iat in the future)."), _("An administrator should check the LMS server's clock."),
                              status=401, code="iat_future") from exc
        except jwt.InvalidAudienceError as exc:
            raise LaunchError(_("The launch was meant for another tool"), _("The id_token's audience is not this "
                              "registration's client id."), status=401, code="wrong_aud") from exc
        except jwt.InvalidIssuerError as exc:
            raise LaunchError(_("The launch names the wrong LMS"), _("The id_token's issuer does not match."),
                              status=401, code="wrong_iss") from exc
        except jwt.InvalidSignatureError as exc:
            raise LaunchError(_("The launch token's signature is not valid"), _("The id_token was not signed by the "
                              "registered platform, or was changed after signing."), status=401,
                              code="bad_signature") from exc
        except jwt.InvalidTokenError as exc:
            raise LaunchError(_("The launch token could not be verified"), str(exc), status=401,
                              code="invalid_token") from exc
        azp = claims.get("azp")
        if azp is not None and azp != row.client_id:
            raise LaunchError(_("The launch was meant for another tool"), _("The id_token's azp is not this "
                              "registration's client id."), status=401, code="azp_mismatch")
        if isinstance(claims.get("aud"), list) and len(claims["aud"]) > 1 and azp is None:
            raise LaunchError(_("The launch was meant for another tool"), _("The id_token has several audiences "
                              "and no azp."), status=401, code="azp_missing")
        # Canvas and Moodle send string subs; a numeric sub is accepted as its string form.
        if isinstance(claims.get("sub"), int | float) and not isinstance(claims.get("sub"), bool):
            claims["sub"] = str(claims["sub"])
        self._jwt["body"] = claims
        return self

    # -- state and nonce --------------------------------------------------------------------------
    def validate_state(self):
        state = self._get_request_param("state")
        if not state:
            raise LaunchError(_("The launch is incomplete"), _("The launch has no state parameter."),
                              status=400, code="missing_state")
        data = login_state.read(state)
        if data is None:
            raise self._state_unknown()
        if data["r"] != self.registration_row.id:
            raise LaunchError(_("The launch does not match its login"), _("The state belongs to another registration."),
                              status=400, code="state_mismatch")
        if self._jwt["body"].get("nonce") != data["n"]:
            raise LaunchError(_("The launch does not match its login"), _("The id_token's nonce is not the one this "
                              "login issued (a replayed or swapped token)."), status=400, code="nonce_mismatch")
        digest = _browser_digest()
        if login_state.same_browser(data, digest):
            self.browser_bound = True
            self.browser_digest = digest
        elif self._get_request_param("lti_storage_target"):
            # The browser blocked our cookie; the page will check the state against platform storage.
            self.browser_bound = False
        else:
            raise LaunchError(_("Your browser did not keep the launch's cookie"),
                              _("The state cookie set at login is missing or different, so this launch cannot be "
                              "tied to your browser."),
                              _("Allow cookies for this site, or open the tool in a new window."), status=400,
                              code="state_cookie_mismatch")
        self.state = state
        self._state_data = data
        return self

    def consume(self):
        """The launch's first write, once everything else checked out: its nonce, which a replay finds taken. Kept
        a minute longer than a state lives, so no state outlives the record of its use. The same statement reads the
        registry stamp and, on PostgreSQL, the person, course and membership the launch records next."""
        body = self._jwt["body"]
        claimed, seen, self.launch_rows = storage.claim(
            nonce_key(self._state_data["n"]), current_app.config["LTI_STATE_TTL"] + 60, also=stamp(),
            relaxed_commit=True, read=launch_rows_read(self.registration_row.id, body))
        if not claimed:
            raise self._state_unknown()
        if not cache().is_current(self.registration_row.issuer, seen):
            # The registry changed since this process cached it (another worker, the CLI): check the token again
            # against the registration as it is now, before anything else is written.
            cache().reload(self.registration_row.issuer)
            self.validate_registration()
            self.validate_jwt_signature()
            if self._state_data["r"] != self.registration_row.id:
                raise LaunchError(_("The launch does not match its login"),
                                  _("The state belongs to another registration."), status=400, code="state_mismatch")
            self.validate_deployment()
            self.launch_rows = None  # read again by record_launch, for the registration as it is now
        return self

    @staticmethod
    def _state_unknown():
        return LaunchError(_("This launch was already used or has expired"),
                           _("The state of this launch is unknown: it was used before, it is more than a few "
                           "minutes old, or it did not start from this tool's login."),
                           _("Open the tool again from your course."), status=400, code="unknown_state")

    def validate_nonce(self):
        """validate_state compared the id_token's nonce with the one its signed state carries and claimed it: a
        replayed id_token finds its nonce taken, so nothing is left to check here."""
        return self

    def validate_deployment(self):
        deployment_id = self._jwt["body"].get(CLAIM + "deployment_id")
        if not deployment_id or not isinstance(deployment_id, str):
            raise LaunchError(_("The launch names no deployment"), _("The id_token has no deployment_id."),
                              status=400, code="missing_deployment")
        row = find_deployment_row(self.registration_row, deployment_id)
        if row is None and deployment_known(self.registration_row, deployment_id):
            # Disabled on the administration page: refused, and never re-created by auto_deployments.
            raise LaunchError(_("This deployment of the tool is disabled"),
                              f"Deployment {deployment_id!r} has been disabled by an administrator of the tool.",
                              "Ask your LMS administrator to enable it again on the tool's administration page.",
                              status=403, code="deployment_disabled")
        if row is None and self.registration_row.auto_deployments:
            row = self._record_new_deployment(deployment_id)
        if row is None:
            raise LaunchError(_("This deployment of the tool is not registered"),
                              f"Deployment {deployment_id!r} is not registered for this LMS.",
                              "An LMS administrator should add the deployment id: "
                              "`flask --app lti_tool lti add-deployment ...`.", status=403,
                              code="unknown_deployment")
        self.deployment_row = row
        return self

    def _record_new_deployment(self, deployment_id: str) -> DeploymentInfo:
        """A deployment id first seen in a launch this registration signed; two such launches at once both pass."""
        registration_id = self.registration_row.id
        db.session.execute(insert(Deployment).values(registration_id=registration_id, deployment_id=deployment_id)
                           .on_conflict_do_nothing(index_elements=["registration_id", "deployment_id"]))
        pk = db.session.scalar(select(Deployment.id).where(Deployment.registration_id == registration_id,
                                                           Deployment.deployment_id == deployment_id))
        note_registry_change(db.session)
        return DeploymentInfo(pk, deployment_id, True)

    def validate_message(self):
        body = self._jwt["body"]
        message_type = body.get(CLAIM + "message_type")
        if not message_type:
            raise LaunchError(_("The launch has no message type"), _("The id_token has no message_type claim."),
                              status=400, code="missing_message_type")
        if body.get(CLAIM + "version") is None:
            raise LaunchError(_("The launch has no LTI version"), _("The id_token has no version claim."),
                              status=400, code="missing_version")
        if body.get(CLAIM + "version") != "1.3.0":
            raise LaunchError(_("Unsupported LTI version"), f"Version {body.get(CLAIM + 'version')!r} is not "
                              "supported; this tool speaks LTI 1.3.0.", status=400, code="wrong_version")
        if message_type not in SUPPORTED_MESSAGES:
            raise LaunchError(_("This kind of launch is not supported"), f"Message type {message_type!r} is not "
                              "supported.", status=400, code="unsupported_message_type")
        if not body.get("sub") or not isinstance(body.get("sub"), str):
            raise LaunchError(_("The launch does not say who you are"), _("The id_token has no user (sub); "
                              "anonymous launches are not supported."), status=400, code="missing_sub")
        roles = body.get(CLAIM + "roles")
        if not isinstance(roles, list):
            raise LaunchError(_("The launch does not say your role"), _("The id_token has no roles claim."),
                              status=400, code="missing_roles")
        if not all(isinstance(r, str) for r in roles):
            # Role mapping and storage expect URIs; anything else is a malformed token, not a server error.
            raise LaunchError(_("The launch does not say your role"), _("The id_token's roles claim is not a list "
                              "of role names."), status=400, code="malformed_roles")
        try:
            super().validate_message()
        except LtiException as exc:
            raise LaunchError(_("The launch message is incomplete"), str(exc), status=400,
                              code="invalid_message") from exc
        return self

    def save_launch_data(self):
        """Kept only where something reads the claims again: the deep-linking picker, and a launch held until the
        page confirms its state from platform storage. A plain resource-link launch needs no extra write."""
        deep_linking = self._jwt["body"].get(CLAIM + "message_type") == "LtiDeepLinkingRequest"
        if deep_linking or not self.browser_bound:
            self._session_service.save_launch_data(self._launch_id, self._jwt["body"])
        return self

    @property
    def claims(self) -> dict:
        return self._jwt["body"]


def _public_key(jwk: dict):
    """The platform's key, parsed once per process (parsing it took longer than checking the signature). An RSA
    public key is its modulus and exponent (_find_key took only RSA keys): they key the cache, not a JSON dump of
    the whole JWK per launch."""
    return _parsed_rsa_key(jwk.get("n"), jwk.get("e"))


@lru_cache(maxsize=64)
def _parsed_rsa_key(n: str, e: str):
    return RSAAlgorithm.from_jwk({"kty": "RSA", "n": n, "e": e})


class _HttpOnDemand:
    """Stands in for the HTTP session pylti1p3 wants at construction: a launch whose platform keys are cached
    makes no outbound call, so it does not build a session either."""

    _session = None

    def __getattr__(self, name):
        if self._session is None:
            self._session = http_session()
        return getattr(self._session, name)


def _find_key(keyset, kid, alg):
    for key in (keyset or {}).get("keys", []):
        if key.get("kid") == kid and key.get("alg", "RS256") == alg and key.get("kty") == "RSA":
            return key
    return None


def pending_key(token: str) -> str:
    return f"pending-{token}"


def hold_for_client_check(launch: ToolMessageLaunch, state: str) -> str:
    """Keep a validated launch until the page confirms the state from platform storage."""
    token = secrets.token_urlsafe(24)
    storage.put(pending_key(token), {"launch_id": launch.get_launch_id(), "state": state,
                                     "registration_id": launch.registration_row.id,
                                     "deployment_id": launch.deployment_row.id},
                current_app.config["LTI_STATE_TTL"])
    return token


def release_after_client_check(token: str, state_seen: str):
    entry = storage.take(pending_key(token)) if token else None
    if entry is None or not state_seen or not secrets.compare_digest(entry["state"], state_seen):
        raise LaunchError(_("The launch could not be tied to your browser"),
                          _("The state kept by the LMS for this launch did not match."),
                          _("Open the tool again from your course, or open it in a new window."),
                          status=400, code="client_state_mismatch")
    claims = storage.get(entry["launch_id"])
    if claims is None:
        raise LaunchError(_("This launch has expired"), _("The launch waited too long to be confirmed."),
                          status=400, code="pending_expired")
    return entry, claims

