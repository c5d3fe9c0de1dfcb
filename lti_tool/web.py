"""Page helpers: session-carrying URLs and security headers for pages inside the LMS frame."""
from urllib.parse import urlsplit

from flask import g, url_for
from sqlalchemy import select

from .extensions import db
from .models import Registration
from .tool_session import PARAM


def app_url(endpoint: str, **values) -> str:
    """url_for that carries the tool session token, so navigation never needs a cookie."""
    token = g.get("session_token")
    if token:
        values.setdefault(PARAM, token)
    return url_for(endpoint, **values)


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def frame_ancestors() -> list[str]:
    """The origins of every registered platform: only they may frame the tool."""
    rows = db.session.execute(select(Registration.issuer, Registration.auth_login_url)).all()
    origins = {o for row in rows for o in map(_origin, row) if o}
    return sorted(origins)


def register(app):
    app.jinja_env.globals["app_url"] = app_url
    app.jinja_env.globals["tool_title"] = app.config["TOOL_TITLE"]

    @app.after_request
    def security_headers(response):
        if response.mimetype == "text/html":
            ancestors = " ".join(["'self'", *frame_ancestors()])
            nonce = g.get("csp_nonce", "")
            response.headers["Content-Security-Policy"] = (
                "default-src 'self'; "
                f"script-src 'self' 'nonce-{nonce}'; "
                "style-src 'self'; img-src 'self' data:; "
                f"form-action {ancestors}; "
                f"frame-ancestors {ancestors}; base-uri 'self'; object-src 'none'"
            )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # Session tokens travel in URLs: never leak them to other sites through Referer.
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response
