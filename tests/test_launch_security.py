"""Every forged, replayed or incomplete launch is refused: a 4xx, a readable page, no stack trace, nothing written.

All launches go through real HTTP: the test platform's login, a real RS256 id_token (or a forged one), the POST
to /lti/launch.
"""
import base64
import hashlib
import hmac
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import serialization

from lti_tool import create_app
from lti_tool.extensions import db
from tests.conftest import settings_for_tests
from tests.support.platform import CLAIM, new_rsa_key

NOTHING = {"people": 0, "courses": 0, "memberships": 0}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def title_of(resp) -> str:
    match = re.search(r"<title>(.*?)</title>", resp.text, re.S)
    assert match, resp.text[:500]
    return match.group(1)


def assert_refused(resp, status, title, count_rows=None, before=NOTHING):
    assert resp.status_code == status, (resp.status_code, resp.text[:800])
    assert resp.headers["Content-Type"].startswith("text/html")
    assert title in title_of(resp)
    assert f"<h1 id=\"error-title\">{title}" in resp.text
    assert "What to do" in resp.text
    assert "Traceback" not in resp.text and 'File "' not in resp.text
    if count_rows is not None:
        assert count_rows() == before


def remove(name):
    def edit(body):
        body.pop(name)
        return body

    return edit


def change(**values):
    def edit(body):
        body.update(values)
        return body

    return edit


# -- signature and algorithm --------------------------------------------------------------------------

def test_bad_signature_with_another_key_under_the_platforms_kid(live_server, platform, registered, http,
                                                                count_rows):
    impostor = new_rsa_key(platform.key["kid"])
    resp, _, _ = platform.launch(http, live_server, sign=lambda body: platform.sign(body, key=impostor))
    assert_refused(resp, 401, "The launch token&#39;s signature is not valid", count_rows)


def test_alg_none_is_refused(live_server, platform, registered, http, count_rows):
    def unsigned(body):
        return b64json({"alg": "none", "typ": "JWT", "kid": platform.key["kid"]}) + "." + b64json(body) + "."

    resp, _, _ = platform.launch(http, live_server, sign=unsigned)
    assert_refused(resp, 401, "The launch token is not signed the way LTI requires", count_rows)
    assert "none" in resp.text


def test_hs256_signed_with_the_platforms_public_key_is_refused(live_server, platform, registered, http,
                                                               count_rows):
    """The classic key-confusion attack: the public key, which anyone can fetch, used as an HMAC secret."""
    public_pem = serialization.load_pem_private_key(platform.key["pem"].encode(), None).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def hs256(body):
        signing_input = b64json({"alg": "HS256", "typ": "JWT", "kid": platform.key["kid"]}) + "." + b64json(body)
        signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        return signing_input + "." + b64(signature)

    resp, _, _ = platform.launch(http, live_server, sign=hs256)
    assert_refused(resp, 401, "The launch token is not signed the way LTI requires", count_rows)
    assert "HS256" in resp.text


def test_unknown_kid_is_refused_after_one_fresh_jwks_fetch(live_server, platform, registered, http, count_rows):
    ok, _, _ = platform.launch(http, live_server)
    assert ok.status_code == 303
    before = count_rows()
    fetched = platform.jwks_requests
    stranger = new_rsa_key("not-published")
    resp, _, _ = platform.launch(http, live_server, sign=lambda body: platform.sign(body, key=stranger))
    assert_refused(resp, 401, "The launch token was signed with an unknown key", count_rows, before)
    # The cached key set lacked the kid: fetched again exactly once, not in a loop.
    assert platform.jwks_requests == fetched + 1


def test_payload_altered_after_signing(live_server, platform, registered, http, count_rows):
    def tampered(body):
        header, _, signature = platform.sign(body).split(".")
        forged = dict(body, **{CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]})
        return f"{header}.{b64json(forged)}.{signature}"

    resp, _, _ = platform.launch(http, live_server, sign=tampered)
    assert_refused(resp, 401, "The launch token&#39;s signature is not valid", count_rows)


