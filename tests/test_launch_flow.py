"""Complete login -> launch flows over real HTTP against the test platform."""
from urllib.parse import parse_qs, urlsplit

from lti_tool.web import NOTICE_PARAM, notice_token
from tests.support.platform import CANVAS_ROLES


def test_login_redirects_to_platform_with_state_and_nonce(live_server, platform, registered, http):
    resp, auth = platform.login(http, live_server)
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith(platform.base + "/auth?")
    assert auth["client_id"] == platform.client_id
    assert auth["redirect_uri"] == live_server + "/lti/launch"
    assert auth["response_mode"] == "form_post" and auth["prompt"] == "none"
    assert auth["state"] and auth["nonce"]
    # One cookie per browser, no per-login cookie; the state is signed and bound to that cookie.
    assert [c.name for c in http.cookies] == ["ptp_browser"]
    assert auth["state"].startswith("s1.") and auth["nonce"] not in auth["state"]


def test_a_login_writes_nothing_and_keeps_the_browsers_cookie(live_server, platform, registered, http, app):
    from sqlalchemy import func, select

    from lti_tool.extensions import db
    from lti_tool.models import LtiStoreEntry

    platform.login(http, live_server)
    cookie = http.cookies.get("ptp_browser")
    for _ in range(3):
        resp, _ = platform.login(http, live_server)
        assert resp.status_code == 302
    assert http.cookies.get("ptp_browser") == cookie  # refreshed, never replaced (a session may be bound to it)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LtiStoreEntry)) == 0


def test_login_accepts_post(live_server, platform, registered, http):
    resp, auth = platform.login(http, live_server, method="POST")
    assert resp.status_code == 302 and auth["state"]


def test_complete_launch_lands_person_course_and_role(live_server, platform, registered, http, count_rows):
    resp, auth, body = platform.launch(http, live_server, roles=CANVAS_ROLES["teacher"], sub="t-1")
    assert resp.status_code == 303, resp.text
    page = http.get(live_server + resp.headers["Location"])
    assert page.status_code == 200
    assert urlsplit(page.url).path == "/team/queue", "a manager lands on the review queue"
    assert "Tess Nguyen" in page.text
    assert "IV Room Cross-Training" in page.text
    assert count_rows() == {"people": 1, "courses": 1, "memberships": 1}
    token = parse_qs(urlsplit(resp.headers["Location"]).query)["lt"][0]
    assert token


def test_second_launch_refreshes_name_and_email(live_server, platform, registered, http, count_rows, app):
    # An observer: Home shows the name and e-mail the LMS sent.
    platform.launch(http, live_server, sub="s-1", roles=CANVAS_ROLES["observer"])
    resp, _, _ = platform.launch(http, live_server, sub="s-1", name="Tess Nguyen-Ramos",
                                 email="tess.nr@example.org", roles=CANVAS_ROLES["observer"])
    assert resp.status_code == 303
    page = http.get(live_server + resp.headers["Location"])
    assert "Tess Nguyen-Ramos" in page.text and "tess.nr@example.org" in page.text
    assert count_rows() == {"people": 1, "courses": 1, "memberships": 1}


def test_launch_lands_where_the_person_works(app, live_server, platform, registered, http):
    """Technicians on their portfolio, course managers on the review queue, observers on Home; a notice of the
    launch (such as a roster warning) travels with the forward."""
    tech, _, _ = platform.launch(http, live_server, sub="tech-lands")
    landed = http.get(live_server + tech.headers["Location"])
    assert urlsplit(landed.url).path == "/me/" and "<h1>My portfolio</h1>" in landed.text
    assert ">Home</a>" in landed.text, "Home lists what needs attention"
    boss, _, _ = platform.launch(http, live_server, roles=CANVAS_ROLES["teacher"], sub="boss-lands")
    token = parse_qs(urlsplit(boss.headers["Location"]).query)["lt"][0]
    with app.test_request_context():
        notice = notice_token("The course roster could not be updated: test", "warning")
    forward = http.get(f"{live_server}/app/", params={"lt": token, NOTICE_PARAM: notice, "landed": "1"},
                       allow_redirects=False)
    assert forward.status_code == 303 and urlsplit(forward.headers["Location"]).path == "/team/queue"
    queue = http.get(live_server + forward.headers["Location"])
    assert "The course roster could not be updated: test" in queue.text
    watcher, _, _ = platform.launch(http, live_server, roles=CANVAS_ROLES["observer"], sub="observer-lands")
    home = http.get(live_server + watcher.headers["Location"])
    assert urlsplit(home.url).path == "/app/" and '<dd data-testid="role">Observer</dd>' in home.text


def _csp(response):
    return dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";")
                if part.strip())


def test_pages_may_be_framed_where_launches_came_from(live_server, platform, registered, http):
    """Canvas frames the tool from the institution's domain (neither its issuer nor its login endpoint): the
    origins a validated launch came from join the CSP frame-ancestors and form-action lists."""
    school = "https://school.instructure.example"
    resp, _, _ = platform.launch(
        http, live_server, roles=CANVAS_ROLES["teacher"],
        claims=lambda b: {**b, "https://purl.imsglobal.org/spec/lti/claim/launch_presentation": {
            "document_target": "iframe", "return_url": school + "/courses/1/external_content/success"}})
    page = http.get(live_server + resp.headers["Location"])
    csp = _csp(page)
    assert school in csp["frame-ancestors"] and platform.base in csp["frame-ancestors"]
    assert school in csp["form-action"]
    assert "https://elsewhere.example" not in csp["frame-ancestors"]
    assert "*" not in csp["frame-ancestors"].split()


def test_protocol_endpoints_may_be_framed_by_any_platform(live_server, platform, http):
    """A refused first launch from a platform nobody registered yet must still show its message in the frame."""
    resp, _ = platform.login(http, live_server, iss="https://unknown.example")
    assert resp.status_code == 400
    assert _csp(resp)["frame-ancestors"] == "*"


def test_a_login_that_carries_a_session_token_still_works(live_server, platform, registered, http):
    """A page's token on the login URL (the language is chosen before views, from the session): the login still
    makes its first statement itself, outside a transaction (found by the fuzz test on PostgreSQL)."""
    resp, _, _ = platform.launch(http, live_server, sub="token-on-login")
    token = parse_qs(urlsplit(resp.headers["Location"]).query)["lt"][0]
    login = http.get(live_server + "/lti/login", params={
        "iss": platform.issuer, "login_hint": "token-on-login", "target_link_uri": live_server + "/lti/launch",
        "client_id": platform.client_id, "lt": token, "area": "-3.1e16"}, allow_redirects=False)
    assert login.status_code == 302 and login.headers["Location"].startswith(platform.base + "/auth?")
