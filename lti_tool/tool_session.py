"""The tool's own session after a launch: a short-lived signed token carried in links and forms.

Browsers that block third-party cookies (Safari, Chrome's tracking protection, Canvas's mobile apps) would lose
a cookie-based session inside the LMS frame, so the token travels in the URL (`lt`), in a hidden form field,
or in an `Authorization: Bearer` header for API calls. It is re-issued on every request (sliding expiry, 8 h idle)
but never outlives its launch by more than SESSION_ABSOLUTE_MAX_AGE (24 h): then the person launches again.

A token travels in URLs, so it can be copied. Where the browser keeps a cookie in the LMS frame (a partitioned
SameSite=None cookie works in most), the launch sets one (`BROWSER_COOKIE`, a random value) and the token carries
a digest of it. Once a request has shown that cookie, every later token requires it: the same link pasted into
another browser gets the "open the tool from your course" page. Where no cookie survives (Safari, some mobile
apps), the token alone still works, within the limits above. A link that opens in a new window (where the frame's
partitioned cookie is not sent) carries a token scoped to that one address (`scoped_url`), not the session's.
"""
import functools
import hashlib
import hmac
import time
from dataclasses import dataclass

from flask import current_app, g, request, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from .extensions import db
from .models import Course, Membership, Person, Registration
from .services import preceptors
from .services.actors import Actor
from .services.launches import frame_origins
from .signing import timed_serializer

PARAM = "lt"
SALT = "tool-session-v1"
BROWSER_COOKIE = "ptp_browser"
# A new-window link's scoped token: long enough to read the file, short enough that a copied link soon dies.
SCOPED_MAX_AGE = 3600


@dataclass
class ToolSession:
    person: Person
    registration: Registration
    course: Course | None
    membership: Membership | None
    launch_id: str | None = None
    launched_at: int | None = None
    # The digest of the launch's browser cookie, and whether the browser has shown it since.
    bound: str | None = None
    cookie_seen: bool = False
    # A new window's token, good for one address only.
    scoped: bool = False
    # Named preceptor for some competency of the course (the navigation's review queue), read with the session.
    names_preceptor: bool = False

    @property
    def actor(self) -> Actor:
        return Actor(person=self.person, course=self.course, membership=self.membership)

    @property
    def role(self) -> str | None:
        return self.actor.role


def _serializer() -> URLSafeTimedSerializer:
    return timed_serializer(SALT)


def browser_digest(cookie_value: str) -> str:
    """What a token keeps of the browser cookie: a keyed digest, so a token seen in a log reveals no cookie."""
    digest = _keyed_sha256(current_app.config["SECRET_KEY"]).copy()
    digest.update(b"browser:" + cookie_value.encode())
    return digest.hexdigest()[:32]


@functools.lru_cache(maxsize=8)
def _keyed_sha256(secret: str):
    """HMAC-SHA256 keyed with the secret, before any message: copied per digest (the key is prepared once; every
    login and launch makes one or two)."""
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def issue(person: Person, membership: Membership | None, launch_id: str | None = None, *,
          bound: str | None = None, cookie_seen: bool = False, launched_at: int | None = None) -> str:
    """A session token. `bound`: browser_digest() of the launch's browser cookie; `cookie_seen`: the browser has
    shown that cookie since (from then on it must); `launched_at`: the launch time the absolute lifetime counts
    from (now, for a new launch)."""
    payload = {"p": person.id, "r": person.registration_id, "m": membership.id if membership else None,
               "a": launched_at or int(time.time())}
    if launch_id:
        payload["l"] = launch_id
    if bound:
        payload["b"] = bound
        if cookie_seen:
            payload["k"] = 1
    return _serializer().dumps(payload)


def set_browser_cookie(response, value: str) -> None:
    """The launch's browser cookie. Over HTTPS it must be SameSite=None; Secure; Partitioned to be kept inside
    the LMS frame; over plain HTTP (development) browsers keep it only first-party."""
    secure = request.is_secure
    response.set_cookie(BROWSER_COOKIE, value, max_age=current_app.config["SESSION_ABSOLUTE_MAX_AGE"], path="/",
                        secure=secure, httponly=True, samesite="None" if secure else "Lax", partitioned=secure)


def browser_cookie() -> str | None:
    value = request.cookies.get(BROWSER_COOKIE)
    return value if value and len(value) <= 100 else None