def test_garbage_token_is_refused(live_server, platform, registered, http, count_rows):
    resp, _, _ = platform.launch(http, live_server, token="not.a-jwt")
    assert_refused(resp, 400, "The launch token is damaged", count_rows)


# -- time, audience, issuer ---------------------------------------------------------------------------

def test_expired_token(live_server, platform, registered, http, count_rows):
    now = int(time.time())
    resp, _, _ = platform.launch(http, live_server, claims=change(iat=now - 4000, exp=now - 3600))
    assert_refused(resp, 401, "The launch has expired", count_rows)


def test_iat_in_the_future(live_server, platform, registered, http, count_rows):
    now = int(time.time())
    resp, _, _ = platform.launch(http, live_server, claims=change(iat=now + 3600, exp=now + 4000))
    assert_refused(resp, 401, "The launch comes from the future", count_rows)


def test_small_clock_skew_is_tolerated(live_server, platform, registered, http, count_rows):
    now = int(time.time())
    resp, _, _ = platform.launch(http, live_server, claims=change(iat=now + 20, exp=now + 300))
    assert resp.status_code == 303, resp.text


def test_wrong_aud(live_server, platform, registered, http, count_rows):
    resp, _, _ = platform.launch(http, live_server, claims=change(aud="some-other-tool", azp="some-other-tool"))
    assert_refused(resp, 401, "This LMS is not registered with the tool", count_rows)


def test_wrong_aud_in_a_list(live_server, platform, registered, http, count_rows):
    resp, _, _ = platform.launch(http, live_server, claims=change(aud=["some-other-tool"], azp="some-other-tool"))
    assert_refused(resp, 401, "This LMS is not registered with the tool", count_rows)


def test_several_audiences_with_our_azp_are_accepted(live_server, platform, registered, http):
    resp, _, _ = platform.launch(http, live_server, claims=change(aud=["some-other-tool", platform.client_id]))
    assert resp.status_code == 303, resp.text


def test_wrong_iss(live_server, platform, registered, http, count_rows):
    resp, _, _ = platform.launch(http, live_server, claims=change(iss="https://evil.example.org"))
    assert_refused(resp, 401, "This LMS is not registered with the tool", count_rows)


def test_azp_mismatch(live_server, platform, registered, http, count_rows):
    resp, _, _ = platform.launch(http, live_server, claims=change(azp="some-other-tool"))
    assert_refused(resp, 401, "The launch was meant for another tool", count_rows)


# -- replay and state ---------------------------------------------------------------------------------

def test_replaying_a_successful_launch_is_refused(live_server, platform, registered, http, count_rows):
    resp, auth, _ = platform.launch(http, live_server)
    assert resp.status_code == 303
    before = count_rows()
    token = platform.sign(platform.claims(auth["nonce"]))
    first = http.post(live_server + "/lti/launch", data={"id_token": token, "state": auth["state"]},
                      allow_redirects=False)
    assert_refused(first, 400, "This launch was already used or has expired", count_rows, before)


