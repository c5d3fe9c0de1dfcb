"""The fixed LTI endpoints: login, launch, JWKS, Canvas JSON configuration, dynamic registration."""
import secrets
from functools import lru_cache
from urllib.parse import urlencode

from flask import Blueprint, after_this_request, current_app, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import tool_session
from ..extensions import db
from ..lti import keys, login_limit, registration_links
from ..lti.canvas_config import canvas_configuration
from ..lti.dynamic_registration import RegistrationError, ToolDynamicRegistration
from ..lti.errors import LaunchError
from ..lti.launch import (
    ToolMessageLaunch,
    ToolOIDCLogin,
    hold_for_client_check,
    lti_request,
    release_after_client_check,
)
from ..lti.roles import MANAGER_SIDE
from ..lti.urls import origin
from ..models import Deployment, Registration
from ..services import roster
from ..services.launches import parse_target, record_launch, remember_origins
from ..tasks import enqueue_after_commit

bp = Blueprint("lti", __name__, url_prefix="/lti")
MESSAGE_TYPE = "https://purl.imsglobal.org/spec/lti/claim/message_type"
CLAIM_CUSTOM = "https://purl.imsglobal.org/spec/lti/claim/custom"


def launch_url() -> str:
    return _url("lti.launch", external=True)


@bp.route("/login", methods=["GET", "POST"])
def login():
    config = current_app.config
    if not login_limit.allow(request.remote_addr or "", config["LTI_LOGIN_LIMIT"], config["LTI_LOGIN_WINDOW"]):
        raise LaunchError(_("Too many sign-ins from your network"),
                          _("The tool received more launches from your address in the last minute than it accepts."),
                          _("Wait a minute, then open the tool again from your course."), status=429,
                          code="too_many_logins")
    oidc = ToolOIDCLogin(lti_request())
    auth_url, state, nonce = oidc.build_redirect(launch_url())
    storage_target = request.values.get("lti_storage_target")
    if storage_target:
        # Platform storage (postMessage) in case the browser drops our cookie; the page falls back to a plain
        # redirect when the platform does not answer lti.capabilities.
        response = current_app.make_response(render_template(
            "lti/login_storage.html", auth_url=auth_url, state=state, nonce=nonce, target=storage_target,
            platform_origin=origin(oidc.registration_row.auth_login_url) or "*",
        ))
    else:
        response = bare_redirect(auth_url, 302)
    return oidc.apply_cookies(response)


@bp.route("/launch", methods=["POST"])
def launch():
    message = ToolMessageLaunch(lti_request())
    message.validate()
    if not message.browser_bound:
        token = hold_for_client_check(message, message.state)
        return render_template(
            "lti/launch_storage.html", pending=token, state=message.state,
            target=request.values.get("lti_storage_target"),
            platform_origin=origin(message.registration_row.auth_login_url) or "*",
        )
    return _finish(message.registration_row, message.deployment_row, message.claims, message.get_launch_id(),
                   message.launch_rows, message.browser_digest)


@bp.route("/launch/complete", methods=["POST"])
def launch_complete():
    entry, claims = release_after_client_check(request.form.get("pending", ""), request.form.get("state", ""))
    registration = db.session.get(Registration, entry["registration_id"])
    deployment = db.session.get(Deployment, entry["deployment_id"])
    return _finish(registration, deployment, claims, entry["launch_id"])


