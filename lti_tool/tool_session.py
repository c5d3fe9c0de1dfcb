"""The tool's own session after a launch: a short-lived signed token carried in links and forms.

Browsers that block third-party cookies (Safari, Chrome's tracking protection, Canvas's mobile apps) would lose
a cookie-based session inside the LMS frame, so the token travels in the URL (`lt`), in a hidden form field,
or in an `Authorization: Bearer` header for API calls. It is re-issued on every request (sliding expiry).
"""
from dataclasses import dataclass

from flask import current_app, g, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import joinedload

from .extensions import db
from .models import Course, Membership, Person, Registration
from .services.actors import Actor
from .services.launches import frame_origins

PARAM = "lt"
SALT = "tool-session-v1"


@dataclass
class ToolSession:
    person: Person
    registration: Registration
    course: Course | None
    membership: Membership | None
    launch_id: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor(person=self.person, course=self.course, membership=self.membership)

    @property
    def role(self) -> str | None:
        return self.actor.role


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def issue(person: Person, membership: Membership | None, launch_id: str | None = None) -> str:
    payload = {"p": person.id, "r": person.registration_id, "m": membership.id if membership else None}
    if launch_id:
        payload["l"] = launch_id
    return _serializer().dumps(payload)


class SessionError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def token_from_request() -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[len("Bearer "):].strip()
    return request.values.get(PARAM)


def load(token: str) -> ToolSession:
    try:
        data = _serializer().loads(token, max_age=current_app.config["SESSION_TOKEN_MAX_AGE"])
    except SignatureExpired as exc:
        raise SessionError("expired") from exc
    except BadSignature as exc:
        raise SessionError("invalid") from exc
    # Each with what every page reads next (registration, course) in the same query.
    person = db.session.get(Person, data.get("p"), options=[joinedload(Person.registration)])
    if person is None or person.registration_id != data.get("r"):
        raise SessionError("invalid")
    membership = db.session.get(Membership, data["m"], options=[joinedload(Membership.course)]) \
        if data.get("m") else None
    if membership is not None and membership.person_id != person.id:
        raise SessionError("invalid")
    return ToolSession(
        person=person,
        registration=person.registration,
        course=membership.course if membership else None,
        membership=membership,
        launch_id=data.get("l"),
    )


def current() -> ToolSession | None:
    """The session of this request, loaded once; None when the request carries no token."""
    if "tool_session" not in g:
        token = token_from_request()
        g.tool_session = None
        if token:
            g.tool_session = load(token)
            g.session_token = issue(g.tool_session.person, g.tool_session.membership, g.tool_session.launch_id)
            # Read now, while the request's transaction is open: the CSP header is built after the commit.
            g.csp_origins = frame_origins(g.tool_session.registration)
    return g.tool_session