def test_replaying_the_exact_request_is_refused(live_server, platform, registered, http, count_rows):
    ok, auth, body = platform.launch(http, live_server)
    assert ok.status_code == 303
    before = count_rows()
    # Same bytes again: the very id_token and state the browser posted (an attacker's captured request).
    token = ok.request.body
    replay = http.post(live_server + "/lti/launch", data=token, allow_redirects=False,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_refused(replay, 400, "This launch was already used or has expired", count_rows, before)


def test_old_token_with_a_fresh_logins_state_is_refused(live_server, platform, registered, http, count_rows):
    ok, auth, body = platform.launch(http, live_server)
    assert ok.status_code == 303
    old_token = platform.sign(body)
    before = count_rows()
    resp, auth2 = platform.login(http, live_server)
    assert resp.status_code == 302
    replay = http.post(live_server + "/lti/launch", data={"id_token": old_token, "state": auth2["state"]},
                       allow_redirects=False)
    assert_refused(replay, 400, "The launch does not match its login", count_rows, before)


def test_missing_state(live_server, platform, registered, http, count_rows):
    resp, _, _ = platform.launch(http, live_server, extra_form={"state": None})
    assert_refused(resp, 400, "The launch is incomplete", count_rows)


def test_state_cookie_differs(live_server, platform, registered, http, count_rows):
    _, auth = platform.login(http, live_server)
    http.cookies.set("ptp_browser", "somebody-elses-browser", domain="127.0.0.1", path="/")
    token = platform.sign(platform.claims(auth["nonce"]))
    resp = http.post(live_server + "/lti/launch", data={"id_token": token, "state": auth["state"]},
                     allow_redirects=False)
    assert_refused(resp, 400, "Your browser did not keep the launch&#39;s cookie", count_rows)


def test_state_cookie_missing(live_server, platform, registered, http, count_rows):
    _, auth = platform.login(http, live_server)
    token = platform.sign(platform.claims(auth["nonce"]))
    with requests.Session() as other_browser:
        resp = other_browser.post(live_server + "/lti/launch", data={"id_token": token, "state": auth["state"]},
                                  allow_redirects=False)
    assert_refused(resp, 400, "Your browser did not keep the launch&#39;s cookie", count_rows)


def test_another_logins_state(live_server, platform, registered, http, count_rows):
    """Login CSRF: the victim's browser gets the attacker's id_token with the attacker's state."""
    _, mine = platform.login(http, live_server)
    with requests.Session() as attacker:
        _, theirs = platform.login(attacker, live_server)
    # Our browser, our token, their state: the state's nonce is not the token's.
    token = platform.sign(platform.claims(mine["nonce"]))
    resp = http.post(live_server + "/lti/launch", data={"id_token": token, "state": theirs["state"]},
                     allow_redirects=False)
    assert_refused(resp, 400, "The launch does not match its login", count_rows)
    # Their token with their state, posted from our browser: no state cookie for it here.
    token = platform.sign(platform.claims(theirs["nonce"]))
    resp = http.post(live_server + "/lti/launch", data={"id_token": token, "state": theirs["state"]},
                     allow_redirects=False)
    assert_refused(resp, 400, "Your browser did not keep the launch&#39;s cookie", count_rows)


def test_unknown_state(live_server, platform, registered, http, count_rows):
    resp, _, _ = platform.launch(http, live_server, state="state-made-up")
    assert_refused(resp, 400, "This launch was already used or has expired", count_rows)


def test_a_refused_launch_does_not_burn_the_login(live_server, platform, registered, http, count_rows):
    """Refusals roll back: a forged POST carrying a real state cannot stop the real launch that follows."""
    _, auth = platform.login(http, live_server)
    body = platform.claims(auth["nonce"])
    forged = platform.sign(body, key=new_rsa_key(platform.key["kid"]))
    resp = http.post(live_server + "/lti/launch", data={"id_token": forged, "state": auth["state"]},
                     allow_redirects=False)
    assert resp.status_code == 401
    resp = http.post(live_server + "/lti/launch", data={"id_token": platform.sign(body), "state": auth["state"]},
                     allow_redirects=False)
    assert resp.status_code == 303, resp.text
    assert count_rows() == {"people": 1, "courses": 1, "memberships": 1}


# -- claims --------------------------------------------------------------------------------------------

def test_unknown_deployment(live_server, platform, registered, http, count_rows):
    resp, _, _ = platform.launch(http, live_server, deployment_id="99:not-registered")
    assert_refused(resp, 403, "This deployment of the tool is not registered", count_rows)


@pytest.mark.parametrize("claim, title", [
    ("sub", "The launch does not say who you are"),
    (CLAIM + "roles", "The launch does not say your role"),
    (CLAIM + "version", "The launch has no LTI version"),
    (CLAIM + "message_type", "The launch has no message type"),
    (CLAIM + "deployment_id", "The launch names no deployment"),
    ("nonce", "The launch token could not be verified"),
])
def test_missing_claim(live_server, platform, registered, http, count_rows, claim, title):
    resp, _, _ = platform.launch(http, live_server, claims=remove(claim))
    assert_refused(resp, 401 if claim == "nonce" else 400, title, count_rows)


def test_wrong_version(live_server, platform, registered, http, count_rows):
    resp, _, _ = platform.launch(http, live_server, claims=change(**{CLAIM + "version": "1.1.0"}))
    assert_refused(resp, 400, "Unsupported LTI version", count_rows)


def test_unsupported_message_type(live_server, platform, registered, http, count_rows):
    resp, _, _ = platform.launch(http, live_server,
                                 claims=change(**{CLAIM + "message_type": "LtiSubmissionReviewRequest"}))
    assert_refused(resp, 400, "This kind of launch is not supported", count_rows)


def test_roles_that_are_not_strings(live_server, platform, registered, http, count_rows):
    resp, _, _ = platform.launch(http, live_server, claims=change(**{CLAIM + "roles": [{"role": "Instructor"}]}))
    assert_refused(resp, 400, "The launch does not say your role", count_rows)


def test_no_known_role(live_server, platform, registered, http, count_rows):
    resp, _, _ = platform.launch(http, live_server, roles=["http://purl.imsglobal.org/vocab/lis/v2/system/person#User"])
    assert_refused(resp, 403, "Your role in this course has no place in this tool", count_rows)


def test_numeric_sub_is_accepted_as_a_string(live_server, platform, registered, http, count_rows):
    resp, _, _ = platform.launch(http, live_server, sub=12345)
    assert resp.status_code == 303, resp.text
    assert count_rows() == {"people": 1, "courses": 1, "memberships": 1}


# -- login ---------------------------------------------------------------------------------------------

def test_login_from_unknown_issuer(live_server, platform, registered, http, count_rows):
    resp, _ = platform.login(http, live_server, iss="https://unknown-lms.example.org")
    assert_refused(resp, 400, "This LMS is not registered with the tool", count_rows)
    assert "flask --app lti_tool lti add-platform" in resp.text
    assert not list(http.cookies)


def test_login_with_unknown_client_id(live_server, platform, registered, http, count_rows):
    resp, _ = platform.login(http, live_server, client_id="not-our-client")
    assert_refused(resp, 400, "This LMS is not registered with the tool", count_rows)


def test_login_without_login_hint(live_server, platform, registered, http, count_rows):
    resp, _ = platform.login(http, live_server, login_hint=None)
    assert_refused(resp, 400, "The LMS did not say who you are", count_rows)


def test_login_for_a_foreign_target(live_server, platform, registered, http, count_rows):
    resp, _ = platform.login(http, live_server, target_link_uri="https://phish.example.org/lti/launch")
    assert_refused(resp, 400, "The link points elsewhere", count_rows)


# -- the platform's key set ----------------------------------------------------------------------------

def test_jwks_is_cached_and_fetched_again_once_when_the_platform_rotates(live_server, platform, registered,
                                                                        http):
    start = platform.jwks_requests
    assert platform.launch(http, live_server)[0].status_code == 303
    assert platform.jwks_requests == start + 1
    assert platform.launch(http, live_server)[0].status_code == 303
    assert platform.jwks_requests == start + 1, "the key set should come from the cache"

    # The platform rotates: a new key signs, both are published.
    new_key = new_rsa_key("platform-key-2")
    platform.published = [platform.key, new_key]
    resp, _, _ = platform.launch(http, live_server, sign=lambda body: platform.sign(body, key=new_key))
    assert resp.status_code == 303, resp.text
    assert platform.jwks_requests == start + 2
    resp, _, _ = platform.launch(http, live_server, sign=lambda body: platform.sign(body, key=new_key))
    assert resp.status_code == 303
    assert platform.jwks_requests == start + 2, "the refreshed key set should be cached"


# -- cookies, proxies, no JavaScript, slow platforms ---------------------------------------------------------

@pytest.fixture
def other_app(app):
    """A second app on the test database with its own settings (and a test client, not the live server)."""
    made = []

    def make(**settings):
        new = create_app(settings_for_tests(**settings))
        made.append(new)
        return new

    yield make
    for new in made:
        with new.app_context():
            db.engine.dispose()


def _login_query(platform, target):
    return {"iss": platform.issuer, "login_hint": "hint-1", "target_link_uri": target,
            "client_id": platform.client_id, "lti_deployment_id": platform.deployment_id}


def _auth_params(resp):
    return {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["Location"]).query).items()}