def scoped_url(endpoint: str, **values) -> str:
    """A URL for a new window: its token opens this one address for SCOPED_MAX_AGE seconds, without the browser
    cookie (a partitioned cookie stays with the LMS frame)."""
    session = current()
    if session is None:
        return url_for(endpoint, **values)
    payload = {"p": session.person.id, "r": session.person.registration_id,
               "m": session.membership.id if session.membership else None, "e": endpoint,
               "v": {k: str(v) for k, v in values.items()}, "a": session.launched_at}
    return url_for(endpoint, **values, **{PARAM: _serializer().dumps(payload)})


class SessionError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def token_from_request() -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[len("Bearer "):].strip()
    return request.values.get(PARAM)


def _check_lifetime(data: dict, issued_at) -> None:
    launched = data.get("a")
    if not isinstance(launched, int) or time.time() - launched > current_app.config["SESSION_ABSOLUTE_MAX_AGE"]:
        raise SessionError("expired")
    if "e" in data:  # a new window's token: this one address, for a short while
        view_args = {k: str(v) for k, v in (request.view_args or {}).items()}
        if request.endpoint != data["e"] or view_args != data.get("v"):
            raise SessionError("invalid")
        if time.time() - issued_at.timestamp() > SCOPED_MAX_AGE:
            raise SessionError("expired")


def _check_browser(data: dict) -> bool:
    """Whether the token's browser has shown the launch's cookie (now or before). Refuses a token bound to
    another browser's cookie, and one whose browser has shown the cookie before but not now (a copied link)."""
    bound = data.get("b")
    if not isinstance(bound, str):
        return False
    cookie = browser_cookie()
    if cookie is not None:
        if not hmac.compare_digest(browser_digest(cookie), bound):
            raise SessionError("elsewhere")
        return True
    if data.get("k"):
        raise SessionError("elsewhere")
    return False


def load(token: str) -> ToolSession:
    try:
        data, issued_at = _serializer().loads(token, max_age=current_app.config["SESSION_TOKEN_MAX_AGE"],
                                              return_timestamp=True)
    except SignatureExpired as exc:
        raise SessionError("expired") from exc
    except BadSignature as exc:
        raise SessionError("invalid") from exc
    if not isinstance(data, dict):
        raise SessionError("invalid")
    _check_lifetime(data, issued_at)
    cookie_seen = _check_browser(data)
    # One query: the membership with its person, course and registration (what every page reads next).
    membership, names_preceptor = None, False
    if data.get("m"):
        membership, names_preceptor = db.session.execute(
            _session_statement(), {"membership_id": data["m"]}).first() or (None, False)
    if membership is not None and membership.person_id != data.get("p"):
        raise SessionError("invalid")
    person = membership.person if membership is not None else \
        db.session.get(Person, data.get("p"), options=[joinedload(Person.registration)])
    if person is None or person.registration_id != data.get("r"):
        raise SessionError("invalid")
    return ToolSession(
        person=person,
        registration=person.registration,
        course=membership.course if membership else None,
        membership=membership,
        launch_id=data.get("l"),
        launched_at=data["a"],
        bound=data.get("b") if isinstance(data.get("b"), str) else None,
        cookie_seen=cookie_seen,
        scoped="e" in data,
        names_preceptor=bool(names_preceptor),
    )


@functools.cache
def _session_statement():
    """Every page's first query, built once per process (building it and working out its cache key cost about as
    much as running it)."""
    return (select(Membership, preceptors.named_any_clause(Membership.person_id, Membership.course_id))
            .where(Membership.id == bindparam("membership_id"))
            .options(joinedload(Membership.course), joinedload(Membership.person).joinedload(Person.registration)))


def current() -> ToolSession | None:
    """The session of this request, loaded once; None when the request carries no token."""
    if "tool_session" not in g:
        token = token_from_request()
        g.tool_session = None
        if token:
            g.tool_session = session = load(token)
            # A new window's scoped token is not widened into a session token for the pages it links to.
            g.session_token = None if session.scoped else issue(
                session.person, session.membership, session.launch_id, bound=session.bound,
                cookie_seen=session.cookie_seen, launched_at=session.launched_at)
            # Read now, while the request's transaction is open: the CSP header is built after the commit.
            g.csp_origins = frame_origins(session.registration)
    return g.tool_session
