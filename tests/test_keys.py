"""The tool's signing keys: /lti/jwks, rotation and retirement through the CLI, launches and client assertions
(verified by the test platform against the tool's published key set over HTTP) across a rotation."""
from types import SimpleNamespace

import pytest
from pylti1p3.service_connector import ServiceConnector
from sqlalchemy import func, select

from lti_tool.extensions import db
from lti_tool.lti.tool_conf import DbToolConf
from lti_tool.models import ToolKey
from lti_tool.models.base import utcnow

PRIVATE_PARTS = {"d", "p", "q", "dp", "dq", "qi"}


class UncachedConnector(ServiceConnector):
    """pylti1p3's connector as shipped, minus its token cache, so every call signs a fresh client assertion."""

    def _get_cached_access_token(self, scope_key):
        return None

    def _cache_access_token(self, scope_key, access_token, expires_in):
        pass


@pytest.fixture
def token_endpoint(platform, live_server):
    platform.tool_jwks_url = live_server + "/lti/jwks"
    platform.token_requests.clear()
    yield platform
    platform.tool_jwks_url = None


def _jwks(http, live_server):
    resp = http.get(live_server + "/lti/jwks")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"
    data = resp.json()
    assert set(data) == {"keys"} and isinstance(data["keys"], list), data
    for key in data["keys"]:
        assert isinstance(key, dict), "JWKS must not be wrapped twice"
        assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig" and key["kid"]
        assert not PRIVATE_PARTS & set(key), "private key material published"
    return [k["kid"] for k in data["keys"]]


def _cli(app, *args):
    result = app.test_cli_runner().invoke(args=["lti", *args])
    return result


def _access_token(app, platform):
    """Sign a client assertion with the tool's current key and exchange it at the platform's token endpoint."""
    with app.app_context():
        registration = DbToolConf().find_registration_by_params(platform.issuer, platform.client_id)
        kid = registration.get_kid()
        token = UncachedConnector(registration).get_access_token(["https://purl.imsglobal.org/spec/lti-ags/scope/score"])
    return kid, token


def test_a_fresh_install_publishes_one_key(app, live_server, http):
    kids = _jwks(http, live_server)
    assert len(kids) == 1
    assert _jwks(http, live_server) == kids, "the key must persist, not be made anew on each request"


def test_jwks_is_a_plain_key_set_with_every_published_key(app, app_ctx, live_server, http):
    from lti_tool.lti import keys

    first, second = keys.create_key(), keys.create_key()
    retired = keys.create_key()
    retired.retired_at = utcnow()
    db.session.commit()
    assert _jwks(http, live_server) == [first.kid, second.kid]


def test_rotation_keeps_launches_and_client_assertions_working(app, live_server, platform, registered, http,
                                                             token_endpoint):
    old_kid, token = _access_token(app, platform)
    assert token.startswith("at-")
    assert _jwks(http, live_server) == [old_kid]

    result = _cli(app, "rotate-key")
    assert result.exit_code == 0, result.output
    kids = _jwks(http, live_server)
    assert len(kids) == 2 and kids[0] == old_kid
    new_kid = kids[1]
    assert new_kid in result.output and old_kid in result.output

    # The newest key signs; the platform verifies it against the published set.
    kid, token = _access_token(app, platform)
    assert kid == new_kid and token.startswith("at-")
    assert [r["kid"] for r in platform.token_requests if r["ok"]] == [old_kid, new_kid]

    resp, _, _ = platform.launch(http, live_server)
    assert resp.status_code == 303, resp.text
    assert http.get(live_server + resp.headers["Location"]).status_code == 200

    # Retire the old key: it leaves the key set; signing and launching go on with the new one.
    result = _cli(app, "retire-key", old_kid)
    assert result.exit_code == 0, result.output
    assert _jwks(http, live_server) == [new_kid]
    kid, token = _access_token(app, platform)
    assert kid == new_kid and token.startswith("at-")
    resp, _, _ = platform.launch(http, live_server)
    assert resp.status_code == 303


def test_a_key_retired_too_early_breaks_assertions_signed_with_it(app, live_server, platform, registered,
                                                                   token_endpoint):
    """The platform really checks the tool's key set: the test above would notice a broken rotation."""
    from pylti1p3.exception import LtiServiceException

    with app.app_context():
        key = DbToolConf().find_registration_by_params(platform.issuer, platform.client_id)._signing_key()
        stale = SimpleNamespace(kid=key.kid, private_pem=key.private_pem)
        db.session.commit()
    assert _cli(app, "rotate-key").exit_code == 0
    assert _cli(app, "retire-key", stale.kid).exit_code == 0
    with app.app_context():
        registration = DbToolConf().find_registration_by_params(platform.issuer, platform.client_id)
        registration._key = stale
        with pytest.raises(LtiServiceException):
            UncachedConnector(registration).get_access_token(["scope"])
    assert platform.token_requests[-1]["ok"] is False


def test_refuses_to_retire_the_last_key(app, app_ctx, live_server, http):
    kids = _jwks(http, live_server)
    result = _cli(app, "retire-key", kids[0])
    assert result.exit_code != 0
    assert "Refusing to retire the only published key" in result.output
    assert _jwks(http, live_server) == kids


def test_retire_unknown_key(app):
    result = _cli(app, "retire-key", "no-such-kid")
    assert result.exit_code != 0 and "No key with kid no-such-kid" in result.output


def test_a_launch_creates_no_signing_key(app, live_server, platform, registered, http):
    """Launches do not sign anything; a refused or accepted launch must not generate keys."""
    resp, _, _ = platform.launch(http, live_server)
    assert resp.status_code == 303
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ToolKey)) == 0


def test_a_rotated_key_signs_only_after_the_activation_delay(app, app_ctx):
    """Platforms cache our JWKS: a new key is published at once but signs a day later (production setting)."""
    from datetime import timedelta

    from lti_tool.lti import keys as tool_keys
    from lti_tool.models.base import utcnow

    old = tool_keys.create_key()
    old.created_at = utcnow() - timedelta(days=30)
    new = tool_keys.rotate()
    published = {k["kid"] for k in tool_keys.jwks()["keys"]}
    assert {old.kid, new.kid} <= published
    app.config["LTI_KEY_ACTIVATION_DELAY"] = 24 * 3600
    try:
        assert tool_keys.signing_key().kid == old.kid, "the new key waits while platforms refresh their copy"
        assert tool_keys.signing_key(now=utcnow() + timedelta(days=1, minutes=1)).kid == new.kid
        tool_keys.retire(old.kid)
        assert tool_keys.signing_key().kid == new.kid, "retiring the old key hands signing over at once"
    finally:
        app.config["LTI_KEY_ACTIVATION_DELAY"] = 0