def test_state_cookie_over_https_behind_a_proxy(other_app, platform, registered, count_rows):
    behind_proxy = other_app(PROXY_FIX_HOPS=1)
    client = behind_proxy.test_client()
    # The TLS-terminating proxy talks plain HTTP to the app and says what the browser used.
    via_proxy = {"headers": {"X-Forwarded-Proto": "https"}, "base_url": "http://tool.example.org"}
    resp = client.get("/lti/login", query_string=_login_query(platform, "https://tool.example.org/lti/launch"),
                      **via_proxy)
    assert resp.status_code == 302, resp.text
    auth = _auth_params(resp)
    assert auth["redirect_uri"] == "https://tool.example.org/lti/launch"
    cookies = resp.headers.getlist("Set-Cookie")
    assert len(cookies) == 1 and cookies[0].startswith("ptp_browser=")
    attrs = {part.strip().split("=")[0] for part in cookies[0].split(";")}
    assert {"Secure", "HttpOnly", "Partitioned"} <= attrs
    assert "SameSite=None" in cookies[0]

    # The launch completes over the same proxy with the cookie the browser kept.
    token = platform.sign(dict(platform.claims(auth["nonce"]),
                               **{CLAIM + "target_link_uri": "https://tool.example.org/lti/launch"}))
    resp = client.post("/lti/launch", data={"id_token": token, "state": auth["state"]}, **via_proxy)
    assert resp.status_code == 303, resp.text
    # ... which stays as the login set it: the session is bound to it, and nothing is left to clear.
    assert "Set-Cookie" not in resp.headers
    assert count_rows() == {"people": 1, "courses": 1, "memberships": 1}


