"""Who may do what: small pure rules, and the view decorators that use them."""
from functools import wraps

from flask import abort

from . import tool_session
from .lti.roles import MANAGER_SIDE, TECHNICIAN


def is_manager_side(session) -> bool:
    return session is not None and session.role in MANAGER_SIDE


def is_course_manager(session) -> bool:
    """A manager-side member (MANAGER_SIDE) of the course the session acts in: the manager's pages."""
    return (session is not None and session.course is not None and session.membership is not None
            and session.membership.active and session.membership.role in MANAGER_SIDE)


def can_review(session) -> bool:
    """The review queue and review pages: the course's managers, and technicians it names preceptors."""
    return is_course_manager(session) or (
        session is not None and session.course is not None and session.membership is not None
        and session.membership.active and session.names_preceptor)


def is_tool_admin(session) -> bool:
    return session is not None and session.person.is_admin


def is_technician(session) -> bool:
    """An active technician membership in the session's course (the technician's own pages)."""
    return session is not None and session.course is not None and session.role == TECHNICIAN


def workplace(session) -> str | None:
    """The page where this person works, which a launch lands on: a technician's portfolio, a course manager's
    review queue. None for everyone else (observers, administrators outside a course): they land on Home."""
    if is_technician(session):
        return "technician.dashboard"
    if is_course_manager(session):
        return "manager.queue"
    return None


def can_choose_course_frameworks(session) -> bool:
    """The course-frameworks page: a manager-side member of the session's course, or a tool administrator."""
    return is_tool_admin(session) or (session is not None and session.course is not None
                                      and session.role in MANAGER_SIDE)


def can_see_reports(session) -> bool:
    """Reports of the session's course: its managers, and the tenant's administrator launched from it."""
    return is_course_manager(session) or (is_tool_admin(session) and session.course is not None)


def can_read_audit_log(session) -> bool:
    """The audit log: a course's managers (that course) and the tenant's administrator (the whole tenant)."""
    return is_course_manager(session) or is_tool_admin(session)


def login_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if tool_session.current() is None:
            abort(401)
        return view(*args, **kwargs)

    return wrapped


def check(rule, message: str | None = None):
    """401 without a session, 403 (with `message` when given) when the rule says no; else the session."""
    session = tool_session.current()
    if session is None:
        abort(401)
    if not rule(session):
        if message:
            abort(403, message)
        abort(403)
    return session


def require(rule, message: str | None = None):
    """@require(is_manager_side): 401 without a session, 403 when the rule says no."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            check(rule, message)
            return view(*args, **kwargs)

        return wrapped

    return decorator