def _finish(registration, deployment, claims, launch_id, launch_rows=None, bound=None):
    person, course, membership = record_launch(registration, deployment, claims,
                                               current_app.config["LTI_LAUNCH_TOUCH_SECONDS"], launch_rows)
    remember_origins(registration, claims)
    # The token is bound to a browser cookie (kept where the browser allows it in the LMS frame). The login set
    # or refreshed it moments ago; a browser that did not keep it (the platform-storage path) gets a new one.
    # `bound`: the digest of that cookie, when the launch already computed it.
    if bound is None:
        browser = tool_session.browser_cookie()
        if browser is None:
            browser = secrets.token_urlsafe(24)
            after_this_request(lambda response: tool_session.set_browser_cookie(response, browser) or response)
        bound = tool_session.browser_digest(browser)
    token = tool_session.issue(person, membership, launch_id, bound=bound)
    if claims.get(MESSAGE_TYPE) == "LtiDeepLinkingRequest":
        if membership is None or membership.role not in MANAGER_SIDE:
            raise LaunchError(_("Only course managers can add this tool's content"),
                              _("Adding content to the course is for instructors and course designers."), status=403,
                              code="deep_link_role")
        return redirect(url_for("deep_linking.picker", **{tool_session.PARAM: token}), code=303)
    values = {tool_session.PARAM: token, "landed": "1"}
    target = (claims.get(CLAIM_CUSTOM) or {}).get("target")
    if target and parse_target(target):
        values["to"] = target  # a deep-linked item: /app/ forwards to it
    if course is not None and membership is not None and membership.role in MANAGER_SIDE:
        # A worker refreshes a roster older than an hour once the launch is committed: a slow or failing LMS never
        # costs the manager the launch; a failure shows on the home page and the team matrix.
        if course.nrps_url and roster.is_stale(course):
            enqueue_after_commit("sync_roster", course.id)
    # 303: the browser follows with GET, so a refresh never re-posts the id_token.
    return bare_redirect(_url("home.index") + "?" + urlencode(values), 303)


def _url(endpoint: str, external: bool = False) -> str:
    """url_for(endpoint) without arguments, built once per address the tool is reached at (url_for builds a URL
    adapter on every call; the login and the launch ask for one each)."""
    return _url_at(endpoint, external, request.scheme, request.host, request.script_root)


@lru_cache(maxsize=64)  # host names come from the request: the cache stays small
def _url_at(endpoint: str, external: bool, scheme: str, host: str, script_root: str) -> str:
    return url_for(endpoint, _external=external)


def bare_redirect(location: str, code: int):
    """A redirect without werkzeug's "Redirecting..." HTML page, which no browser shows: the login and the launch
    answer every launch with one, and a response without a document needs no Content-Security-Policy."""
    return current_app.response_class(status=code, headers={"Location": location}, content_type="text/plain")


@bp.route("/jwks")
def jwks():
    # A fresh install has no key until something signs; platforms read the key set before that (Moodle right
    # after registering), so make sure there is one to publish.
    keys.signing_key()
    response = jsonify(keys.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.route("/config.json")
def config_json():
    return jsonify(canvas_configuration())


REGISTRATION_LINK_REFUSED = (
    "This registration link is not valid: it was already used, it has expired, or it was never issued. "
    "Dynamic registration only works with a single-use link from the tool's operator; ask them for a new one "
    "(`flask --app lti_tool lti registration-link`) and paste it into the LMS as the tool's registration URL.")


@bp.route("/register", methods=["GET", "POST"])
def register():
    token = request.values.get(registration_links.PARAM)
    # Checked before anything else: without a valid link the tool makes no outbound call and writes nothing.
    link = registration_links.usable(token)
    if link is None:
        return _registration_refused()
    dynreg = ToolDynamicRegistration(
        request.values.get("openid_configuration", ""), request.values.get("registration_token")
    )
    try:
        if request.method == "GET":
            platform = dynreg.read_platform()
            return render_template("lti/register_confirm.html", platform=platform,
                                   openid_configuration=dynreg.openid_configuration_url,
                                   registration_token=dynreg.registration_token or "", link=token)
        registration = dynreg.register_and_store(link.name)
    except RegistrationError as exc:
        return render_template("lti/register_failed.html", reason=str(exc)), exc.status
    # Claimed only now, so no write lock is held during the calls to the LMS; of two registrations racing with
    # one link, one claims it and the other is refused (and rolled back).
    link = registration_links.claim(token)
    if link is None:
        return _registration_refused()
    link.registration_id = registration.id
    return render_template("lti/register_done.html", registration=registration)


def _registration_refused():
    return render_template("lti/register_failed.html", reason=REGISTRATION_LINK_REFUSED), 403
