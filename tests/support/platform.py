"""A test LTI platform: signs real RS256 id_tokens and serves its JWKS, OpenID configuration and a dynamic
registration endpoint over real HTTP, from a thread in the test process."""
import json
import secrets
import threading
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto.jwk import JWK
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"

# Role sets as the platforms send them (Canvas and Moodle 4.x).
CANVAS_ROLES = {
    "teacher": [LIS + "membership#Instructor", LIS + "institution/person#Instructor", LIS + "system/person#User"],
    "ta": [LIS + "membership/Instructor#TeachingAssistant", LIS + "membership#Instructor",
           LIS + "institution/person#Student", LIS + "system/person#User"],
    "designer": [LIS + "membership#ContentDeveloper", LIS + "institution/person#Instructor",
                 LIS + "system/person#User"],
    "observer": [LIS + "membership#Mentor", LIS + "system/person#User"],
    "student": [LIS + "membership#Learner", LIS + "institution/person#Student", LIS + "system/person#User"],
    # A student in this course who teaches elsewhere in the institution.
    "student_instructor_elsewhere": [LIS + "membership#Learner", LIS + "institution/person#Instructor",
                                     LIS + "institution/person#Student", LIS + "system/person#User"],
    "account_admin": [LIS + "institution/person#Administrator", LIS + "system/person#User"],
}
MOODLE_ROLES = {
    "editingteacher": [LIS + "membership#Instructor"],
    # Moodle sends non-editing teachers as learners.
    "teacher": [LIS + "membership#Learner"],
    "student": [LIS + "membership#Learner"],
    "siteadmin": [LIS + "institution/person#Administrator", LIS + "membership#Instructor",
                  LIS + "system/person#Administrator"],
}


def new_rsa_key(kid: str | None = None):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    kid = kid or uuid.uuid4().hex[:12]
    jwk = json.loads(JWK.from_pem(pem.encode()).export_public())
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return {"kid": kid, "pem": pem, "jwk": jwk}


class TestPlatform:
    __test__ = False

    def __init__(self, issuer_path="/platform"):
        self.key = new_rsa_key("platform-key-1")
        self.published = [self.key]
        self.client_id = "test-client-" + secrets.token_hex(3)
        self.deployment_id = "1:test-deployment"
        self.jwks_requests = 0
        self.registration_requests = []
        self.registration_response = None
        self.registration_token = "reg-token-" + secrets.token_hex(4)
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.base = f"http://127.0.0.1:{self._server.server_port}"
        self.issuer = self.base + issuer_path
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self):
        self._server.shutdown()

    # -- HTTP --------------------------------------------------------------------------------
    @Request.application
    def _wsgi(self, request: Request):
        if request.path == "/jwks":
            self.jwks_requests += 1
            return self._json({"keys": [k["jwk"] for k in self.published]})
        if request.path == "/.well-known/openid-configuration":
            return self._json(self.openid_configuration())
        if request.path == "/register" and request.method == "POST":
            if request.headers.get("Authorization") != "Bearer " + self.registration_token:
                return self._json({"error": "invalid_token"}, 401)
            body = request.get_json()
            self.registration_requests.append(body)
            answer = self.registration_response or {
                "client_id": "dyn-" + secrets.token_hex(4),
                "https://purl.imsglobal.org/spec/lti-tool-configuration": {
                    **body["https://purl.imsglobal.org/spec/lti-tool-configuration"], "deployment_id": "7"},
            }
            return self._json({**body, **answer})
        return Response("not found", 404)

    @staticmethod
    def _json(data, status=200):
        return Response(json.dumps(data), status, mimetype="application/json")

    def openid_configuration(self):
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.base + "/auth",
            "token_endpoint": self.base + "/token",
            "jwks_uri": self.base + "/jwks",
            "registration_endpoint": self.base + "/register",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "scopes_supported": ["openid"],
            "response_types_supported": ["id_token"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "iss", "name", "email"],
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "moodle", "version": "4.5",
                "messages_supported": [{"type": "LtiResourceLinkRequest"}, {"type": "LtiDeepLinkingRequest"}],
            },
        }

    # -- registration in the tool's database -------------------------------------------------------
    def register_in(self, db, **overrides):
        from lti_tool.models import Deployment, Registration

        row = Registration(name="Test platform", issuer=self.issuer, client_id=self.client_id,
                           auth_login_url=self.base + "/auth", auth_token_url=self.base + "/token",
                           jwks_url=self.base + "/jwks", **overrides)
        db.session.add(row)
        db.session.flush()
        db.session.add(Deployment(registration_id=row.id, deployment_id=self.deployment_id))
        db.session.commit()
        return row

    # -- tokens ---------------------------------------------------------------------------------
    def claims(self, nonce, *, sub="user-1", roles=None, context_id="course-1", **extra):
        now = int(time.time())
        claims = {
            "iss": self.issuer, "aud": self.client_id, "azp": self.client_id, "sub": sub,
            "iat": now, "exp": now + 300, "nonce": nonce,
            "name": "Tess Nguyen", "given_name": "Tess", "family_name": "Nguyen", "email": "tess@example.org",
            CLAIM + "message_type": "LtiResourceLinkRequest", CLAIM + "version": "1.3.0",
            CLAIM + "deployment_id": self.deployment_id,
            CLAIM + "target_link_uri": "", CLAIM + "resource_link": {"id": "link-1"},
            CLAIM + "roles": roles if roles is not None else CANVAS_ROLES["student"],
            CLAIM + "context": {"id": context_id, "label": "RX101", "title": "IV Room Cross-Training"},
        }
        claims.update(extra)
        return claims

    def sign(self, claims, key=None, alg="RS256", headers=None):
        key = key or self.key
        hdrs = {"kid": key["kid"]}
        hdrs.update(headers or {})
        return jwt.encode(claims, key["pem"], algorithm=alg, headers=hdrs)

    # -- flows ----------------------------------------------------------------------------------
    def login(self, http, tool_base, method="GET", **params):
        """Third-party-initiated login; returns (response, auth params the tool redirected us with)."""
        data = {"iss": self.issuer, "login_hint": "hint-1", "target_link_uri": tool_base + "/lti/launch",
                "client_id": self.client_id, "lti_deployment_id": self.deployment_id}
        data.update(params)
        data = {k: v for k, v in data.items() if v is not None}
        if method == "GET":
            resp = http.get(tool_base + "/lti/login", params=data, allow_redirects=False)
        else:
            resp = http.post(tool_base + "/lti/login", data=data, allow_redirects=False)
        auth = {}
        if resp.status_code == 302:
            auth = {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["Location"]).query).items()}
        return resp, auth

    def launch(self, http, tool_base, *, claims=None, token=None, state=None, extra_form=None, **claim_kw):
        """Login then launch. `claims` is a function (claims dict -> claims dict) to tamper with them."""
        resp, auth = self.login(http, tool_base)
        assert resp.status_code == 302, resp.text
        body = self.claims(auth["nonce"], **claim_kw)
        body[CLAIM + "target_link_uri"] = tool_base + "/lti/launch"
        if claims:
            body = claims(body)
        form = {"id_token": token if token is not None else self.sign(body),
                "state": auth["state"] if state is None else state}
        form.update(extra_form or {})
        form = {k: v for k, v in form.items() if v is not None}
        return http.post(auth["redirect_uri"], data=form, allow_redirects=False), auth, body
