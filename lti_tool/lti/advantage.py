"""Calls back to the LMS (AGS scores and line items, NRPS memberships).

Access tokens are cached in the shared store until shortly before they expire (every worker reuses them); every
call has a timeout; the NRPS/AGS `Link: <...>; rel="next"` header is followed with its URL untouched.
"""
import json

from pylti1p3.exception import LtiServiceException
from pylti1p3.service_connector import ServiceConnector

from . import keys, storage
from .claims import fitting_member
from .http import OutboundError, http_session
from .tool_conf import ToolRegistration

SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
MEMBERSHIP_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


class PlatformError(Exception):
    """A call to the LMS failed; `message` is fit to show a manager."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status


class DbServiceConnector(ServiceConnector):
    def __init__(self, registration_row):
        # The platform fetches our JWKS while we wait for its token: the key must already be committed.
        keys.ensure_published()
        super().__init__(ToolRegistration(registration_row), http_session())
        self.registration_row = registration_row

    def _cache_key(self, scope_key):
        return f"svc-token-{self.registration_row.id}-{scope_key}"

    def _get_cached_access_token(self, scope_key):
        return storage.get(self._cache_key(scope_key))

    def _cache_access_token(self, scope_key, access_token, expires_in):
        # Keep a margin so a token is never used in its last seconds.
        ttl = int(expires_in or 3600) - 30
        if ttl > 0:
            storage.put(self._cache_key(scope_key), access_token, ttl)

    def call(self, scopes, url, *, method="GET", body=None, content_type="application/json", accept="application/json"):
        try:
            token = self.get_access_token(scopes)
        except LtiServiceException as exc:
            raise PlatformError("The LMS refused the tool's request for an access token "
                                f"(HTTP {getattr(exc, 'response', None) and exc.response.status_code}).") from exc
        except OutboundError as exc:
            raise PlatformError(str(exc)) from exc
        except Exception as exc:
            raise PlatformError(f"The LMS could not be reached for an access token ({type(exc).__name__}).") from exc
        headers = {"Authorization": "Bearer " + token, "Accept": accept}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body)
        try:
            resp = self._requests_session.request(method, url, data=data, headers=headers)
        except OutboundError as exc:
            raise PlatformError(str(exc)) from exc
        except Exception as exc:
            raise PlatformError(f"The LMS could not be reached ({type(exc).__name__}).") from exc
        if not resp.ok:
            raise PlatformError(f"The LMS answered HTTP {resp.status_code}.", resp.status_code)
        return resp


def _json_object(resp, what: str) -> dict:
    """The answer as a JSON object; anything else (a platform can answer anything) is a PlatformError."""
    if not resp.content:
        return {}
    try:
        body = resp.json()
    except ValueError as exc:
        raise PlatformError(f"The LMS's {what} answer is not JSON.") from exc
    if not isinstance(body, dict):
        raise PlatformError(f"The LMS's {what} answer is not a JSON object.")
    return body


def post_score(connector: DbServiceConnector, lineitem_url: str, score: dict):
    base, _, query = lineitem_url.partition("?")
    url = base.rstrip("/") + "/scores" + ("?" + query if query else "")
    connector.call([SCORE_SCOPE], url, method="POST", body=score, content_type=SCORE_TYPE)


def create_lineitem(connector: DbServiceConnector, lineitems_url: str, lineitem: dict) -> dict:
    resp = connector.call([LINEITEM_SCOPE], lineitems_url, method="POST", body=lineitem,
                          content_type=LINEITEM_TYPE, accept=LINEITEM_TYPE)
    return _json_object(resp, "line item")


def membership_pages(connector: DbServiceConnector, url: str, max_pages: int = 1000):
    """Yield each page's `members` list, following rel="next" links."""
    seen = set()
    while url and url not in seen and len(seen) < max_pages:
        seen.add(url)
        resp = connector.call([NRPS_SCOPE], url, accept=MEMBERSHIP_TYPE)
        body = _json_object(resp, "roster")
        members = body.get("members", [])
        # Members the tool cannot store (no usable user_id) are left out; names are cut to their columns.
        members = [m for m in map(fitting_member, members) if m is not None] if isinstance(members, list) else []
        context = body.get("context")
        yield members, context if isinstance(context, dict) else {}
        url = resp.links.get("next", {}).get("url")
