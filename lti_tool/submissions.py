"""One-time submission keys: tapping "Save" twice on a slow connection records the evidence once.

Every form of the tool carries a fresh random key (`submission_field()`, next to the CSRF token). A view that
creates something is wrapped in `@once_per_submission`: the first request to post a key claims it (a row whose
primary key is the key) and, when it ends in a redirect, remembers where it sent the browser. A second request
with the same key waits for the first one's transaction (the database serialises the two inserts), then is sent
to that same page: it sees the first result and creates nothing. If the first request was refused, its claim
rolled back with everything else, so the second is handled normally.
"""
import re
import secrets
from datetime import timedelta
from functools import wraps
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import abort, current_app, g, redirect, request
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from . import tool_session
from .extensions import db
from .models import FormSubmission
from .models.base import utcnow

FIELD = "submission_key"
_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")
KEEP_FOR = timedelta(days=1)


def submission_field() -> Markup:
    """The hidden input every form carries (a Jinja global)."""
    return Markup(f'<input type="hidden" name="{FIELD}" value="{secrets.token_urlsafe(24)}">')


def _claim(key: str, person_id: int) -> FormSubmission | None:
    """None when this request is the first with the key; else the first request's row."""
    db.session.add(FormSubmission(key=key, person_id=person_id))
    try:
        db.session.flush()
        return None
    except IntegrityError:
        # Nothing else has been written by this request yet: start again from a clean transaction.
        db.session.rollback()
    return db.session.scalars(select(FormSubmission).where(FormSubmission.key == key)).first()


def _without_token(location: str) -> str:
    parts = urlsplit(location)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != tool_session.PARAM]
    return urlunsplit(("", "", parts.path, urlencode(query), parts.fragment))


def _with_token(location: str) -> str:
    token = g.get("session_token")
    if not token:
        return location
    parts = urlsplit(location)
    query = parse_qsl(parts.query, keep_blank_values=True) + [(tool_session.PARAM, token)]
    return urlunsplit(("", "", parts.path, urlencode(query), parts.fragment))


def _remember(key: str, response) -> None:
    if 300 <= response.status_code < 400 and response.location:
        db.session.execute(update(FormSubmission).where(FormSubmission.key == key)
                           .values(result_url=_without_token(response.location)[:2000]))
    else:
        # Not a finished submission (a form shown again, e.g. "add a PDSA cycle"): the key stays usable.
        db.session.execute(delete(FormSubmission).where(FormSubmission.key == key))


def once_per_submission(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        key = request.form.get(FIELD) if request.method == "POST" else None
        session = tool_session.current()
        if not key or session is None:
            return view(*args, **kwargs)  # a client without keys, or no session (the view answers 401)
        if not _KEY.fullmatch(key):
            abort(400, _("The form is damaged. Reload the page and try again."))
        first = _claim(key, session.person.id)
        if first is not None:
            if first.person_id != session.person.id:
                abort(400, _("The form is damaged. Reload the page and try again."))
            if not first.result_url:
                abort(409, _("This form was already sent and is still being handled. Wait a moment, then reload "
                           "the page to see the result."))
            return redirect(_with_token(first.result_url), code=303)
        response = current_app.make_response(view(*args, **kwargs))
        _remember(key, response)
        return response

    return wrapped


def register(app):
    app.jinja_env.globals["submission_field"] = submission_field
    app.jinja_env.globals["scoped_url"] = tool_session.scoped_url


def purge_old(now=None) -> int:
    """Forget keys older than a day (a form left open longer is simply handled as a new submission)."""
    cutoff = (now or utcnow()) - KEEP_FOR
    return db.session.execute(delete(FormSubmission).where(FormSubmission.created_at < cutoff)).rowcount
