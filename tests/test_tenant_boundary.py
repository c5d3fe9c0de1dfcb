"""The tenant boundary, tried as an attacker would, through real HTTP: the attacker has their own LMS (own signing
key, own OpenID configuration and endpoints, tests/support/hostile.py) and a canary address the tool must never
call. Every refusal is shown together with what was (not) written."""
import jwt
import pytest
import requests
from sqlalchemy import event, func, select, text
from werkzeug.wrappers import Response

from lti_tool.extensions import db
from lti_tool.lti import keys, registration_links
from lti_tool.models import Registration, RegistrationLink
from tests.support.advantage import AdvantagePlatform
from tests.support.hostile import Canary, HostilePlatform, redirect_to
from tests.support.platform import CANVAS_ROLES, CLAIM
from tests.test_admin_pages import launch

TOOL_CONF = "https://purl.imsglobal.org/spec/lti-tool-configuration"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
TABLES = ("registrations", "deployments", "registration_links", "audit_log", "people", "courses", "memberships",
          "tool_keys")


@pytest.fixture(scope="module")
def hostile_server():
    h = HostilePlatform()
    yield h
    h.close()


@pytest.fixture
def attacker(hostile_server, live_server):
    h = hostile_server
    h.hits.clear()
    h.routes.clear()
    h.config = {}
    h.registration_response = None
    h.published = [h.key]
    h.tool_jwks_url = live_server + "/lti/jwks"
    return h


@pytest.fixture(scope="module")
def canary():
    c = Canary()
    yield c
    c.close()


@pytest.fixture
def attacker_tenant(app, attacker):
    """The attacker as a registered tenant of their own (any stranger could have become one before links)."""
    with app.app_context():
        return attacker.register_in(db).id


def rows(app) -> dict:
    with app.app_context():
        counts = {t: db.session.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in TABLES}
        counts["links used"] = db.session.scalar(
            select(func.count()).select_from(RegistrationLink).where(RegistrationLink.used_at.is_not(None)))
        return counts


def victim_row(app, registration_id) -> tuple:
    with app.app_context():
        r = db.session.get(Registration, registration_id)
        return (r.issuer, r.client_id, r.auth_login_url, r.auth_token_url, r.jwks_url, r.auth_audience)


def new_link(app, days=7) -> str:
    with app.app_context():
        _, token = registration_links.create(None, days)
        db.session.commit()
    return token


def register(http, live_server, config_url, **values):
    return http.post(live_server + "/lti/register", data={"openid_configuration": config_url, **values})


def config_of(platform):
    return platform.base + "/.well-known/openid-configuration"


# --- Taking over an existing tenant ----------------------------------------------------------------------------

def test_takeover_without_a_link_calls_nothing_and_writes_nothing(app, live_server, platform, registered, attacker,
                                                                   http):
    attacker.config = {"issuer": platform.issuer}
    attacker.registration_response = {"client_id": platform.client_id}
    before, victim = rows(app), victim_row(app, registered)
    for extra in ({}, {"link": "guessed-link"}, {"invite": "anything"}):
        values = {"openid_configuration": config_of(attacker), "registration_token": attacker.registration_token,
                  **extra}
        assert http.get(live_server + "/lti/register", params=values).status_code == 403
        refused = http.post(live_server + "/lti/register", data=values)
        assert refused.status_code == 403 and "not valid" in refused.text
    assert attacker.hits == [], "the tool called the attacker's server without a registration link"
    assert rows(app) == before and victim_row(app, registered) == victim


def test_takeover_with_a_link_is_refused_and_the_victim_keeps_working(app, live_server, platform, registered,
                                                                       attacker, http):
    attacker.config = {"issuer": platform.issuer}
    attacker.registration_response = {"client_id": platform.client_id, TOOL_CONF: {"deployment_id": "66"}}
    before, victim = rows(app), victim_row(app, registered)
    link = new_link(app)
    resp = register(http, live_server, config_of(attacker), link=link,
                    registration_token=attacker.registration_token)
    assert resp.status_code == 409
    assert "already registered" in resp.text and "never replaced" in resp.text
    assert "/register" in attacker.paths(), "the link holder's LMS was asked (and its answer refused)"
    assert rows(app) == {**before, "registration_links": before["registration_links"] + 1}
    assert victim_row(app, registered) == victim
    with app.app_context():
        assert registration_links.usable(link) is not None
    # The victim's logins still go to the victim's LMS, and launches work.
    login, auth = platform.login(http, live_server)
    assert login.headers["Location"].startswith(platform.base + "/auth?")
    ok, _, _ = platform.launch(http, live_server)
    assert ok.status_code == 303


