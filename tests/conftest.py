"""Fixtures: one app and schema per test session on SQLite or PostgreSQL (TEST_DATABASE_URL), tables emptied
after each test, a live HTTP server for the tool and a test LTI platform."""
import os
import tempfile
import threading

import pytest
import requests
from sqlalchemy import text
from werkzeug.serving import make_server

import config
from lti_tool import create_app
from lti_tool.extensions import db
from tests.support.platform import TestPlatform

_TMP = tempfile.mkdtemp(prefix="lti-tool-tests-")
DATABASE_URL = config.normalise_database_url(
    os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{_TMP}/test.sqlite3"
)
IS_POSTGRES = DATABASE_URL.startswith("postgresql")


def pytest_report_header(config):
    return f"database: {DATABASE_URL}"


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs PostgreSQL (set TEST_DATABASE_URL)")
    for item in items:
        if "postgres_only" in item.keywords and not IS_POSTGRES:
            item.add_marker(skip)


def test_settings(**extra) -> dict:
    settings = config.load({"LTI_TOOL_ENV": "testing", "DATABASE_URL": DATABASE_URL})
    settings["PROXY_FIX_HOPS"] = 0
    settings.update(extra)
    return settings


@pytest.fixture(scope="session")
def app():
    app = create_app(test_settings())
    with app.app_context():
        if IS_POSTGRES:
            db.session.execute(text("DROP TABLE IF EXISTS alembic_version"))
            db.session.commit()
        db.drop_all()
        db.create_all()
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_tables(request):
    yield
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    with app.app_context():
        db.session.rollback()
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        db.session.remove()


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield
        db.session.rollback()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def platform():
    p = TestPlatform()
    yield p
    p.close()


@pytest.fixture
def registered(app, platform):
    """The test platform registered in the tool (fresh for each test)."""
    platform.published = [platform.key]
    with app.app_context():
        row = platform.register_in(db)
        return row.id


@pytest.fixture
def http():
    with requests.Session() as s:
        yield s


@pytest.fixture
def count_rows(app):
    """count_rows() -> {table: rows} for the tables a launch may write."""

    def count():
        with app.app_context():
            return {t: db.session.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar()
                    for t in ("people", "courses", "memberships")}

    return count
