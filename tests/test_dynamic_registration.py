"""LTI Dynamic Registration against the test platform's openid-configuration and registration endpoint."""
import re

import pytest
from sqlalchemy import func, select

from lti_tool.extensions import db
from lti_tool.lti.urls import SCOPES
from lti_tool.models import Deployment, Registration

TOOL_CONF = "https://purl.imsglobal.org/spec/lti-tool-configuration"


@pytest.fixture
def config_url(platform):
    return platform.base + "/.well-known/openid-configuration"


def _title(resp):
    return re.search(r"<title>(.*?)</title>", resp.text, re.S).group(1)


def _stored(app):
    with app.app_context():
        return (db.session.scalar(select(func.count()).select_from(Registration)),
                db.session.scalar(select(func.count()).select_from(Deployment)))


def test_get_shows_a_confirm_page_and_registers_nothing(live_server, platform, http, app, config_url):
    sent = len(platform.registration_requests)
    resp = http.get(live_server + "/lti/register",
                    params={"openid_configuration": config_url, "registration_token": platform.registration_token})
    assert resp.status_code == 200
    assert "Register Pharmacy Tech Pathways" in _title(resp)
    assert platform.issuer in resp.text
    assert f'name="registration_token" value="{platform.registration_token}"' in resp.text
    assert len(platform.registration_requests) == sent
    assert _stored(app) == (0, 0)