def test_a_second_registration_of_an_issuer_does_not_take_its_logins(app, live_server, platform, registered,
                                                                      attacker, http):
    """With a link, a new client id under an existing issuer registers (Canvas has many developer keys per issuer);
    the issuer's logins without client_id keep going to the registration they went to before."""
    attacker.config = {"issuer": platform.issuer}
    attacker.registration_response = {"client_id": "attacker-client", TOOL_CONF: {"deployment_id": "66"}}
    resp = register(http, live_server, config_of(attacker), link=new_link(app),
                    registration_token=attacker.registration_token)
    assert resp.status_code == 200, resp.text
    login, auth = platform.login(http, live_server, client_id=None)
    assert login.status_code == 302 and login.headers["Location"].startswith(platform.base + "/auth?")
    assert auth["client_id"] == platform.client_id
    ok, _, _ = platform.launch(http, live_server, login_params={"client_id": None})
    assert ok.status_code == 303, ok.text


def test_a_used_or_expired_link_calls_nothing(app, live_server, platform, attacker, http):
    used = new_link(app)
    done = register(http, live_server, config_of(platform), link=used,
                    registration_token=platform.registration_token)
    assert done.status_code == 200, done.text
    expired = new_link(app, days=0)
    before = rows(app)
    for link in (used, expired):
        for method in ("get", "post"):
            values = {"link": link, "openid_configuration": config_of(attacker),
                      "registration_token": attacker.registration_token}
            resp = getattr(http, method)(live_server + "/lti/register",
                                         **{"params" if method == "get" else "data": values})
            assert resp.status_code == 403
    assert attacker.hits == []
    assert rows(app) == before


# --- Server-side request forgery -------------------------------------------------------------------------------

def test_registration_never_reaches_an_internal_address(app, live_server, attacker, canary, http):
    link = new_link(app)
    before = rows(app)
    canary.hits.clear()
    attacker.routes["/to-canary"] = redirect_to(canary.base + "/latest/meta-data/")
    attacker.routes["/fails"] = lambda request: attacker._json({"detail": "SECRET-ERROR-BODY"}, 500)
    cases = [
        (canary.base + "/.well-known/openid-configuration", "not one the tool may call"),
        (attacker.base + "/to-canary", "another site"),
    ]
    for url, reason in cases:
        resp = http.get(live_server + "/lti/register", params={"link": link, "openid_configuration": url})
        assert resp.status_code == 400 and reason in resp.text
        assert "CANARY-INTERNAL-DATA" not in resp.text
    attacker.config = {"registration_endpoint": canary.base + "/register"}
    resp = register(http, live_server, config_of(attacker), link=link, registration_token="x")
    assert resp.status_code == 400 and "not one the tool may call" in resp.text
    attacker.config = {"registration_endpoint": attacker.base + "/fails"}
    resp = register(http, live_server, config_of(attacker), link=link, registration_token="x")
    assert resp.status_code == 400 and "HTTP 500" in resp.text and "SECRET-ERROR-BODY" not in resp.text
    assert canary.hits == [], "the tool called the canary"
    assert rows(app) == before


def test_a_tenants_service_urls_never_reach_an_internal_address(app, live_server, attacker, attacker_tenant, canary,
                                                                 http):
    """A registered platform names NRPS URLs in its launches; the roster sync (with the access token) must not
    reach an internal address, directly or through a redirect, and must not forward the token elsewhere."""
    canary.hits.clear()
    attacker.routes["/memberships"] = redirect_to(canary.base + "/steal")
    for url in (canary.base + "/memberships", attacker.base + "/memberships"):
        resp, _, _ = attacker.launch(http, live_server, roles=CANVAS_ROLES["teacher"], sub="evil-teacher",
                                     context_id="ctx-" + url.rsplit(":", 1)[-1],
                                     claims=lambda body, url=url: {**body, NRPS: {
                                         "context_memberships_url": url, "service_versions": ["2.0"]}})
        assert resp.status_code == 303, resp.text
        # The roster is read by a worker after the launch (at once here: memory://); its home page tells the manager.
        home = http.get(live_server + resp.headers["Location"], timeout=10)
        assert "The course roster could not be updated" in home.text, "the manager is told"
    assert canary.hits == []
    assert "/token" in attacker.paths()
    redirected = [h for h in attacker.hits if h["path"] == "/memberships"]
    assert redirected and redirected[0]["authorization"].startswith("Bearer ")


