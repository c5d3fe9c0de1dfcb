"""Page helpers for pages inside the LMS frame: session-carrying URLs, CSRF tokens, notices after redirects
(none of which may rely on a cookie) and security headers."""
import hashlib
import hmac
from urllib.parse import urlencode

from flask import abort, current_app, g, has_request_context, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature
from sqlalchemy import event

from . import tool_session
from .models import ScoreOutbox
from .signing import timed_serializer
from .tasks import enqueue_after_commit
from .tool_session import PARAM

NOTICE_PARAM = "n"
CSRF_FIELD = "csrf_token"
# Endpoints that receive cross-site POSTs by design (the LMS posts them) or carry their own proof.
CSRF_EXEMPT = {"lti.login", "lti.launch", "lti.launch_complete", "lti.register", "static"}


def app_url(endpoint: str, **values) -> str:
    """url_for that carries the tool session token, so navigation never needs a cookie."""
    token = g.get("session_token")
    if token:
        values.setdefault(PARAM, token)
    return url_for(endpoint, **values)


# Not in a session token (base64url and dots) nor changed by URL quoting.
_ID_MARKER = "~id~"


def app_urls_by_id(endpoint: str, key: str, **values):
    """For many links that differ only in one id (`key`, a query value): id -> app_url(endpoint, key=id,
    **values), built once around a marker. A url_for per link was a twentieth of the technician dashboard's
    server time (130 "Record evidence" links)."""
    url = app_url(endpoint, **{**values, key: _ID_MARKER})
    if url.count(_ID_MARKER) != 1:  # never seen; then each link is built in full
        return lambda ident: app_url(endpoint, **{**values, key: ident})
    head, tail = url.split(_ID_MARKER)
    return lambda ident: f"{head}{int(ident)}{tail}"


def csrf_token() -> str:
    """Bound to the person, membership and launch of the session; the session token itself never sits in a
    cookie, so a cross-site form cannot know either."""
    session = tool_session.current()
    if session is None:
        return ""
    ident = f"{session.person.id}:{session.membership.id if session.membership else ''}:{session.launch_id or ''}"
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, ident.encode(), hashlib.sha256).hexdigest()[:40]


def check_csrf():
    if request.method not in ("POST", "PUT", "PATCH", "DELETE") or request.endpoint in CSRF_EXEMPT:
        return
    if request.endpoint and request.endpoint.startswith("dev."):
        return
    if request.headers.get("Authorization", "").startswith("Bearer "):
        return  # API calls: a header no cross-site form can set
    if tool_session.current() is None:
        return  # the view answers 401
    sent = request.form.get(CSRF_FIELD) or request.headers.get("X-CSRF-Token", "")
    if not hmac.compare_digest(sent, csrf_token()):
        abort(400, _("The form has expired or did not come from this tool. Reload the page and try again."))


def _notice_serializer():
    return timed_serializer("notice-v1")


def notice_token(message: str, category: str = "success") -> str:
    return _notice_serializer().dumps({"m": message, "c": category})


def redirect_with_notice(endpoint: str, message: str, category: str = "success", **values):
    """Post/redirect/get with a message shown on the next page (signed, so nobody can forge one)."""
    values[NOTICE_PARAM] = notice_token(message, category)
    return redirect(app_url(endpoint, **values), code=303)


def notices() -> list[dict]:
    raw = request.args.get(NOTICE_PARAM)
    if not raw:
        return []
    try:
        data = _notice_serializer().loads(raw, max_age=600)
    except BadSignature:
        return []
    return [{"message": data["m"], "category": data.get("c", "success")}]


# (label, endpoint, who sees it). Entries whose endpoint is not registered yet are left out.
NAV = [
    (_l("Home"), "home.index", "all"),
    (_l("My portfolio"), "technician.dashboard", "technician"),
    (_l("Record evidence"), "technician.new_evidence", "technician"),
    (_l("My evidence"), "technician.evidence_list", "technician"),
    (_l("Review queue"), "manager.queue", "reviewer"),
    (_l("Team matrix"), "manager.matrix", "manager"),
    (_l("Reports"), "reports.index", "reports"),
    (_l("Transcripts"), "transcripts.index", "all"),
    (_l("Administration"), "admin.index", "admin"),
]


