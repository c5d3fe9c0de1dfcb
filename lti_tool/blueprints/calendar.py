"""The personal calendar feed (issue 15): the page where a person makes or revokes their secret feed URL, and the
feed itself, which calendar apps fetch without a session (the token in the URL is the only key)."""
from flask import Blueprint, Response, abort, render_template, request, url_for
from flask_babel import gettext as _

from .. import tool_session
from ..permissions import login_required
from ..services import calendar_feed
from ..services.actors import Actor
from ..web import redirect_with_notice

bp = Blueprint("calendar", __name__)


@bp.route("/notifications/calendar", methods=["GET", "POST"])
@login_required
def manage():
    actor = Actor.from_session(tool_session.current())
    url = None
    if request.method == "POST":
        if request.form.get("action") == "revoke":
            calendar_feed.revoke(actor)
            return redirect_with_notice("calendar.manage", _("Your calendar link no longer works."))
        token = calendar_feed.issue(actor)
        # Shown on this response only: the database keeps its hash, no page can show it again.
        url = url_for("calendar.feed", token=token, _external=True)
    return render_template("notifications/calendar.html", url=url,
                           active=actor.person.calendar_token_hash is not None)


@bp.route("/calendar/<token>.ics")
def feed(token: str):
    person = calendar_feed.person_for(token)
    if person is None:
        abort(404)
    response = Response(calendar_feed.feed(person), mimetype="text/calendar")
    response.headers["Content-Disposition"] = 'inline; filename="due-dates.ics"'
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
