"""Settings: chosen by LTI_TOOL_ENV, read from an environment mapping once; production refuses unsafe ones."""
import pytest

import config
from lti_tool import create_app
from lti_tool.extensions import db
from tests.conftest import DATABASE_URL

PROD = {"LTI_TOOL_ENV": "production", "SECRET_KEY": "a-real-secret", "DATABASE_URL": DATABASE_URL}


def _without(key):
    return {k: v for k, v in PROD.items() if k != key}


@pytest.fixture
def make_app(app):
    """create_app(settings) for another configuration on the test database; engines disposed afterwards."""
    made = []

    def make(settings):
        new = create_app(settings)
        made.append(new)
        return new

    yield make
    for other in made:
        with other.app_context():
            db.engine.dispose()


@pytest.mark.parametrize("env, message", [
    (_without("SECRET_KEY"), "Production needs SECRET_KEY"),
    (_without("DATABASE_URL"), "Production needs DATABASE_URL"),
    ({"LTI_TOOL_ENV": "production"}, "Production needs SECRET_KEY and DATABASE_URL"),
    (dict(PROD, DEV_LMS_ENABLED="1"), "The development LMS cannot be switched on in production"),
    (dict(PROD, DEV_LMS_ENABLED="true"), "The development LMS cannot be switched on in production"),
])
def test_production_refuses_to_start(env, message):
    settings = config.load(env)
    with pytest.raises(config.ConfigError, match=message):
        config.check(dict(settings))
    with pytest.raises(config.ConfigError, match=message):
        create_app(settings)


def test_production_ignores_the_development_defaults():
    settings = config.load({"LTI_TOOL_ENV": "production"})
    assert settings["SQLALCHEMY_DATABASE_URI"] is None and settings["SECRET_KEY"] is None
    assert settings["DEV_LMS_ENABLED"] is False


def test_unknown_environment_name():
    with pytest.raises(config.ConfigError, match="LTI_TOOL_ENV must be one of"):
        config.load({"LTI_TOOL_ENV": "staging"})


def test_production_app_has_no_development_lms(make_app):
    prod = make_app(config.load(PROD))
    client = prod.test_client()
    assert client.get("/dev/").status_code == 404
    assert client.get("/dev/jwks").status_code == 404
    assert "dev" not in prod.blueprints
    assert client.get("/lti/jwks").status_code == 200
    assert prod.config["PROXY_FIX_HOPS"] == 0, "no proxy is trusted unless the operator says so"
    assert prod.config["LTI_OUTBOUND_ALLOW"] == (), "production calls no internal address by default"


def test_development_lms_is_served_in_testing_and_can_be_switched_off(make_app, client):
    assert client.get("/dev/").status_code == 200
    off = make_app(config.load({"LTI_TOOL_ENV": "testing", "DATABASE_URL": DATABASE_URL,
                                "DEV_LMS_ENABLED": "0"}))
    assert off.test_client().get("/dev/").status_code == 404


@pytest.mark.parametrize("given, expected", [
    ("postgres://u:p@db.example.org:5432/tool", "postgresql+psycopg://u:p@db.example.org:5432/tool"),
    ("postgresql://u@127.0.0.1/tool", "postgresql+psycopg://u@127.0.0.1/tool"),
    ("postgresql+psycopg://u@127.0.0.1/tool", "postgresql+psycopg://u@127.0.0.1/tool"),
    ("sqlite:////tmp/tool.sqlite3", "sqlite:////tmp/tool.sqlite3"),
])
def test_database_url_is_normalised_to_psycopg3(given, expected):
    assert config.normalise_database_url(given) == expected
    assert config.load({"LTI_TOOL_ENV": "production", "DATABASE_URL": given})["SQLALCHEMY_DATABASE_URI"] == expected


def test_development_defaults_to_a_sqlite_file_under_instance():
    settings = config.load({})
    assert settings["NAME"] == "development"
    assert settings["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{config.INSTANCE_DIR / 'development.sqlite3'}"
    assert settings["DEV_LMS_ENABLED"] is True


def test_values_read_from_the_environment_mapping():
    settings = config.load(dict(PROD, TOOL_BASE_URL="https://tool.example.org/", PROXY_FIX_HOPS="2",
                                LTI_HTTP_TIMEOUT="2.5"))
    assert settings["SECRET_KEY"] == "a-real-secret"
    assert settings["TOOL_BASE_URL"] == "https://tool.example.org"
    assert settings["PROXY_FIX_HOPS"] == 2
    assert settings["LTI_HTTP_TIMEOUT"] == 2.5
    # load() hands back a fresh dict: nothing leaks between two calls.
    assert config.load(PROD)["PROXY_FIX_HOPS"] == 0


def test_outbound_allow_list_is_read_and_checked():
    settings = config.load(dict(PROD, LTI_OUTBOUND_ALLOW="10.0.0.0/8, 192.168.1.5", LTI_HTTP_MAX_BYTES="1000"))
    assert settings["LTI_OUTBOUND_ALLOW"] == ("10.0.0.0/8", "192.168.1.5")
    assert settings["LTI_HTTP_MAX_BYTES"] == 1000
    assert config.check(settings) is settings
    assert config.load({"LTI_TOOL_ENV": "testing"})["LTI_OUTBOUND_ALLOW"] == ("127.0.0.1",)
    with pytest.raises(config.ConfigError, match="LTI_OUTBOUND_ALLOW"):
        config.check(config.load(dict(PROD, LTI_OUTBOUND_ALLOW="intranet.example.org")))
