"""The deep-linking picker: a manager chooses what to place in the LMS course (LtiDeepLinkingRequest)."""
from flask import Blueprint, abort, render_template, request, url_for
from flask_babel import gettext as _

from .. import tool_session
from ..lti import storage
from ..lti.deep_linking import response_jwt
from ..permissions import is_manager_side, require
from ..services import DomainError, placements

bp = Blueprint("deep_linking", __name__, url_prefix="/deep-link")
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
DEPLOYMENT = "https://purl.imsglobal.org/spec/lti/claim/deployment_id"


def _request_claims():
    session = tool_session.current()
    claims = storage.get(session.launch_id) if session.launch_id else None
    if not claims or DL_SETTINGS not in claims:
        raise DomainError(_("This page opens only from the LMS's \"add content\" dialog. Start again from your "
                            "course."),
                          status=400, code="no_deep_link_request")
    if session.course is None:
        raise DomainError(_("Content can only be placed inside a course."), status=400, code="no_course")
    return session, claims, claims[DL_SETTINGS]


@bp.route("/", methods=["GET", "POST"])
@require(is_manager_side)
def picker():
    session, claims, settings = _request_claims()
    accept_types = settings.get("accept_types") or []
    multiple = bool(settings.get("accept_multiple", True))
    lineitems = bool(settings.get("accept_lineitem", True))
    offered = placements.targets(session.actor, session.course)
    errors = []
    if request.method == "POST":
        chosen = request.form.getlist("target")
        if not multiple and len(chosen) > 1:
            errors.append("This LMS accepts one item at a time: choose one.")
        if not chosen:
            errors.append("Choose at least one item to add.")
        graded = set(request.form.getlist("graded")) if lineitems else set()
        items = []
        for target in chosen:
            described = placements.describe(target, offered)
            if described is None:
                abort(400, _("That item is not offered in this course."))
            item = {"title": described["title"], "url": url_for("lti.launch", _external=True), "target": target}
            if target in graded and described["gradable"]:
                item["lineitem"] = {"label": described["title"], "scoreMaximum": described["maximum"],
                                    "resourceId": target, "tag": "competency"}
            items.append(item)
        if not errors:
            token = response_jwt(session.registration, claims[DEPLOYMENT], settings, items)
            return render_template("deep_linking/return.html", action=settings["deep_link_return_url"], jwt=token,
                                   count=len(items))
    return render_template("deep_linking/picker.html", offered=offered, multiple=multiple, lineitems=lineitems,
                           accepts_links="ltiResourceLink" in accept_types, errors=errors,
                           title=settings.get("title"))