def nav_items() -> list[dict]:
    from .permissions import can_review, is_manager_side, is_tool_admin

    session = tool_session.current()
    if session is None:
        return []
    allowed = {"all"}
    if session.role == "technician":
        allowed.add("technician")
    if is_manager_side(session):
        allowed.update(("manager", "reviewer"))
    elif can_review(session):
        allowed.add("reviewer")  # a technician named preceptor
    if is_tool_admin(session):
        allowed.add("admin")
    if is_manager_side(session) or is_tool_admin(session):
        allowed.add("reports")
    items = []
    for label, endpoint, who in NAV:
        if who in allowed and endpoint in current_app.view_functions:
            items.append({"label": str(label), "endpoint": endpoint, "url": app_url(endpoint),
                          "active": request.endpoint == endpoint})
    return items


# LTI protocol endpoints are framed by platforms that may not be known yet (a first launch from a new Canvas
# domain, Moodle's dynamic-registration dialog). They hold no actions worth clickjacking, only the protocol.
OPEN_FRAME_ENDPOINTS = {"lti.login", "lti.launch", "lti.launch_complete", "lti.register"}


@event.listens_for(ScoreOutbox, "after_insert")
def _score_queued(mapper, connection, target):
    # A request that queued a score asks a worker to deliver it once the request is committed, so the gradebook
    # usually updates within seconds; the sweep delivers whatever this misses (and scores queued outside requests).
    if has_request_context() and not g.get("scores_queued"):
        g.scores_queued = True
        enqueue_after_commit("deliver_scores")


def choose_language():
    """The language of this request, set before any text is written: the session person's pick, else their
    launch's locale (i18n.select_locale falls back to the browser's). A bad token is left for the view to refuse
    as it always does: the next tool_session.current() loads it again and raises."""
    if request.blueprint == "lti" or not tool_session.token_from_request():
        # The LTI endpoints (login, launch, registration) are not pages of a session, and the login must make
        # its first statement itself (it runs without a transaction: storage.autocommit).
        return
    try:
        session = tool_session.current()
    except tool_session.SessionError:
        g.pop("tool_session", None)
        return
    if session is not None:
        g.locale = session.person.preferred_language


def here_without_session() -> str:
    """This page's path and query without the session token and notice: where the language switch returns."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k not in (PARAM, NOTICE_PARAM)]
    return request.path + ("?" + urlencode(args) if args else "")


def register(app):
    app.before_request(choose_language)
    app.jinja_env.globals["here_without_session"] = here_without_session
    app.jinja_env.globals["app_url"] = app_url
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["browser_zone_wanted"] = browser_zone_wanted
    app.jinja_env.globals["notices"] = notices
    app.jinja_env.globals["nav_items"] = nav_items
    app.jinja_env.globals["current_session"] = tool_session.current
    app.jinja_env.globals["session_param"] = PARAM
    app.before_request(check_csrf)
    app.jinja_env.globals["tool_title"] = app.config["TOOL_TITLE"]

    @app.after_request
    def security_headers(response):
        if response.mimetype == "text/html":
            # Only the session's own registration (computed when the session was loaded, before the commit:
            # no query here). Pages without a session: 'self'.
            known = " ".join(["'self'", *g.get("csp_origins", ())])
            ancestors = "*" if request.endpoint in OPEN_FRAME_ENDPOINTS else known
            # Every script is a file of the tool's (no inline script, no nonce to make per response).
            response.headers["Content-Security-Policy"] = (
                "default-src 'self'; script-src 'self'; "
                "style-src 'self'; img-src 'self' data:; "
                f"form-action {known}; "
                f"frame-ancestors {ancestors}; base-uri 'self'; object-src 'none'"
            )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # Session tokens travel in URLs: never leak them to other sites through Referer.
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response


def viewer_zone():
    """The time zone pages are shown in (settings.viewer_time_zone), the tool's default without a session."""
    from . import formatting
    from .services import settings

    if not has_request_context():
        return formatting.zone(None)
    if "viewer_zone" not in g:
        session = tool_session.current()
        g.viewer_zone = settings.viewer_time_zone(session.person, session.registration) if session is not None \
            else formatting.zone(None)
    return g.viewer_zone


def browser_zone_wanted() -> bool:
    """Pages ask the browser for its time zone (js/time_zone.js) while nothing better is known."""
    from .services import settings

    session = tool_session.current()
    return session is not None and settings.wants_browser_zone(session.person, session.registration)
