"""The OIDC login's state: signed by the tool, not stored.

A login is the one LTI endpoint anyone on the internet can call without proving anything, so it writes nothing:
the state it hands the platform carries the registration, the nonce and a keyed digest of the browser's cookie
(`tool_session.BROWSER_COOKIE`, set or refreshed by the login), signed with the tool's secret and valid for
LTI_STATE_TTL seconds. The launch checks the signature and age, that the id_token's nonce is the state's, and that
the browser posting it shows the same cookie (or, where the LMS frame drops cookies, that the platform's storage
holds the state: lti/launch_storage.html). Only then does it write: the nonce, once (`storage.claim`), so a state
or id_token can be used a single time.

One cookie per browser instead of one per login (pylti1p3's `lti1p3-<state>`): nothing piles up in the Cookie
header however often someone launches, and two tabs launching at once never overwrite each other's state.
"""
import hmac

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..signing import timed_serializer

SALT = "lti-login-state-v1"
PREFIX = "s1."  # a version mark, so a later format can tell old states apart


def _serializer() -> URLSafeTimedSerializer:
    return timed_serializer(SALT)


def issue(registration_id: int, nonce: str, browser: str) -> str:
    """`browser`: tool_session.browser_digest() of the cookie the login response sets."""
    return PREFIX + _serializer().dumps({"r": registration_id, "n": nonce, "b": browser})


def read(state: str) -> dict | None:
    """The state's contents when this tool signed it less than LTI_STATE_TTL seconds ago, else None."""
    if not isinstance(state, str) or not state.startswith(PREFIX) or len(state) > 1000:
        return None
    try:
        data = _serializer().loads(state[len(PREFIX):], max_age=current_app.config["LTI_STATE_TTL"])
    except BadSignature:  # also SignatureExpired
        return None
    if not (isinstance(data, dict) and isinstance(data.get("r"), int) and isinstance(data.get("n"), str)
            and isinstance(data.get("b"), str)):
        return None
    return data


def same_browser(data: dict, digest: str | None) -> bool:
    return digest is not None and hmac.compare_digest(data["b"], digest)