def test_post_registers_the_tool_and_a_launch_then_works(live_server, platform, http, app, config_url, count_rows):
    sent = len(platform.registration_requests)
    resp = http.post(live_server + "/lti/register",
                     data={"openid_configuration": config_url, "registration_token": platform.registration_token})
    assert resp.status_code == 200, resp.text
    assert "Registered" in _title(resp)

    # What the platform received: the tool's configuration.
    assert len(platform.registration_requests) == sent + 1
    sent_conf = platform.registration_requests[-1]
    assert sent_conf["initiate_login_uri"] == live_server + "/lti/login"
    assert sent_conf["redirect_uris"] == [live_server + "/lti/launch"]
    assert sent_conf["jwks_uri"] == live_server + "/lti/jwks"
    assert sent_conf["token_endpoint_auth_method"] == "private_key_jwt"
    assert set(sent_conf["grant_types"]) == {"implicit", "client_credentials"}
    assert sent_conf["response_types"] == ["id_token"]
    assert set(sent_conf["scope"].split()) == set(SCOPES)
    lti_conf = sent_conf[TOOL_CONF]
    assert lti_conf["domain"] == live_server.split("//", 1)[1]
    assert lti_conf["target_link_uri"] == live_server + "/lti/launch"
    messages = {m["type"]: m for m in lti_conf["messages"]}
    assert set(messages) == {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"}
    assert messages["LtiResourceLinkRequest"]["target_link_uri"] == live_server + "/lti/launch"
    assert {"sub", "iss", "name", "email"} <= set(lti_conf["claims"])

    # What the tool stored.
    with app.app_context():
        row = db.session.scalars(select(Registration)).one()
        client_id = row.client_id
        assert client_id.startswith("dyn-")
        assert (row.issuer, row.auth_login_url, row.auth_token_url, row.jwks_url) == (
            platform.issuer, platform.base + "/auth", platform.base + "/token", platform.base + "/jwks")
        assert row.product_family == "moodle"
        assert [d.deployment_id for d in row.deployments] == ["7"]
    assert client_id in resp.text

    # The page closes the LMS's registration window with org.imsglobal.lti.close.
    script = re.search(r'<script src="([^"]*registration_close\.js)"', resp.text)
    assert script, resp.text
    js = http.get(live_server + script.group(1))
    assert js.status_code == 200 and "org.imsglobal.lti.close" in js.text

    launch, _, _ = platform.launch(http, live_server, client_id=client_id, deployment_id="7", sub="dyn-user")
    assert launch.status_code == 303, launch.text
    assert count_rows() == {"people": 1, "courses": 1, "memberships": 1}


def test_registering_twice_updates_instead_of_duplicating(live_server, platform, http, app, config_url):
    platform.registration_response = {"client_id": "dyn-fixed",
                                      TOOL_CONF: {"deployment_id": "7", "domain": "x"}}
    try:
        for _ in range(2):
            resp = http.post(live_server + "/lti/register", data={
                "openid_configuration": config_url, "registration_token": platform.registration_token})
            assert resp.status_code == 200, resp.text
    finally:
        platform.registration_response = None
    assert _stored(app) == (1, 1)


def test_without_deployment_id_new_deployments_are_accepted_from_signed_launches(live_server, platform, http, app,
                                                                                 config_url):
    """Canvas answers without a deployment id; deployments appear when the tool is installed in a course."""
    platform.registration_response = {"client_id": "dyn-canvas", TOOL_CONF: {"domain": "x"}}
    try:
        resp = http.post(live_server + "/lti/register", data={
            "openid_configuration": config_url, "registration_token": platform.registration_token})
    finally:
        platform.registration_response = None
    assert resp.status_code == 200, resp.text
    assert _stored(app) == (1, 0)
    launch, _, _ = platform.launch(http, live_server, client_id="dyn-canvas", deployment_id="12:abc")
    assert launch.status_code == 303, launch.text
    assert _stored(app) == (1, 1)


@pytest.mark.parametrize("url, reason", [
    ("", "did not give an openid_configuration address"),
    ("not a url", "did not give an openid_configuration address"),
    ("ftp://127.0.0.1/config", "did not give an openid_configuration address"),
    ("http://127.0.0.1:9/.well-known/openid-configuration", "could not be read"),
])
def test_bad_configuration_url(live_server, http, app, url, reason, platform):
    for method in ("get", "post"):
        resp = getattr(http, method)(live_server + "/lti/register",
                                     **{"params" if method == "get" else "data": {"openid_configuration": url}})
        assert resp.status_code == 400
        assert "Registration failed" in _title(resp)
        assert reason in resp.text
        assert "Traceback" not in resp.text
    assert _stored(app) == (0, 0)


def test_configuration_that_is_not_an_lti_platform(live_server, platform, http, app):
    resp = http.get(live_server + "/lti/register", params={"openid_configuration": platform.base + "/jwks"})
    assert resp.status_code == 400
    assert "lacks issuer" in resp.text


def test_platform_refuses_the_registration(live_server, platform, http, app, config_url):
    resp = http.post(live_server + "/lti/register",
                     data={"openid_configuration": config_url, "registration_token": "wrong-token"})
    assert resp.status_code == 400
    assert "Registration failed" in _title(resp)
    assert "The LMS refused the registration (HTTP 401)" in resp.text
    assert "What to do" in resp.text
    assert _stored(app) == (0, 0)


def test_platform_answer_without_client_id(live_server, platform, http, app, config_url):
    platform.registration_response = {"client_id": None}
    try:
        resp = http.post(live_server + "/lti/register",
                         data={"openid_configuration": config_url, "registration_token": platform.registration_token})
    finally:
        platform.registration_response = None
    assert resp.status_code == 400
    assert "has no client_id" in resp.text
    assert _stored(app) == (0, 0)


def test_an_invite_guards_dynamic_registration(app, live_server, platform, http):
    """With LTI_REGISTRATION_INVITE set, only links carrying it may make the tool fetch and register a platform."""
    from sqlalchemy import func, select

    from lti_tool.extensions import db as _db
    from lti_tool.models import Registration

    config_url = platform.base + "/.well-known/openid-configuration"
    app.config["LTI_REGISTRATION_INVITE"] = "s3cret-invite"
    try:
        refused = http.get(live_server + "/lti/register", params={
            "openid_configuration": config_url, "registration_token": platform.registration_token})
        assert refused.status_code == 403 and "not valid for this tool" in refused.text
        wrong = http.post(live_server + "/lti/register", data={
            "openid_configuration": config_url, "registration_token": platform.registration_token,
            "invite": "guess"})
        assert wrong.status_code == 403
        with app.app_context():
            assert _db.session.scalar(select(func.count()).select_from(Registration)) == 0
        shown = http.get(live_server + "/lti/register", params={
            "openid_configuration": config_url, "registration_token": platform.registration_token,
            "invite": "s3cret-invite"})
        assert shown.status_code == 200 and 'name="invite" value="s3cret-invite"' in shown.text
        done = http.post(live_server + "/lti/register", data={
            "openid_configuration": config_url, "registration_token": platform.registration_token,
            "invite": "s3cret-invite"})
        assert done.status_code == 200 and "registration_close.js" in done.text
        landing = http.get(live_server + "/")
        assert "s3cret-invite" not in landing.text, "the public page never shows the invite"
        with app.test_request_context("/", base_url="https://tool.example.org"):
            from lti_tool.lti.urls import tool_urls

            assert tool_urls()["registration"] == "https://tool.example.org/lti/register?invite=s3cret-invite"
    finally:
        app.config["LTI_REGISTRATION_INVITE"] = None
