"""The landing page and the page people see after a launch."""
from flask import Blueprint, render_template

from .. import tool_session
from ..lti.roles import ROLE_LABELS
from ..lti.urls import tool_urls
from ..permissions import login_required

bp = Blueprint("home", __name__)


@bp.route("/")
def landing():
    return render_template("landing.html", urls=tool_urls())


@bp.route("/app/")
@login_required
def index():
    session = tool_session.current()
    return render_template("home.html", session=session, role_label=ROLE_LABELS.get(session.role, "—"))