# --- Client assertions -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def victim_lms(live_server):
    p = AdvantagePlatform(live_server + "/lti/jwks")
    yield p
    p.close()


@pytest.fixture
def victim(app, victim_lms):
    victim_lms.reset()
    with app.app_context():
        keys.ensure_published()
        victim_lms.register_in(db)
    return victim_lms


def test_a_client_assertion_is_bound_to_the_token_url_it_is_sent_to(app, live_server, victim, attacker, http):
    """The attacker registers (with a link) a platform claiming the victim's client id and naming the victim's token
    URL as authorization_server; the assertion the tool sends them is addressed to their own token URL only, so
    replaying it at the victim's token endpoint gets nothing."""
    captured = []

    def token(request):
        captured.append(request.form["client_assertion"])
        return attacker._json({"access_token": "attacker-token", "token_type": "Bearer", "expires_in": 3600})

    attacker.routes["/token"] = token
    attacker.config = {"authorization_server": victim.base + "/token"}
    attacker.registration_response = {"client_id": victim.client_id, TOOL_CONF: {"deployment_id": "9"}}
    resp = register(http, live_server, config_of(attacker), link=new_link(app),
                    registration_token=attacker.registration_token)
    assert resp.status_code == 200, resp.text
    with app.app_context():
        row = db.session.scalars(select(Registration).where(Registration.issuer == attacker.issuer)).one()
        assert row.auth_audience is None, "an audience on another origin is not kept"
    launched, _, _ = attacker.launch(http, live_server, roles=CANVAS_ROLES["teacher"], client_id=victim.client_id,
                                     deployment_id="9", claims=lambda body: {**body, NRPS: {
                                         "context_memberships_url": attacker.base + "/nrps",
                                         "service_versions": ["2.0"]}})
    assert launched.status_code == 303, launched.text
    assert captured, "the tool asked the attacker's token endpoint"
    assert jwt.decode(captured[0], options={"verify_signature": False})["aud"] == attacker.base + "/token"
    replay = requests.post(victim.base + "/token", timeout=5, data={
        "grant_type": "client_credentials", "scope": "https://purl.imsglobal.org/spec/lti-nrps/scope/"
        "contextmembership.readonly", "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": captured[0]})
    assert replay.status_code == 401
    assert victim.tokens == {}, "the victim's LMS issued no access token"


def test_a_registration_cannot_claim_another_tenants_client_id_at_its_token_url(app, live_server, victim, attacker,
                                                                                 http):
    attacker.config = {"token_endpoint": victim.base + "/token"}
    attacker.registration_response = {"client_id": victim.client_id}
    before = rows(app)
    resp = register(http, live_server, config_of(attacker), link=new_link(app),
                    registration_token=attacker.registration_token)
    assert resp.status_code == 409 and "already belongs to another registration" in resp.text
    assert rows(app) == {**before, "registration_links": before["registration_links"] + 1}
    assert victim.token_requests == 0


# --- Keys ------------------------------------------------------------------------------------------------------

def test_a_tenant_admin_cannot_change_what_another_tenant_sees(app, live_server, platform, registered, attacker,
                                                               attacker_tenant, http):
    with app.app_context():
        keys.ensure_published()
        keys.rotate()
        db.session.commit()
        older = keys.published_keys()[0].kid
    admin = launch(app, attacker, http, live_server, CANVAS_ROLES["account_admin"], "evil-admin")
    seen = (http.get(live_server + "/lti/jwks").json(), http.get(live_server + "/credentials/jwks").json())
    before = rows(app)
    for path, data in (("/admin/keys/rotate", {}), ("/admin/keys/retire", {"kid": older})):
        assert admin.post(path, data).status_code in (404, 405)
    assert rows(app) == before
    assert (http.get(live_server + "/lti/jwks").json(), http.get(live_server + "/credentials/jwks").json()) == seen
    page = admin.get("/admin/")
    assert older in page.page and "Retire" not in page.page


# --- Content-Security-Policy ------------------------------------------------------------------------------------

def csp(resp) -> dict:
    return dict(part.strip().split(" ", 1) for part in resp.headers["Content-Security-Policy"].split(";")
                if part.strip())


