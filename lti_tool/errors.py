"""One error format: a readable page inside the LMS frame, or JSON for API and JSON clients."""
from flask import jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .extensions import db
from .lti.errors import LaunchError
from .services import DomainError
from .tool_session import SessionError

MESSAGES = {
    400: (_l("The request could not be understood"), _l("Something in the request was missing or malformed.")),
    401: (_l("Please open the tool from your course"),
          _l("Your session with the tool has ended or was never started. Open the tool again from your course in "
          "Canvas or Moodle.")),
    403: (_l("You do not have access to this page"), _l("Your role in this course does not allow this.")),
    404: (_l("Not found"), _l("There is nothing at this address.")),
    405: (_l("Not allowed"), _l("This address does not accept that kind of request.")),
    413: (_l("Too large"), _l("What was sent is larger than the tool accepts. Nothing was saved.")),
    500: (_l("Something went wrong on our side"), _l("The error has been logged. Please try again in a moment.")),
}


def wants_json() -> bool:
    if request.path.startswith("/api/") or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def error_response(status: int, title: str, detail: str, advice: str | None = None, code: str | None = None,
                   fields=None):
    if wants_json():
        body = {"error": {"status": status, "code": code or str(status), "title": str(title), "message": str(detail)}}
        if fields:
            body["error"]["fields"] = fields
        return jsonify(body), status
    return render_template("errors/error.html", status=status, title=title, detail=detail, advice=advice), status


def register(app):
    @app.errorhandler(LaunchError)
    def launch_error(exc: LaunchError):
        app.logger.info("LTI launch refused (%s): %s", exc.code, exc.detail)
        return error_response(exc.status, exc.title, exc.detail, exc.advice, exc.code)

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        # Refused: whatever was flushed goes (the request boundary would roll back anyway), and the error page
        # renders from a usable session even after a refused INSERT.
        db.session.rollback()
        title = MESSAGES.get(exc.status, MESSAGES[400])[0]
        return error_response(exc.status, title, exc.message, code=exc.code, fields=exc.fields)

    @app.errorhandler(SessionError)
    def session_error(exc: SessionError):
        title, detail = MESSAGES[401]
        if exc.reason == "expired":
            title = _("Your session has timed out")
        return error_response(401, title, detail, code=f"session_{exc.reason}")

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge):
        # The body was refused unread. Forget it, or everything the error page asks of the request (the session
        # token, the CSRF check) parses it again, raises again, and the visitor gets a bare 500 instead.
        req = request._get_current_object()
        req.__dict__.update(form=ImmutableMultiDict(), files=ImmutableMultiDict())
        req.__dict__.pop("values", None)
        title, detail = MESSAGES[413]
        limit = app.config.get("MAX_CONTENT_LENGTH")
        if limit:
            detail = _("What was sent is larger than the tool accepts (%(mb)d MB at most). Nothing was saved.",
                       mb=limit // (1024 * 1024))
        return error_response(413, title, detail, code="413")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        title, detail = MESSAGES.get(exc.code, (exc.name, exc.description))
        if exc.description and exc.description != type(exc).description:
            detail = exc.description  # a view's own words (abort(400, "...")) beat the generic ones
        return error_response(exc.code, title, detail, code=str(exc.code))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        app.logger.exception("Unhandled error")
        title, detail = MESSAGES[500]
        return error_response(500, title, detail, code="server_error")
