"""Complete login -> launch flows over real HTTP against the test platform."""
from urllib.parse import parse_qs, urlsplit

from tests.support.platform import CANVAS_ROLES


def test_login_redirects_to_platform_with_state_and_nonce(live_server, platform, registered, http):
    resp, auth = platform.login(http, live_server)
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith(platform.base + "/auth?")
    assert auth["client_id"] == platform.client_id
    assert auth["redirect_uri"] == live_server + "/lti/launch"
    assert auth["response_mode"] == "form_post" and auth["prompt"] == "none"
    assert auth["state"] and auth["nonce"]
    assert http.cookies.get("lti1p3-" + auth["state"]) == auth["state"]


def test_login_accepts_post(live_server, platform, registered, http):
    resp, auth = platform.login(http, live_server, method="POST")
    assert resp.status_code == 302 and auth["state"]


def test_complete_launch_lands_person_course_and_role(live_server, platform, registered, http, count_rows):
    resp, auth, body = platform.launch(http, live_server, roles=CANVAS_ROLES["teacher"], sub="t-1")
    assert resp.status_code == 303, resp.text
    page = http.get(live_server + resp.headers["Location"])
    assert page.status_code == 200
    assert "Tess Nguyen" in page.text
    assert ">Manager<" in page.text
    assert "IV Room Cross-Training" in page.text
    assert count_rows() == {"people": 1, "courses": 1, "memberships": 1}
    token = parse_qs(urlsplit(resp.headers["Location"]).query)["lt"][0]
    assert token


def test_second_launch_refreshes_name_and_email(live_server, platform, registered, http, count_rows, app):
    platform.launch(http, live_server, sub="s-1")
    resp, _, _ = platform.launch(http, live_server, sub="s-1", name="Tess Nguyen-Ramos",
                                 email="tess.nr@example.org")
    assert resp.status_code == 303
    page = http.get(live_server + resp.headers["Location"])
    assert "Tess Nguyen-Ramos" in page.text and "tess.nr@example.org" in page.text
    assert count_rows() == {"people": 1, "courses": 1, "memberships": 1}


def test_home_page_says_what_is_waiting(live_server, platform, registered, http):
    boss, _, _ = platform.launch(http, live_server, roles=CANVAS_ROLES["teacher"], sub="boss-glance")
    assert "0 review requests waiting in this course." in http.get(live_server + boss.headers["Location"]).text
    tech, _, _ = platform.launch(http, live_server, sub="tech-glance")
    assert "0 competencies held, 0 awaiting review." in http.get(live_server + tech.headers["Location"]).text


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
