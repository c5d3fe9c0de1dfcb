"""A test LTI platform: signs real RS256 id_tokens and serves its JWKS, OpenID configuration and a dynamic
registration endpoint over real HTTP, from a thread in the test process.

For browser tests it also serves a course page (/page) that frames the tool and answers the LTI client-side
storage postMessages like Canvas, an /auth endpoint that signs the id_token and auto-posts it into the frame,
and a /token endpoint that checks the tool's client assertion against the tool's published JWKS."""
import html
import json
import secrets
import threading
import time
import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import requests
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
    # "key": the loaded key object; signing with the PEM would parse and check the key again every time (~40 ms).
    return {"kid": kid, "pem": pem, "jwk": jwk, "key": key}


class TestPlatform:
    __test__ = False

    def __init__(self, issuer_path="/platform", host="127.0.0.1"):
        self.key = new_rsa_key("platform-key-1")
        self.published = [self.key]
        self.client_id = "test-client-" + secrets.token_hex(3)
        self.deployment_id = "1:test-deployment"
        self.jwks_requests = 0
        # Seconds the JWKS endpoint waits before answering (a slow LMS).
        self.jwks_delay = 0
        self.registration_requests = []
        self.config_requests = 0
        self.registration_response = None
        self.registration_token = "reg-token-" + secrets.token_hex(4)
        # The tool's JWKS URL, for /token to check client assertions against (set by the test).
        self.tool_jwks_url = None
        self.token_requests = []
        self.auth_requests = []
        self._server = make_server(host, 0, self._wsgi, threaded=True)
        self.base = f"http://{host}:{self._server.server_port}"
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
            if self.jwks_delay:
                time.sleep(self.jwks_delay)
            return self._json({"keys": [k["jwk"] for k in self.published]})
        if request.path == "/.well-known/openid-configuration":
            self.config_requests += 1
            return self._json(self.openid_configuration())
        if request.path == "/auth":
            return self._auth(request)
        if request.path == "/page":
            return self._page(request)
        if request.path == "/forwarder":
            return self._forwarder()
        if request.path == "/token" and request.method == "POST":
            return self._token(request)
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

    def _auth(self, request: Request):
        """The OIDC authorization endpoint, as a browser meets it: sign the id_token, auto-post it to the tool.
        The course page passes the storage target through lti_message_hint (opaque to the tool, as in Canvas)."""
        args = request.args
        self.auth_requests.append(args.to_dict())
        if args.get("client_id") != self.client_id or not args.get("nonce") or not args.get("state") \
                or not args.get("redirect_uri", "").endswith("/lti/launch"):
            return Response("bad authorization request", 400)
        body = self.claims(args["nonce"], sub=args.get("login_hint") or "user-1")
        body[CLAIM + "target_link_uri"] = args["redirect_uri"]
        fields = {"id_token": self.sign(body), "state": args["state"],
                  "lti_storage_target": args.get("lti_message_hint") or "_parent"}
        inputs = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in fields.items())
        page = (f'<!doctype html><html><body><form method="post" action="{html.escape(args["redirect_uri"])}">'
                f'{inputs}<button>Continue</button></form><script>document.forms[0].submit()</script>'
                '</body></html>')
        return Response(page, mimetype="text/html")

    # The storage half of the course page: answers lti.put_data / lti.get_data, keeping data per tool origin.
    # `record` is where the page notes each message for the test to read.
    _STORAGE_JS = """
var store = {};
function answerStorage(event, data) {
  var reply = null;
  if (data.subject === "lti.put_data") {
    store[event.origin + " " + data.key] = data.value;
    reply = {subject: "lti.put_data.response", message_id: data.message_id, key: data.key, value: data.value};
  } else if (data.subject === "lti.get_data") {
    var k = event.origin + " " + data.key;
    reply = k in store
      ? {subject: "lti.get_data.response", message_id: data.message_id, key: data.key, value: store[k]}
      : {subject: "lti.get_data.response", message_id: data.message_id, key: data.key,
         error: {code: "bad_request", message: "no such key"}};
  }
  if (reply) event.source.postMessage(reply, event.origin);
}
function listen(record, answerCapabilities, answerData) {
  window.addEventListener("message", function (event) {
    var data = event.data || {};
    if (typeof data.subject !== "string" || data.subject.indexOf("lti.") !== 0) return;
    if (data.subject === "lti.frameResize") return;
    record.push({subject: data.subject, key: data.key || null, origin: event.origin, at: window.name || "page"});
    if (data.subject === "lti.capabilities" && answerCapabilities) {
      event.source.postMessage({subject: "lti.capabilities.response", message_id: data.message_id,
                                supported_messages: answerCapabilities}, event.origin);
    } else if (answerData) {
      answerStorage(event, data);
    }
  });
}
"""

    def _page(self, request: Request):
        """A course page that frames the tool and starts the login there with lti_storage_target.

        ?storage=1: the page itself answers lti.capabilities, lti.put_data and lti.get_data (target _parent);
        ?storage=canvas: like Canvas, the page answers lti.capabilities and names a sibling frame,
        post_message_forwarding, that answers the storage messages;
        ?storage=0: nobody answers (like Canvas's mobile apps)."""
        tool = request.args["tool"].rstrip("/")
        mode = request.args.get("storage", "0")
        target = "post_message_forwarding" if mode == "canvas" else "_parent"
        params = {"iss": self.issuer, "login_hint": request.args.get("user", "browser-user"),
                  "target_link_uri": tool + "/lti/launch", "client_id": self.client_id,
                  "lti_deployment_id": self.deployment_id, "lti_storage_target": target,
                  "lti_message_hint": target}
        src = html.escape(tool + "/lti/login?" + urlencode(params))
        storage_subjects = [{"subject": "lti.capabilities"}, {"subject": "lti.put_data"}, {"subject": "lti.get_data"}]
        if mode == "canvas":
            for m in storage_subjects[1:]:
                m["frame"] = "post_message_forwarding"
        capabilities = json.dumps(storage_subjects) if mode in ("1", "canvas") else "null"
        answer_data = "true" if mode == "1" else "false"
        forwarder = ('<iframe name="post_message_forwarding" src="/forwarder" title="forwarder" hidden></iframe>'
                     if mode == "canvas" else "")
        page = f"""<!doctype html><html><head><title>Test LMS course</title></head><body>
<h1>IV Room Cross-Training</h1>
{forwarder}
<iframe name="tool" id="tool" title="Tool" src="{src}" width="1000" height="700"></iframe>
<script>
window.ltiMessages = [];
{self._STORAGE_JS}
listen(window.ltiMessages, {capabilities}, {answer_data});
</script></body></html>"""
        return Response(page, mimetype="text/html")

    def _forwarder(self):
        page = f"""<!doctype html><html><body><script>
{self._STORAGE_JS}
listen({{push: function (m) {{ window.parent.ltiMessages.push(m); }}}}, null, true);
</script></body></html>"""
        return Response(page, mimetype="text/html")

    def _token(self, request: Request):
        """OAuth2 client_credentials with a private_key_jwt assertion, checked against the tool's JWKS."""
        assertion = request.form.get("client_assertion", "")
        try:
            kid = jwt.get_unverified_header(assertion).get("kid")
            keys = requests.get(self.tool_jwks_url, timeout=5).json()["keys"]
            jwk = next(k for k in keys if k.get("kid") == kid)
            claims = jwt.decode(assertion, jwt.PyJWK(jwk).key, algorithms=["RS256"],
                                audience=self.base + "/token")
        except Exception as exc:  # noqa: BLE001 - any failure is the client's fault here
            self.token_requests.append({"ok": False, "error": repr(exc)})
            return self._json({"error": "invalid_client"}, 401)
        self.token_requests.append({"ok": True, "kid": kid, "sub": claims.get("sub")})
        return self._json({"access_token": "at-" + secrets.token_hex(8), "token_type": "Bearer",
                           "expires_in": 3600, "scope": request.form.get("scope", "")})

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
    def claims(self, nonce, *, sub="user-1", roles=None, context_id="course-1", client_id=None, deployment_id=None,
               **extra):
        now = int(time.time())
        client_id = client_id or self.client_id
        claims = {
            "iss": self.issuer, "aud": client_id, "azp": client_id, "sub": sub,
            "iat": now, "exp": now + 300, "nonce": nonce,
            "name": "Tess Nguyen", "given_name": "Tess", "family_name": "Nguyen", "email": "tess@example.org",
            CLAIM + "message_type": "LtiResourceLinkRequest", CLAIM + "version": "1.3.0",
            CLAIM + "deployment_id": deployment_id or self.deployment_id,
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
        return jwt.encode(claims, key.get("key") or key["pem"], algorithm=alg, headers=hdrs)

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

    def launch(self, http, tool_base, *, claims=None, token=None, state=None, extra_form=None, sign=None,
               login_params=None, **claim_kw):
        """Login then launch. `claims` is a function (claims dict -> claims dict) to tamper with them; `sign` a
        function (claims dict -> id_token) to sign them some other way; `token` replaces the id_token."""
        login_params = dict(login_params or {})
        if claim_kw.get("client_id"):
            login_params.setdefault("client_id", claim_kw["client_id"])
        if claim_kw.get("deployment_id"):
            login_params.setdefault("lti_deployment_id", claim_kw["deployment_id"])
        resp, auth = self.login(http, tool_base, **login_params)
        assert resp.status_code == 302, resp.text
        body = self.claims(auth["nonce"], **claim_kw)
        body[CLAIM + "target_link_uri"] = tool_base + "/lti/launch"
        if claims:
            body = claims(body)
        if token is None:
            token = sign(body) if sign else self.sign(body)
        form = {"id_token": token,
                "state": auth["state"] if state is None else state}
        form.update(extra_form or {})
        form = {k: v for k, v in form.items() if v is not None}
        return http.post(auth["redirect_uri"], data=form, allow_redirects=False), auth, body
