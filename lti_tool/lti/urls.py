"""The tool's public URLs, as an LMS administrator needs them."""
from urllib.parse import urlsplit

from flask import url_for

NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
AGS_SCOPES = [
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
]
SCOPES = AGS_SCOPES + [NRPS_SCOPE]


def tool_urls() -> dict:
    """The tool's URLs. Dynamic registration needs a single-use link instead (`flask lti registration-link`),
    which no page shows."""
    return {
        "login": url_for("lti.login", _external=True),
        "launch": url_for("lti.launch", _external=True),
        "deep_linking": url_for("lti.launch", _external=True),
        "jwks": url_for("lti.jwks", _external=True),
        "canvas_config": url_for("lti.config_json", _external=True),
    }


def origin(url) -> str | None:
    """'https://lms.example.edu/a/b?c' -> 'https://lms.example.edu'; None for anything but an http(s) URL."""
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else None
