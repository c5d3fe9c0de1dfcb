"""LTI Dynamic Registration against the test platform's openid-configuration and registration endpoint, through
single-use registration links from the operator (the attacker's side is in test_tenant_boundary.py)."""
import re

import pytest
from sqlalchemy import func, select

from lti_tool.extensions import db
from lti_tool.lti.urls import SCOPES
from lti_tool.models import AuditEntry, Deployment, Registration, RegistrationLink

TOOL_CONF = "https://purl.imsglobal.org/spec/lti-tool-configuration"


@pytest.fixture
def config_url(platform):
    return platform.base + "/.well-known/openid-configuration"


@pytest.fixture
def link(app):
    """A fresh registration link's token, made the way the operator's CLI makes it."""
    return new_link(app)


def new_link(app, name=None, days=7):
    from lti_tool.lti import registration_links

    with app.app_context():
        _, token = registration_links.create(name, days)
        db.session.commit()
    return token


def _title(resp):
    return re.search(r"<title>(.*?)</title>", resp.text, re.S).group(1)


def _stored(app):
    with app.app_context():
        return (db.session.scalar(select(func.count()).select_from(Registration)),
                db.session.scalar(select(func.count()).select_from(Deployment)))


def test_get_shows_a_confirm_page_and_registers_nothing(live_server, platform, http, app, config_url, link):
    sent = len(platform.registration_requests)
    resp = http.get(live_server + "/lti/register", params={
        "link": link, "openid_configuration": config_url, "registration_token": platform.registration_token})
    assert resp.status_code == 200
    assert "Register Pharmacy Tech Pathways" in _title(resp)
    assert platform.issuer in resp.text
    assert f'name="registration_token" value="{platform.registration_token}"' in resp.text
    assert f'name="link" value="{link}"' in resp.text
    assert len(platform.registration_requests) == sent
    assert _stored(app) == (0, 0)


def test_post_registers_the_tool_and_a_launch_then_works(live_server, platform, http, app, config_url, count_rows):
    sent = len(platform.registration_requests)
    link = new_link(app, name="St. Mary's Moodle")
    resp = http.post(live_server + "/lti/register", data={
        "link": link, "openid_configuration": config_url, "registration_token": platform.registration_token})
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
    assert lti_conf["custom_parameters"] == {"timezone": "$Person.address.timezone"}, "the person's time zone"

    # What the tool stored.
    with app.app_context():
        row = db.session.scalars(select(Registration)).one()
        client_id = row.client_id
        assert client_id.startswith("dyn-")
        assert (row.issuer, row.auth_login_url, row.auth_token_url, row.jwks_url) == (
            platform.issuer, platform.base + "/auth", platform.base + "/token", platform.base + "/jwks")
        assert row.product_family == "moodle"
        assert row.name == "St. Mary's Moodle", "the operator's name for the link names the registration"
        assert [d.deployment_id for d in row.deployments] == ["7"]
        used = db.session.scalars(select(RegistrationLink)).one()
        assert used.used_at is not None and used.registration_id == row.id
        assert used.token_hash != link and link not in str(used.token_hash), "only the hash is stored"
        audit = db.session.scalars(select(AuditEntry)).one()
        assert (audit.action, audit.registration_id, audit.actor_role) == ("registration.created", row.id,
                                                                            "operator")
    assert client_id in resp.text

    # The page closes the LMS's registration window with org.imsglobal.lti.close.
    script = re.search(r'<script src="([^"]*registration_close\.js)"', resp.text)
    assert script, resp.text
    js = http.get(live_server + script.group(1))
    assert js.status_code == 200 and "org.imsglobal.lti.close" in js.text

    launch, _, _ = platform.launch(http, live_server, client_id=client_id, deployment_id="7", sub="dyn-user")
    assert launch.status_code == 303, launch.text
    assert count_rows() == {"people": 1, "courses": 1, "memberships": 1}


def test_registering_an_existing_issuer_and_client_id_again_is_refused(live_server, platform, http, app,
                                                                       config_url):
    """No registration ever replaces another: the second link's registration is refused, the first stays."""
    platform.registration_response = {"client_id": "dyn-fixed",
                                      TOOL_CONF: {"deployment_id": "7", "domain": "x"}}
    try:
        first = http.post(live_server + "/lti/register", data={
            "link": new_link(app), "openid_configuration": config_url,
            "registration_token": platform.registration_token})
        assert first.status_code == 200, first.text
        second_link = new_link(app)
        second = http.post(live_server + "/lti/register", data={
            "link": second_link, "openid_configuration": config_url,
            "registration_token": platform.registration_token})
    finally:
        platform.registration_response = None
    assert second.status_code == 409
    assert "already registered" in second.text and "never replaced" in second.text
    assert _stored(app) == (1, 1)
    with app.app_context():
        from lti_tool.lti import registration_links

        assert registration_links.usable(second_link) is not None, "a refused registration leaves its link unused"


