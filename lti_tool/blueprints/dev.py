"""/dev/: the development LMS (development settings only; never registered in production)."""
from urllib.parse import urlencode

from flask import Blueprint, abort, jsonify, render_template, request, url_for
from flask_babel import gettext as _

from ..lti import dev_platform

bp = Blueprint("dev", __name__, url_prefix="/dev")


def issuer() -> str:
    return request.host_url.rstrip("/") + "/dev"


def _ensure():
    return dev_platform.ensure_registered(
        issuer(), url_for("dev.authorize", _external=True), url_for("dev.token", _external=True),
        url_for("dev.jwks", _external=True),
    )


@bp.route("/")
def index():
    registration = _ensure()
    launches = {}
    for key in dev_platform.PERSONAS:
        params = {
            "iss": registration.issuer, "login_hint": key, "target_link_uri": url_for("lti.launch", _external=True),
            "client_id": registration.client_id, "lti_deployment_id": dev_platform.DEPLOYMENT_ID,
            "lti_message_hint": key,
        }
        launches[key] = url_for("lti.login") + "?" + urlencode(params)
    return render_template("dev/index.html", personas=dev_platform.PERSONAS, launches=launches,
                           course=dev_platform.COURSE, registration=registration,
                           storage_mode=request.args.get("storage") == "1")


@bp.route("/authorize")
def authorize():
    registration = _ensure()
    args = request.args
    if args.get("client_id") != registration.client_id:
        abort(400, _("unknown client_id"))
    if args.get("redirect_uri") != url_for("lti.launch", _external=True):
        abort(400, _("redirect_uri is not registered"))
    persona = args.get("login_hint")
    if persona not in dev_platform.PERSONAS or not args.get("nonce") or not args.get("state"):
        abort(400, _("bad login_hint, nonce or state"))
    token = dev_platform.id_token(registration.issuer, persona, args["nonce"], args["redirect_uri"])
    fields = {"id_token": token, "state": args["state"]}
    if args.get("lti_storage_target"):
        fields["lti_storage_target"] = args["lti_storage_target"]
    return render_template("dev/autopost.html", action=args["redirect_uri"], fields=fields)


@bp.route("/token", methods=["POST"])
def token():
    return jsonify({"error": "unsupported_grant_type"}), 400


@bp.route("/jwks")
def jwks():
    return jsonify(dev_platform.jwks())
