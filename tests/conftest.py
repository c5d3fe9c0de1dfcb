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


def settings_for_tests(**extra) -> dict:
    settings = config.load({"LTI_TOOL_ENV": "testing", "DATABASE_URL": DATABASE_URL})
    settings["PROXY_FIX_HOPS"] = 0
    settings.update(extra)
    return settings


@pytest.fixture(scope="session")
def app():
    app = create_app(settings_for_tests())
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


class Factory:
    """make.person(...), make.course(...), make.member(...): rows for service tests (inside app_ctx)."""

    def __init__(self):
        self._n = 0

    def _next(self):
        self._n += 1
        return self._n

    def registration(self, **kw):
        from lti_tool.models import Deployment, Registration

        n = self._next()
        row = Registration(name=kw.pop("name", f"LMS {n}"), issuer=kw.pop("issuer", f"https://lms{n}.example.org"),
                           client_id=kw.pop("client_id", f"client-{n}"),
                           auth_login_url=kw.pop("auth_login_url", "https://lms.example.org/auth"),
                           auth_token_url="https://lms.example.org/token",
                           jwks_url="https://lms.example.org/jwks", **kw)
        db.session.add(row)
        db.session.flush()
        db.session.add(Deployment(registration_id=row.id, deployment_id=f"dep-{n}"))
        db.session.flush()
        return row

    def person(self, registration=None, **kw):
        from lti_tool.models import Person

        registration = registration or self.registration()
        n = self._next()
        row = Person(registration_id=registration.id, sub=kw.pop("sub", f"sub-{n}"),
                     name=kw.pop("name", f"Person {n}"), email=kw.pop("email", f"person{n}@example.org"), **kw)
        db.session.add(row)
        db.session.flush()
        return row

    def course(self, registration=None, **kw):
        from lti_tool.models import Course

        registration = registration or self.registration()
        n = self._next()
        row = Course(registration_id=registration.id, context_id=kw.pop("context_id", f"ctx-{n}"),
                     title=kw.pop("title", f"Course {n}"), **kw)
        db.session.add(row)
        db.session.flush()
        return row

    def member(self, course, person=None, role="technician", **kw):
        """A Membership (creating the person in the course's tenant if not given)."""
        from lti_tool.models import Membership

        person = person or self.person(course.registration)
        row = Membership(person_id=person.id, course_id=course.id, role=role, lti_roles=[], **kw)
        db.session.add(row)
        db.session.flush()
        return row

    def actor(self, course, role="technician", person=None):
        """An Actor (services' acting user) with a fresh membership in `course`."""
        from lti_tool.services.actors import Actor

        membership = self.member(course, person, role)
        return Actor(person=membership.person, course=course, membership=membership)


@pytest.fixture
def make(app_ctx):
    return Factory()
