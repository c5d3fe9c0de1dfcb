"""The admin CLI scripts will call: `flask --app lti_tool lti ...`."""
import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.models import Registration
from tests.conftest import DATABASE_URL

CANVAS = ["--name", "Canvas (test)", "--issuer", "https://canvas.test.instructure.com", "--client-id", "10000000000042",
          "--auth-url", "https://sso.test.canvaslms.com/api/lti/authorize_redirect",
          "--token-url", "https://sso.test.canvaslms.com/login/oauth2/token",
          "--jwks-url", "https://sso.test.canvaslms.com/api/lti/security/jwks"]


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args):
        return runner.invoke(args=["lti", *args])

    return invoke


def _deployments(app, client_id="10000000000042"):
    with app.app_context():
        row = db.session.scalars(select(Registration).where(Registration.client_id == client_id)).one()
        return sorted(d.deployment_id for d in row.deployments)


def test_add_platform_with_several_deployments(cli, app):
    result = cli("add-platform", *CANVAS, "--deployment-id", "1:abc", "--deployment-id", "2:def")
    assert result.exit_code == 0, result.output
    assert "Added platform Canvas (test)" in result.output and "1:abc, 2:def" in result.output
    assert _deployments(app) == ["1:abc", "2:def"]
    with app.app_context():
        row = db.session.scalars(select(Registration)).one()
        assert row.auth_login_url == "https://sso.test.canvaslms.com/api/lti/authorize_redirect"
        assert row.jwks_url.endswith("/api/lti/security/jwks") and row.auth_token_url.endswith("/oauth2/token")

    # Running it again updates the registration and adds new deployments; nothing is duplicated.
    result = cli("add-platform", *CANVAS, "--deployment-id", "2:def", "--deployment-id", "3:ghi")
    assert result.exit_code == 0, result.output
    assert "Updated platform" in result.output
    assert _deployments(app) == ["1:abc", "2:def", "3:ghi"]


def test_changing_a_registrations_urls_is_audited_and_cannot_take_another_client_id(cli, app):
    from lti_tool.models import AuditEntry

    assert cli("add-platform", *CANVAS, "--deployment-id", "1:abc").exit_code == 0
    moved = [v.replace("sso.test.canvaslms.com/api/lti/security/jwks", "keys.example.edu/jwks") for v in CANVAS]
    result = cli("add-platform", *moved, "--deployment-id", "1:abc")
    assert result.exit_code == 0, result.output
    with app.app_context():
        entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [(e.action, e.actor_role) for e in entries] == [("registration.created", "operator"),
                                                               ("registration.urls_changed", "operator")]
        assert entries[1].before == {"jwks_url": "https://sso.test.canvaslms.com/api/lti/security/jwks"}
        assert entries[1].after == {"jwks_url": "https://keys.example.edu/jwks"}
    # Another issuer claiming the same client id at the same token endpoint would get this one's access tokens.
    thief = [v if v != "https://canvas.test.instructure.com" else "https://thief.example" for v in CANVAS]
    refused = cli("add-platform", *thief, "--deployment-id", "1:abc")
    assert refused.exit_code != 0 and "already belongs to another registration" in refused.output
    with app.app_context():
        assert len(db.session.scalars(select(Registration)).all()) == 1


def test_one_issuer_many_client_ids(cli, app):
    assert cli("add-platform", *CANVAS, "--deployment-id", "1:abc").exit_code == 0
    other = [v if v != "10000000000042" else "10000000000043" for v in CANVAS]
    assert cli("add-platform", *other, "--deployment-id", "1:abc").exit_code == 0
    with app.app_context():
        assert len(db.session.scalars(select(Registration)).all()) == 2


def test_add_platform_needs_a_deployment(cli, app):
    result = cli("add-platform", *CANVAS)
    assert result.exit_code == 2 and "--deployment-id" in result.output


@pytest.mark.parametrize("option", ["--issuer", "--auth-url", "--token-url", "--jwks-url"])
def test_add_platform_rejects_a_bad_url(cli, app, option):
    args = list(CANVAS)
    args[args.index(option) + 1] = "sso.test.canvaslms.com/no-scheme"
    result = cli("add-platform", *args, "--deployment-id", "1:abc")
    assert result.exit_code == 2
    assert "is not an http(s) URL" in result.output
    with app.app_context():
        assert db.session.scalars(select(Registration)).all() == []


def test_list_platforms_text_and_json(cli, app):
    assert "No platforms registered." in cli("list-platforms").output
    cli("add-platform", *CANVAS, "--deployment-id", "1:abc", "--deployment-id", "2:def")
    text = cli("list-platforms").output
    assert "Canvas (test)" in text and "https://canvas.test.instructure.com" in text and "1:abc, 2:def" in text
    data = json.loads(cli("list-platforms", "--json").output)
    assert len(data) == 1
    assert data[0]["issuer"] == "https://canvas.test.instructure.com"
    assert data[0]["client_id"] == "10000000000042"
    assert data[0]["deployments"] == ["1:abc", "2:def"]
    assert data[0]["jwks_url"] == "https://sso.test.canvaslms.com/api/lti/security/jwks"
    assert data[0]["role_mapping"] == {}


def test_show_config_prints_the_urls_and_how_to_get_a_registration_link(cli):
    result = cli("show-config", "--base-url", "https://tool.example.org")
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 6
    urls = [line.split()[-1] for line in lines[:5]]
    assert urls == ["https://tool.example.org/lti/login", "https://tool.example.org/lti/launch",
                    "https://tool.example.org/lti/launch", "https://tool.example.org/lti/jwks",
                    "https://tool.example.org/lti/config.json"]
    assert "OIDC login" in lines[0]
    assert "Dynamic registration" in lines[5] and "lti registration-link" in lines[5]


def test_show_config_defaults_to_tool_base_url(cli, app):
    assert "http://127.0.0.1:5000/lti/login" in cli("show-config").output


def test_add_deployment(cli, app):
    cli("add-platform", *CANVAS, "--deployment-id", "1:abc")
    key = ["--issuer", "https://canvas.test.instructure.com", "--client-id", "10000000000042"]
    result = cli("add-deployment", *key, "--deployment-id", "5:xyz")
    assert result.exit_code == 0 and "Added deployment 5:xyz" in result.output
    assert _deployments(app) == ["1:abc", "5:xyz"]
    again = cli("add-deployment", *key, "--deployment-id", "5:xyz")
    assert again.exit_code == 1 and "already registered" in again.output
    unknown = cli("add-deployment", "--issuer", "https://nowhere.example.org", "--client-id", "1",
                  "--deployment-id", "1")
    assert unknown.exit_code == 1 and "No registration" in unknown.output


def test_the_real_flask_command(app):
    """The console entry point scripts use, reading its settings from the environment."""
    env = dict(os.environ, LTI_TOOL_ENV="testing", DATABASE_URL=DATABASE_URL, SECRET_KEY="cli-test")
    flask = [sys.executable, "-m", "flask", "--app", "lti_tool", "lti"]
    added = subprocess.run([*flask, "add-platform", *CANVAS, "--deployment-id", "1:abc", "--deployment-id", "2:d"],
                           env=env, capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    listed = subprocess.run([*flask, "list-platforms", "--json"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[0]["deployments"] == ["1:abc", "2:d"]
