"""The landing page, and the page people reach after a launch, which forwards them to a deep-linked item or to
where they work (technicians to their portfolio, course managers to the review queue)."""
from urllib.parse import parse_qsl, urlencode, urlsplit

from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from .. import formatting, i18n, tool_session
from ..errors import error_response
from ..extensions import db
from ..lti.roles import ROLE_LABELS, TECHNICIAN
from ..lti.urls import tool_urls
from ..models.base import utcnow
from ..permissions import is_manager_side, login_required, workplace
from ..services import notices, status
from ..services.actors import Actor
from ..services.launches import parse_target
from ..services.matrix import EXPIRING_CHOICES
from ..web import NOTICE_PARAM, app_url, notice_token

bp = Blueprint("home", __name__)

# Where a deep-linked item opens, by who opens it: (endpoint, query parameter that receives the item's id).
TECHNICIAN_TARGETS = {
    "portfolio": ("technician.dashboard", None),
    "matrix": ("technician.dashboard", None),
    "competency": ("technician.new_evidence", "competency"),
    "department": ("technician.dashboard", "department"),
    "pathway": ("technician.dashboard", "pathway"),
}
MANAGER_TARGETS = {
    "portfolio": ("manager.matrix", None),
    "matrix": ("manager.matrix", None),
    "competency": ("manager.queue", "competency"),
    "department": ("manager.matrix", "department"),
    "pathway": ("manager.matrix", None),
}


def target_url(session, target: dict | None, **carry) -> str | None:
    if not target:
        return None
    table = MANAGER_TARGETS if is_manager_side(session) else TECHNICIAN_TARGETS
    endpoint, param = table.get(target["type"], (None, None))
    if endpoint not in current_app.view_functions:
        return None
    values = {param: target["id"]} if param and target.get("id") is not None else {}
    return app_url(endpoint, **values, **carry)


@bp.route("/")
def landing():
    return render_template("landing.html", urls=tool_urls())


@bp.route("/app/")
@login_required
def index():
    """Where a launch lands: a deep-linked item, else the page where the person works, else Home."""
    session = tool_session.current()
    # A notice of the launch (the roster warning) travels with the forward.
    carry = {NOTICE_PARAM: request.args[NOTICE_PARAM]} if request.args.get(NOTICE_PARAM) else {}
    forward = target_url(session, parse_target(request.args.get("to")), **carry)
    # Straight from a launch (not the Home tab, which lists what needs attention): where the person works.
    if not forward and request.args.get("landed") and workplace(session) in current_app.view_functions:
        forward = app_url(workplace(session), **carry)
    if forward:
        return redirect(forward, code=303)
    role_label = _(ROLE_LABELS[session.role]) if session.role in ROLE_LABELS else "—"
    glance, attention = _overview(session)
    links = _matrix_links(session) if any(n.kind == notices.TEAM_SUMMARY for n in attention) else []
    return render_template("home.html", session=session, role_label=role_label, glance=glance,
                           attention=attention, matrix_links=links)


def _matrix_links(session) -> list[tuple[str, str]]:
    """Where the team summary's counts lead: the team matrix filtered by each kind (for the due ones, the
    matrix's shortest "expiring within" choice that covers the horizon, when one does)."""
    _zone, _today, horizon = notices.tenant_clock(session.registration, utcnow())
    links = [(_("Required overdue"), app_url("manager.matrix", status=status.OVERDUE)),
             (_("Expired"), app_url("manager.matrix", status=status.EXPIRED))]
    days = next((choice for choice in EXPIRING_CHOICES if choice >= horizon), None)
    if days:
        links.append((_("Expiring within %(num)d days", num=days), app_url("manager.matrix", expiring=days)))
    return links


@bp.route("/app/language", methods=["POST"])
@login_required
def language():
    """The switch in the header: the person's pick is kept (it wins over the launch's locale from now on) and
    the page they were on opens again in it."""
    session = tool_session.current()
    chosen = i18n.supported(request.form.get("language"))
    if chosen is None or request.form.get("language") != chosen:
        return error_response(400, _("The request could not be understood"), _("Choose English or Spanish."))
    session.person.language = chosen
    back = urlsplit(request.form.get("next") or "")
    # Only a path of this tool (never another site): the form names the page it was on.
    path = back.path if back.path.startswith("/") and not back.path.startswith(("//", "/\\")) \
        and not back.netloc and not back.scheme else url_for("home.index")
    args = [(k, v) for k, v in parse_qsl(back.query) if k not in (tool_session.PARAM, NOTICE_PARAM)]
    with i18n.in_language(language=chosen):
        notice = notice_token(_("The tool now shows in English.") if chosen == "en"
                              else _("The tool now shows in Spanish."))
    args += [(tool_session.PARAM, g.get("session_token", "")), (NOTICE_PARAM, notice)]
    query = urlencode(args)
    return redirect(f"{path}?{query}", code=303)


def _overview(session) -> tuple[list[str], list]:
    """(one or two plain sentences on what is waiting for this person, the notices the reminder e-mails would
    say to them: the same service writes both)."""
    if session.course is None or session.membership is None:
        return [], []
    actor = Actor.from_session(session)
    now = utcnow()
    if is_manager_side(session):
        # One reading of the reviewer's scope and queue for the sentence and the notices.
        waiting, attention = notices.reviewer_overview(actor, now)
        return [ngettext("%(num)d review request waiting in this course.",
                         "%(num)d review requests waiting in this course.", waiting)], attention
    # A technician named preceptor also reviews; anyone else has only the reviewer's notices, if any.
    attention = notices.reviewer_notices(actor, now)
    if session.role != TECHNICIAN:
        return [], attention
    counts = status.summary(status.statuses_for(session.person, session.course))
    lines = [_("%(held)d competencies held, %(waiting)d awaiting review.",
               held=counts[status.ACHIEVED] + counts[status.DUE_FOR_REVALIDATION],
               waiting=counts[status.AWAITING_REVIEW])]
    attention_due = counts[status.DUE_FOR_REVALIDATION] + counts[status.EXPIRED]
    if attention_due:
        lines.append(ngettext("%(num)d needs revalidation soon or now.",
                              "%(num)d need revalidation soon or now.", attention_due))
    return lines, notices.technician_notices(session.person, session.course, now) + attention


@bp.post("/time-zone")
def browser_time_zone():
    """The browser's time zone (js/time_zone.js), kept for a person whose LMS sends none; the LMS's always wins."""
    session = tool_session.current()
    if session is None:
        return jsonify(error="Open the tool from your course to continue."), 401
    name = formatting.known_zone(request.form.get("time_zone"))
    if name is None:
        return jsonify(error="Not a known time zone."), 400
    person = session.person
    if person.time_zone_source != "lms" and person.time_zone != name:
        person.time_zone, person.time_zone_source = name, "browser"
        db.session.commit()
    return "", 204