def test_without_deployment_id_new_deployments_are_accepted_from_signed_launches(live_server, platform, http, app,
                                                                                 config_url):
    """Canvas answers without a deployment id; deployments appear when the tool is installed in a course."""
    platform.registration_response = {"client_id": "dyn-canvas", TOOL_CONF: {"domain": "x"}}
    try:
        resp = http.post(live_server + "/lti/register", data={
            "link": new_link(app), "openid_configuration": config_url,
            "registration_token": platform.registration_token})
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
def test_bad_configuration_url(live_server, http, app, url, reason, platform, link):
    for method in ("get", "post"):
        resp = getattr(http, method)(live_server + "/lti/register", **{
            "params" if method == "get" else "data": {"openid_configuration": url, "link": link}})
        assert resp.status_code == 400
        assert "Registration failed" in _title(resp)
        assert reason in resp.text
        assert "Traceback" not in resp.text
    assert _stored(app) == (0, 0)


def test_configuration_that_is_not_an_lti_platform(live_server, platform, http, app, link):
    resp = http.get(live_server + "/lti/register", params={"openid_configuration": platform.base + "/jwks",
                                                           "link": link})
    assert resp.status_code == 400
    assert "lacks issuer" in resp.text


def test_platform_refuses_the_registration(live_server, platform, http, app, config_url, link):
    resp = http.post(live_server + "/lti/register",
                     data={"openid_configuration": config_url, "registration_token": "wrong-token", "link": link})
    assert resp.status_code == 400
    assert "Registration failed" in _title(resp)
    assert "The LMS refused the registration (HTTP 401)" in resp.text
    assert "invalid_token" not in resp.text, "the platform's answer is never echoed"
    assert "What to do" in resp.text
    assert _stored(app) == (0, 0)


def test_platform_answer_without_client_id(live_server, platform, http, app, config_url, link):
    platform.registration_response = {"client_id": None}
    try:
        resp = http.post(live_server + "/lti/register", data={
            "openid_configuration": config_url, "registration_token": platform.registration_token, "link": link})
    finally:
        platform.registration_response = None
    assert resp.status_code == 400
    assert "has no client_id" in resp.text
    assert _stored(app) == (0, 0)


def test_without_a_valid_link_nothing_is_fetched_or_written(app, live_server, platform, http, config_url):
    """No link, a guessed one, an expired one or a used one: refused before any outbound call."""
    from datetime import timedelta

    from lti_tool.lti import registration_links
    from lti_tool.models.base import utcnow

    expired = new_link(app)
    with app.app_context():
        row = db.session.scalars(select(RegistrationLink)).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    fetched = platform.config_requests
    for token in (None, "guess", expired, "x" * 500):
        for method in ("get", "post"):
            values = {"openid_configuration": config_url, "registration_token": platform.registration_token}
            if token:
                values["link"] = token
            resp = getattr(http, method)(live_server + "/lti/register",
                                         **{"params" if method == "get" else "data": values})
            assert resp.status_code == 403, (token, method)
            assert "Registration failed" in _title(resp) and "registration-link" in resp.text
    assert platform.config_requests == fetched, "the tool fetched the configuration without a valid link"
    assert _stored(app) == (0, 0)
    with app.app_context():
        assert registration_links.listed()[0].used_at is None


def test_the_cli_prints_a_single_use_link_as_its_last_line(app, live_server, platform, http, config_url):
    result = app.test_cli_runner().invoke(args=["lti", "registration-link", "--name", "Our Moodle",
                                                "--expires-days", "3", "--base-url", live_server])
    assert result.exit_code == 0, result.output
    url = result.output.strip().splitlines()[-1]
    assert url.startswith(live_server + "/lti/register?link=")
    assert "Our Moodle" in result.output and "single use" in result.output
    done = http.post(url, data={"openid_configuration": config_url,
                                "registration_token": platform.registration_token})
    assert done.status_code == 200, done.text
    again = http.post(url, data={"openid_configuration": config_url,
                                 "registration_token": platform.registration_token})
    assert again.status_code == 403
    assert _stored(app) == (1, 1)
    listed = app.test_cli_runner().invoke(args=["lti", "registration-links"])
    assert "Our Moodle: used" in listed.output and url.split("=")[-1] not in listed.output
    with app.app_context():
        assert db.session.scalars(select(Registration)).one().name == "Our Moodle"


def test_an_unused_link_can_be_revoked(app):
    result = app.test_cli_runner().invoke(args=["lti", "registration-link"])
    link_id = result.output.split()[2].rstrip(":")
    token = result.output.strip().splitlines()[-1].split("link=")[-1]
    revoked = app.test_cli_runner().invoke(args=["lti", "revoke-registration-link", link_id])
    assert revoked.exit_code == 0, revoked.output
    from lti_tool.lti import registration_links

    with app.app_context():
        assert registration_links.usable(token) is None
        actions = [a.action for a in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == ["registration_link.created", "registration_link.revoked"]