def test_state_cookie_over_plain_http_is_not_marked_secure(other_app, platform, registered):
    client = other_app(PROXY_FIX_HOPS=1).test_client()
    resp = client.get("/lti/login", query_string=_login_query(platform, "http://localhost/lti/launch"))
    assert resp.status_code == 302
    cookie = next(c for c in resp.headers.getlist("Set-Cookie") if c.startswith("ptp_browser="))
    assert "Secure" not in cookie and "SameSite=None" not in cookie


def test_x_forwarded_proto_is_ignored_without_a_trusted_proxy(other_app, platform, registered):
    client = other_app(PROXY_FIX_HOPS=0).test_client()
    resp = client.get("/lti/login", query_string=_login_query(platform, "http://localhost/lti/launch"),
                      headers={"X-Forwarded-Proto": "https"})
    assert resp.status_code == 302
    assert _auth_params(resp)["redirect_uri"] == "http://localhost/lti/launch"


def test_plain_form_post_flow_needs_no_javascript_and_no_cookie_afterwards(live_server, platform, registered,
                                                                           http):
    login, auth = platform.login(http, live_server)
    # The login is a bare redirect (no page, no script) ...
    assert login.status_code == 302 and "<script" not in login.text
    token = platform.sign(dict(platform.claims(auth["nonce"]), **{CLAIM + "target_link_uri": auth["redirect_uri"]}))
    launch = http.post(auth["redirect_uri"], data={"id_token": token, "state": auth["state"]}, allow_redirects=False)
    # ... and so is the launch: 303 to the tool's page, which needs no cookie.
    assert launch.status_code == 303, launch.text
    assert "<script" not in launch.text
    # The launch sets no cookie: the login's browser cookie is the only one, and the tool's page needs none.
    assert "Set-Cookie" not in launch.headers
    assert [c.name for c in http.cookies] == ["ptp_browser"]
    with requests.Session() as no_cookies:
        page = no_cookies.get(live_server + launch.headers["Location"])
    assert page.status_code == 200 and "Tess Nguyen" in page.text


