"""Who may do what: small pure rules, and the view decorators that use them."""
from functools import wraps

from flask import abort

from . import tool_session
from .lti.roles import MANAGER_SIDE


def is_manager_side(session) -> bool:
    return session is not None and session.role in MANAGER_SIDE


def is_tool_admin(session) -> bool:
    return session is not None and session.person.is_admin


def login_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if tool_session.current() is None:
            abort(401)
        return view(*args, **kwargs)

    return wrapped


def require(rule):
    """@require(is_manager_side): 401 without a session, 403 when the rule says no."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            session = tool_session.current()
            if session is None:
                abort(401)
            if not rule(session):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator
