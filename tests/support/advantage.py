"""The test platform extended with LTI Advantage services over real HTTP: an OAuth2 token endpoint
(client_credentials with a JWT assertion signed by the tool, checked against the tool's real JWKS), AGS line
items and scores (scopes, content types, 409 for a timestamp that is not newer) and NRPS with several pages."""
import json
import secrets
import time
from datetime import datetime

import jwt
import requests
from jwcrypto.jwk import JWK
from werkzeug.wrappers import Request, Response

from tests.support.platform import LIS, TestPlatform

SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


class AdvantagePlatform(TestPlatform):
    def __init__(self, tool_jwks_url: str):
        super().__init__(issuer_path="/advantage")
        self.tool_jwks_url = tool_jwks_url
        self.reset()

    def reset(self):
        self.tokens = {}            # access token -> scopes
        self.token_requests = 0
        self.lineitems = {}         # id -> lineitem dict
        self.scores = {}            # lineitem id -> list of score bodies accepted
        self.last_timestamp = {}    # (lineitem id, userId) -> datetime
        self.fail_scores = 0        # answer 503 to this many score posts
        self.score_posts = 0
        self.members = []           # NRPS members
        self.page_size = 2
        self.nrps_requests = 0

    # -- helpers for tests -------------------------------------------------------------------------
    def add_lineitem(self, label="Competency", maximum=4) -> str:
        lid = str(len(self.lineitems) + 1)
        self.lineitems[lid] = {"id": f"{self.base}/lineitems/{lid}", "label": label, "scoreMaximum": maximum}
        self.scores[lid] = []
        return self.lineitems[lid]["id"]

    @property
    def nrps_url(self):
        return self.base + "/memberships/Course-1"   # mixed case on purpose: the URL must be kept as sent

    def member(self, sub, role="student", status="Active", name=None):
        roles = {"student": [LIS + "membership#Learner"], "teacher": [LIS + "membership#Instructor"]}[role]
        self.members.append({"user_id": sub, "roles": roles, "status": status, "name": name or f"Member {sub}",
                             "given_name": "Member", "family_name": sub, "email": f"{sub}@example.org"})

    # -- HTTP -------------------------------------------------------------------------------------
    @Request.application
    def _wsgi(self, request: Request):
        handled = self._advantage(request)
        if handled is not None:
            return handled
        return TestPlatform._wsgi.__wrapped__(self, request)

    def _auth(self, request, scope):
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return scope in self.tokens.get(token, ())

    def _advantage(self, request: Request):
        path = request.path
        if path == "/token" and request.method == "POST":
            return self._token(request)
        if path.startswith("/lineitems/") and path.endswith("/scores") and request.method == "POST":
            lid = path.split("/")[2]
            if not self._auth(request, SCORE_SCOPE):
                return self._json({"error": "forbidden"}, 403)
            if request.mimetype != "application/vnd.ims.lis.v1.score+json":
                return self._json({"error": "unsupported media type"}, 415)
            self.score_posts += 1
            if self.fail_scores > 0:
                self.fail_scores -= 1
                return self._json({"error": "unavailable"}, 503)
            body = json.loads(request.get_data())
            ts = datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
            key = (lid, body["userId"])
            if key in self.last_timestamp and ts <= self.last_timestamp[key]:
                return self._json({"error": "timestamp not newer"}, 409)
            self.last_timestamp[key] = ts
            self.scores[lid].append(body)
            return Response("", 204)
        if path == "/lineitems" and request.method == "POST":
            if not self._auth(request, LINEITEM_SCOPE):
                return self._json({"error": "forbidden"}, 403)
            body = json.loads(request.get_data())
            lid = str(len(self.lineitems) + 1)
            self.lineitems[lid] = {**body, "id": f"{self.base}/lineitems/{lid}"}
            self.scores[lid] = []
            return self._json(self.lineitems[lid], 201)
        if path == "/memberships/Course-1" and request.method == "GET":
            self.nrps_requests += 1
            if not self._auth(request, NRPS_SCOPE):
                return self._json({"error": "forbidden"}, 403)
            page = int(request.args.get("page", "1"))
            start = (page - 1) * self.page_size
            chunk = self.members[start:start + self.page_size]
            resp = self._json({"id": self.nrps_url, "context": {"id": "course-1"}, "members": chunk})
            resp.mimetype = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
            if start + self.page_size < len(self.members):
                resp.headers["Link"] = f'<{self.nrps_url}?page={page + 1}>; rel="next"'
            return resp
        return None

    def _token(self, request):
        self.token_requests += 1
        form = request.form
        if form.get("grant_type") != "client_credentials" or form.get("client_assertion_type") != \
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return self._json({"error": "unsupported_grant_type"}, 400)
        assertion = form.get("client_assertion", "")
        try:
            kid = jwt.get_unverified_header(assertion)["kid"]
            keys = requests.get(self.tool_jwks_url, timeout=5).json()["keys"]
            key = next(k for k in keys if k["kid"] == kid)
            pem = JWK.from_json(json.dumps(key)).export_to_pem()
            claims = jwt.decode(assertion, pem, algorithms=["RS256"], audience=self.base + "/token")
        except Exception as exc:  # noqa: BLE001 - any failure is an invalid client to the platform
            return self._json({"error": "invalid_client", "detail": str(exc)}, 401)
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
            return self._json({"error": "invalid_client"}, 401)
        token = secrets.token_hex(16)
        scopes = set(form.get("scope", "").split())
        self.tokens[token] = scopes
        return self._json({"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                           "scope": " ".join(sorted(scopes)), "iat": int(time.time())})