def test_csp_lists_only_the_sessions_own_registration(app, live_server, platform, registered, attacker,
                                                      attacker_tenant):
    with requests.Session() as b_http:
        b_http.headers["Origin"] = "https://forged-origin.example"
        b_resp, _, _ = attacker.launch(b_http, live_server, sub="b-user", claims=lambda body: {
            **body, CLAIM + "launch_presentation": {"return_url": "https://b-school.example/return?x=1"}})
        assert b_resp.status_code == 303, b_resp.text
        b_page = b_http.get(live_server + b_resp.headers["Location"])
    with requests.Session() as a_http:
        a_resp, _, _ = platform.launch(a_http, live_server, sub="a-user")
        a_page = a_http.get(live_server + a_resp.headers["Location"])
    a, b = csp(a_page), csp(b_page)
    for directive in ("frame-ancestors", "form-action"):
        assert platform.base in a[directive]
        for foreign in ("b-school.example", "forged-origin.example", attacker.base):
            assert foreign not in a[directive], (directive, foreign)
        assert "https://b-school.example" in b[directive], "signed return_url origins are the tenant's own"
        assert "forged-origin.example" not in b[directive], "the unsigned Origin header is never trusted"
    anonymous = csp(requests.get(live_server + "/", timeout=5))
    assert anonymous["frame-ancestors"] == "'self'" and anonymous["form-action"] == "'self'"
    assert len(a_page.headers["Content-Security-Policy"]) < 1000
    # Scripts are the tool's own files only: no inline script is allowed, with or without a nonce.
    assert a["script-src"] == "'self'" and anonymous["script-src"] == "'self'"


def test_headers_need_no_database_after_the_commit(app, live_server, platform, registered, http):
    resp, _, _ = platform.launch(http, live_server, sub="a-user")
    # The launch lands on /app/, which forwards a technician to the portfolio: measure that page's request.
    landing = http.get(live_server + resp.headers["Location"], allow_redirects=False).headers["Location"]
    state = {"committed": False, "after": []}

    def on_commit(conn):
        state["committed"] = True

    def on_execute(conn, cursor, statement, *args):
        if state["committed"]:
            state["after"].append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "commit", on_commit)
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        page = http.get(live_server + landing, allow_redirects=False)
    finally:
        event.remove(engine, "commit", on_commit)
        event.remove(engine, "before_cursor_execute", on_execute)
    assert page.status_code == 200 and platform.base in csp(page)["frame-ancestors"]
    assert state["committed"] and state["after"] == []


def test_hsts_over_https_only_and_no_forwarded_host_by_default(app, client):
    assert client.get("/", base_url="https://tool.example.org").headers["Strict-Transport-Security"] == \
        "max-age=31536000"
    assert "Strict-Transport-Security" not in client.get("/").headers
    import config

    assert config.load({"LTI_TOOL_ENV": "production"})["PROXY_FIX_HOPS"] == 0
    body = client.get("/lti/config.json", headers={"X-Forwarded-Host": "evil.example",
                                                   "X-Forwarded-Proto": "https"}).get_data(as_text=True)
    assert "evil.example" not in body


def test_a_hostile_roster_answer_is_a_readable_problem(app, live_server, attacker, attacker_tenant, http):
    """Whatever a platform answers (here HTML with a 200) ends as a notice, not a server error."""
    attacker.routes["/html-roster"] = lambda request: Response("<html>not a roster</html>", mimetype="text/html")
    attacker.routes["/list-roster"] = lambda request: attacker._json(["not", "an", "object"])
    for path in ("/html-roster", "/list-roster"):
        resp, _, _ = attacker.launch(http, live_server, roles=CANVAS_ROLES["teacher"], sub="evil-teacher",
                                     context_id="ctx" + path, claims=lambda body, path=path: {**body, NRPS: {
                                         "context_memberships_url": attacker.base + path,
                                         "service_versions": ["2.0"]}})
        assert resp.status_code == 303, resp.text
        page = http.get(live_server + resp.headers["Location"])
        assert page.status_code == 200 and "roster could not be updated" in page.text
        assert "not a roster" not in page.text


def test_two_registrations_racing_with_one_link_register_once(app, live_server, attacker):
    """Both requests pass the link check and reach the LMS together; only one may store its registration."""
    import threading

    arrived = threading.Barrier(2, timeout=10)
    answers = iter(["race-a", "race-b"])

    def register_endpoint(request):
        arrived.wait()
        return attacker._json({"client_id": next(answers), TOOL_CONF: {"deployment_id": "1"}})

    attacker.routes["/register"] = register_endpoint
    link = new_link(app)
    before = rows(app)
    results = []

    def post():
        with requests.Session() as s:
            results.append(register(s, live_server, config_of(attacker), link=link, registration_token="t"))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(r.status_code for r in results) == [200, 403]
    after = rows(app)
    assert after["registrations"] == before["registrations"] + 1 and after["links used"] == 1