def test_a_slow_platform_key_set_times_out_quickly(other_app, platform, registered, count_rows):
    impatient = other_app(LTI_HTTP_TIMEOUT=0.3)
    client = impatient.test_client()
    resp = client.get("/lti/login", query_string=_login_query(platform, "http://localhost/lti/launch"))
    auth = _auth_params(resp)
    platform.jwks_delay = 2
    try:
        started = time.monotonic()
        resp = client.post("/lti/launch", data={"id_token": platform.sign(platform.claims(auth["nonce"])),
                                                "state": auth["state"]})
        elapsed = time.monotonic() - started
    finally:
        platform.jwks_delay = 0
    assert elapsed < 1.5
    assert_refused(resp, 400, "The LMS&#39;s keys could not be read", count_rows)


def test_cookies_do_not_pile_up_over_many_launches(live_server, platform, registered, http):
    """A cookie per login (pylti1p3's lti1p3-<state>) would outgrow the 8 KB header limit of gunicorn and nginx
    after a few dozen launches in one browser, and every request to the tool would fail: there is one per browser."""
    for _ in range(5):
        resp, _, _ = platform.launch(http, live_server)
        assert resp.status_code == 303
    assert [c.name for c in http.cookies] == ["ptp_browser"]


def test_a_state_is_bound_to_the_browser_that_logged_in(live_server, platform, registered, http, count_rows):
    """Login CSRF: an attacker's state and id_token posted from the victim's browser (which has its own cookie)."""
    with requests.Session() as attacker:
        _, auth = platform.login(attacker, live_server)
    platform.login(http, live_server)  # the victim's browser has a cookie of its own
    token = platform.sign(dict(platform.claims(auth["nonce"]), **{CLAIM + "target_link_uri": auth["redirect_uri"]}))
    resp = http.post(auth["redirect_uri"], data={"id_token": token, "state": auth["state"]}, allow_redirects=False)
    assert_refused(resp, 400, "Your browser did not keep the launch&#39;s cookie", count_rows)


def test_a_forged_or_altered_state_is_refused(live_server, platform, registered, http, count_rows):
    _, auth = platform.login(http, live_server)
    token = platform.sign(dict(platform.claims(auth["nonce"]), **{CLAIM + "target_link_uri": auth["redirect_uri"]}))
    head, payload, stamp, signature = auth["state"].split(".")
    # The signature's first character carries whole bits (the last one partly padding, which decoding ignores).
    altered = ("B" if signature[0] == "A" else "A") + signature[1:]
    for state in (f"{head}.{payload}.{stamp}.{altered}", f"{head}.{payload[:-4]}AAAA.{stamp}.{signature}",
                  "state-made-up", "s1." + "A" * 2000):
        resp = http.post(auth["redirect_uri"], data={"id_token": token, "state": state}, allow_redirects=False)
        assert_refused(resp, 400, "This launch was already used or has expired", count_rows)


def test_a_state_older_than_its_lifetime_is_refused(other_app, platform, registered, count_rows):
    client = other_app(LTI_STATE_TTL=1).test_client()
    resp = client.get("/lti/login", query_string=_login_query(platform, "http://localhost/lti/launch"))
    auth = _auth_params(resp)
    time.sleep(2.1)
    resp = client.post("/lti/launch", data={"id_token": platform.sign(platform.claims(auth["nonce"])),
                                            "state": auth["state"]})
    assert_refused(resp, 400, "This launch was already used or has expired", count_rows)
