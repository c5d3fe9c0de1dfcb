"""A returning user's login+launch in a handful of statements, and the per-process registration cache that makes
it possible: changes made elsewhere (another server process, the CLI) are seen at the very next login or launch.

Everything goes through real HTTP against the live server, with real RS256 id_tokens from the test platform.
"""
import secrets
import time
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, select, update

from lti_tool.extensions import db
from lti_tool.models import Deployment, Membership, Person, Registration, RegistryVersion
from lti_tool.models.upsert import insert
from tests.conftest import DATABASE_URL
from tests.support.platform import CANVAS_ROLES
from tests.support.statements import recorded_statements

# The budget for a returning user's login and launch together (the CSP header's registration query,
# being removed from every response separately, included).
MAX_STATEMENTS = 8
POSTGRES = DATABASE_URL.startswith("postgresql")


@pytest.fixture
def engine(app):
    with app.app_context():
        return db.engine


@pytest.fixture
def elsewhere():
    """A connection of its own, standing for another server process or the CLI: what it writes reaches the
    database (and the registry stamp, when it writes one) but not this process's cache."""
    other = create_engine(DATABASE_URL)
    yield other
    other.dispose()


def _write_stamp(conn):
    new = secrets.token_hex(16)
    stmt = insert(RegistryVersion.__table__, conn.dialect.name).values(id=1, stamp=new)
    conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_={"stamp": new}))


def _disable_deployments(conn, registration_id):
    conn.execute(update(Deployment.__table__).where(Deployment.__table__.c.registration_id == registration_id)
                 .values(active=False))


def test_returning_users_login_and_launch_take_at_most_8_statements(app, engine, live_server, platform, registered,
                                                                    http, count_rows):
    for _ in range(2):  # the first launch fetches the platform's keys, which changes the registration once
        resp, _, _ = platform.launch(http, live_server, sub="back-again")
        assert resp.status_code == 303, resp.text
    jwks_before = platform.jwks_requests
    with recorded_statements(engine) as seen:
        resp, _, _ = platform.launch(http, live_server, sub="back-again", name="Tess Nguyen-Ramos")
    assert resp.status_code == 303, resp.text
    assert len(seen) <= MAX_STATEMENTS, "\n".join(seen)
    lowered = [s.lower() for s in seen]
    # Registration and deployment come from the cache; the login writes nothing (its state is signed) and, with
    # the previous launch a moment ago, does not even read the registry stamp; the launch claims its nonce with one
    # INSERT ... ON CONFLICT DO NOTHING, which on PostgreSQL also reads the person, course and membership (a
    # data-modifying CTE).
    assert not any(s.startswith("select") and "from registrations" in s and "deployments" in s for s in lowered)
    assert not any("from deployments" in s for s in lowered)
    assert not any("registry_version" in s and "lti_store" not in s for s in lowered)
    store = [s for s in lowered if "lti_store" in s]
    assert len(store) == 1 and "insert into lti_store" in store[0] and "do nothing" in store[0]
    if POSTGRES:
        assert store[0].startswith("with claimed as") and "from people" not in store[0].split("join")[0]
        assert "left outer join memberships" in store[0]
    assert platform.jwks_requests == jwks_before  # no outbound call
    assert count_rows() == {"people": 1, "courses": 1, "memberships": 1}
    page = http.get(live_server + resp.headers["Location"])
    assert "Tess Nguyen-Ramos" in page.text


def _writes(seen) -> list[str]:
    """The statements that wrote people, courses, resource links or memberships."""
    return [s for s in (x.lower() for x in seen) if s.startswith(("insert", "update"))
            and any(f"into {t} " in s or f"update {t} " in s
                    for t in ("people", "courses", "resource_links", "memberships"))]


def test_a_launch_that_changes_nothing_writes_no_person_course_or_membership(app, engine, live_server, platform,
                                                                             registered, http):
    for _ in range(2):
        assert platform.launch(http, live_server, sub="same-again")[0].status_code == 303
    with recorded_statements(engine) as seen:
        resp, _, _ = platform.launch(http, live_server, sub="same-again")
    assert resp.status_code == 303, resp.text
    # The launch's nonce and one SELECT of the person, course, link and membership (on PostgreSQL one statement).
    assert len(seen) == (1 if POSTGRES else 2), "\n".join(seen)
    assert _writes(seen) == []


def test_a_membership_changed_by_another_process_is_put_right_by_the_next_launch(app, live_server, platform,
                                                                                 registered, http, elsewhere):
    assert platform.launch(http, live_server, sub="left-and-back")[0].status_code == 303
    with elsewhere.begin() as conn:  # the roster sync of another worker: the LMS had dropped the enrolment
        conn.execute(update(Membership.__table__).values(active=False))
    resp, _, _ = platform.launch(http, live_server, sub="left-and-back")
    assert resp.status_code == 303, resp.text
    with app.app_context():
        assert db.session.scalars(select(Membership.active)).all() == [True]


def test_a_role_change_in_the_lms_lands_at_the_next_launch(app, live_server, platform, registered, http):
    assert platform.launch(http, live_server, sub="promoted", roles=CANVAS_ROLES["student"])[0].status_code == 303
    resp, _, _ = platform.launch(http, live_server, sub="promoted", roles=CANVAS_ROLES["teacher"])
    assert resp.status_code == 303, resp.text
    with app.app_context():
        assert db.session.scalars(select(Membership.role)).all() == ["manager"]


def test_the_last_launch_is_written_again_once_older_than_the_touch_window(app, live_server, platform, registered,
                                                                           http, monkeypatch):
    def last_launches():
        with app.app_context():
            return (db.session.scalar(select(Person.last_launch_at)),
                    db.session.scalar(select(Membership.last_launch_at)))

    assert platform.launch(http, live_server, sub="regular")[0].status_code == 303
    first = last_launches()
    assert platform.launch(http, live_server, sub="regular")[0].status_code == 303
    assert last_launches() == first  # within the window: nothing written
    monkeypatch.setitem(app.config, "LTI_LAUNCH_TOUCH_SECONDS", 0)
    assert platform.launch(http, live_server, sub="regular")[0].status_code == 303
    later = last_launches()
    assert later[0] > first[0] and later[1] > first[1]


def test_a_new_course_and_person_are_created_by_the_launch(live_server, platform, registered, http, count_rows):
    resp, _, _ = platform.launch(http, live_server, sub="first-timer", context_id="brand-new-course",
                                 roles=CANVAS_ROLES["teacher"])
    assert resp.status_code == 303, resp.text
    assert count_rows() == {"people": 1, "courses": 1, "memberships": 1}
    landed = http.get(live_server + resp.headers["Location"])
    assert urlsplit(landed.url).path == "/team/queue", "a manager lands on the review queue"


def test_an_absent_name_keeps_the_stored_one_and_a_new_title_is_stored(app, live_server, platform, registered,
                                                                       http):
    platform.launch(http, live_server, sub="keeps-name", name="Ana Ruiz")
    resp, _, _ = platform.launch(
        http, live_server, sub="keeps-name", claims=lambda c: {
            **{k: v for k, v in c.items() if k != "name"},
            "https://purl.imsglobal.org/spec/lti/claim/context": {"id": "course-1", "title": "Sterile Compounding"}})
    assert resp.status_code == 303, resp.text
    page = http.get(live_server + resp.headers["Location"]).text
    assert "Ana Ruiz" in page and "Sterile Compounding" in page


def test_a_deployment_disabled_by_another_process_is_refused_at_the_next_launch(live_server, platform, registered,
                                                                                http, elsewhere, count_rows):
    assert platform.launch(http, live_server, sub="t-1")[0].status_code == 303  # cached in this process now
    with elsewhere.begin() as conn:  # what the CLI or another worker's admin page does
        _disable_deployments(conn, registered)
        _write_stamp(conn)
    before = count_rows()
    resp, _, _ = platform.launch(http, live_server, sub="t-2")
    assert resp.status_code == 403
    assert "This deployment of the tool is disabled" in resp.text
    assert count_rows() == before


def test_a_change_behind_the_tools_back_is_seen_once_the_cached_copy_is_older_than_the_limit(
        app, live_server, platform, registered, http, elsewhere, monkeypatch):
    assert platform.launch(http, live_server, sub="t-1")[0].status_code == 303
    with elsewhere.begin() as conn:  # raw SQL: no new stamp
        _disable_deployments(conn, registered)
    monkeypatch.setitem(app.config, "LTI_REGISTRY_CACHE_SECONDS", 0)
    resp, _, _ = platform.launch(http, live_server, sub="t-2")
    assert resp.status_code == 403 and "This deployment of the tool is disabled" in resp.text


def test_a_registration_removed_by_another_process_is_refused_at_the_next_login(live_server, platform, registered,
                                                                                http, elsewhere, app, monkeypatch):
    monkeypatch.setitem(app.config, "LTI_LOGIN_STAMP_SECONDS", 0)  # every login reads the stamp
    assert platform.launch(http, live_server, sub="t-1")[0].status_code == 303
    with elsewhere.begin() as conn:  # moved to another client id, as `lti add-platform` would re-register it
        conn.execute(update(Registration.__table__).where(Registration.__table__.c.id == registered)
                     .values(client_id="retired-client"))
        _write_stamp(conn)
    resp, _ = platform.login(http, live_server)
    assert resp.status_code == 400
    assert "This LMS is not registered with the tool" in resp.text


def test_a_changed_login_endpoint_is_used_at_once(app, live_server, platform, registered, http, elsewhere,
                                                  monkeypatch):
    monkeypatch.setitem(app.config, "LTI_LOGIN_STAMP_SECONDS", 0)
    assert platform.launch(http, live_server, sub="t-1")[0].status_code == 303
    with elsewhere.begin() as conn:
        conn.execute(update(Registration.__table__).where(Registration.__table__.c.id == registered)
                     .values(auth_login_url=platform.base + "/auth?v=2"))
        _write_stamp(conn)
    resp, _ = platform.login(http, live_server)
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith(platform.base + "/auth?v=2&")


def test_a_login_right_after_a_launch_makes_no_query_and_sees_a_change_once_the_window_passed(
        app, engine, live_server, platform, registered, http, elsewhere, monkeypatch):
    monkeypatch.setitem(app.config, "LTI_LOGIN_STAMP_SECONDS", 0.5)
    for _ in range(2):  # the first launch fetches the platform's keys, which changes the registration once
        assert platform.launch(http, live_server, sub="t-1")[0].status_code == 303
    with recorded_statements(engine) as seen:
        resp, _ = platform.login(http, live_server)
    assert resp.status_code == 302 and seen == []
    with elsewhere.begin() as conn:
        conn.execute(update(Registration.__table__).where(Registration.__table__.c.id == registered)
                     .values(auth_login_url=platform.base + "/auth?v=3"))
        _write_stamp(conn)
    time.sleep(0.6)
    with recorded_statements(engine) as seen:
        resp, _ = platform.login(http, live_server)
    assert resp.headers["Location"].startswith(platform.base + "/auth?v=3&")
    assert seen[0].lower().startswith("select registry_version.stamp")
    # ... and a launch, whatever the window, checks the stamp in its own statement.
    assert platform.launch(http, live_server, sub="t-1")[0].status_code == 303


def test_a_change_made_through_the_tool_clears_this_process_cache(app, live_server, platform, registered, http):
    assert platform.launch(http, live_server, sub="t-1")[0].status_code == 303
    with app.app_context():
        db.session.get(Deployment, db.session.scalars(
            Deployment.__table__.select().where(Deployment.__table__.c.registration_id == registered)).first()
        ).active = False
        db.session.commit()
        assert len(app.extensions["lti_registry_cache"]) == 0
    resp, _, _ = platform.launch(http, live_server, sub="t-2")
    assert resp.status_code == 403


def test_launches_from_a_new_canvas_deployment_record_it_once(app, live_server, platform, http):
    with app.app_context():
        registration_id = platform.register_in(db, auto_deployments=True).id
    for sub in ("a", "b"):
        resp, _, _ = platform.launch(http, live_server, sub=sub, deployment_id="2:new-account")
        assert resp.status_code == 303, resp.text
    with app.app_context():
        rows = db.session.scalars(Deployment.__table__.select().where(
            Deployment.__table__.c.registration_id == registration_id,
            Deployment.__table__.c.deployment_id == "2:new-account")).all()
    assert len(rows) == 1


def test_upsert_returns_the_row_and_keeps_absent_values(app_ctx, make):
    from lti_tool.models import Person
    from lti_tool.models.upsert import upsert

    registration = make.registration()
    first = upsert(Person, ("registration_id", "sub"), {"registration_id": registration.id, "sub": "u-1",
                                                        "name": "Ana", "email": "ana@example.org"},
                   keep=("name", "email"))
    again = upsert(Person, ("registration_id", "sub"), {"registration_id": registration.id, "sub": "u-1",
                                                        "name": None, "email": "ana.r@example.org"},
                   keep=("name", "email"))
    assert again.id == first.id
    assert (again.name, again.email) == ("Ana", "ana.r@example.org")


@pytest.mark.postgres_only
def test_the_state_statement_relaxes_only_its_own_transactions_commit(app_ctx):
    from sqlalchemy import text

    from lti_tool.lti import storage

    storage.put("state-relaxed", {"nonce": "n"}, 60, relaxed_commit=True)
    assert db.session.scalar(text("SHOW synchronous_commit")) == "off"
    db.session.commit()
    assert db.session.scalar(text("SHOW synchronous_commit")) == "on"
    assert storage.take("state-relaxed") == {"nonce": "n"}
    assert storage.take("state-relaxed") is None  # single use


@pytest.mark.postgres_only
def test_idle_connections_the_server_dropped_are_replaced_before_use(app, elsewhere, monkeypatch):
    """Busy pooled connections are not pinged (a round trip per request); idle ones are, so a database restart
    or an idle timeout does not cost the next request an error."""
    from sqlalchemy import text

    from lti_tool import extensions

    with app.app_context():
        before = db.session.scalar(text("SELECT pg_backend_pid()"))
        db.session.remove()
    with elsewhere.begin() as conn:  # the server drops every connection of the tool's pool
        dropped = conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                                    "AND backend_type = 'client backend'")).scalars().all()
    assert dropped and all(dropped)
    monkeypatch.setattr(extensions, "IDLE_PING_SECONDS", 0)  # every pooled connection counts as idle now
    with app.app_context():
        try:
            assert db.session.scalar(text("SELECT pg_backend_pid()")) != before
        finally:
            db.session.remove()
            db.engine.dispose()  # the pool's other dropped connections, before the next test uses the pool


def test_a_process_with_an_older_copy_reads_the_keys_another_process_fetched(live_server, platform, registered,
                                                                              http):
    """Two server processes: the second cached the registration before the first fetched the platform's keys.
    It reads them from the database instead of fetching them again."""
    import threading

    from werkzeug.serving import make_server

    from lti_tool import create_app
    from tests.conftest import settings_for_tests

    second = create_app(settings_for_tests())
    server = make_server("127.0.0.1", 0, second, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    other = f"http://127.0.0.1:{server.server_port}"
    try:
        assert platform.login(http, other)[0].status_code == 302  # the second process caches the registration
        before = platform.jwks_requests
        assert platform.launch(http, live_server, sub="t-1")[0].status_code == 303  # the first fetches the keys
        assert platform.jwks_requests == before + 1
        resp, auth = platform.login(http, live_server)  # logged in at the first, launched at the second
        body = platform.claims(auth["nonce"], sub="t-2")
        body["https://purl.imsglobal.org/spec/lti/claim/target_link_uri"] = auth["redirect_uri"]
        resp = http.post(other + "/lti/launch", data={"id_token": platform.sign(body), "state": auth["state"]},
                         allow_redirects=False)
        assert resp.status_code == 303, resp.text
        assert platform.jwks_requests == before + 1
    finally:
        server.shutdown()
        with second.app_context():
            db.engine.dispose()


def test_a_first_launch_that_fails_half_way_leaves_nothing_behind(app, live_server, platform, registered, http,
                                                                  count_rows, monkeypatch):
    """The launch starts without a transaction (its nonce statement commits on its own) and opens one before its
    first write: a first launch's person, course and membership commit together with the stored status, or not
    at all."""
    from lti_tool.services import status_store

    def broken(person_ids):
        raise RuntimeError("the status store failed")

    monkeypatch.setattr(status_store, "touch_people", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    try:
        resp, _, _ = platform.launch(http, live_server, sub="half-way", context_id="course-half-way")
    finally:
        app.config["PROPAGATE_EXCEPTIONS"] = None
    assert resp.status_code == 500
    assert count_rows() == {"people": 0, "courses": 0, "memberships": 0}
    monkeypatch.undo()
    resp, _, _ = platform.launch(http, live_server, sub="half-way", context_id="course-half-way")
    assert resp.status_code == 303, resp.text
    assert count_rows() == {"people": 1, "courses": 1, "memberships": 1}


@pytest.mark.postgres_only
def test_postgresql_connections_run_without_jit(app_ctx):
    """JIT compiling costs more than the tool's queries take to run (see create_app)."""
    from sqlalchemy import text

    assert db.session.scalar(text("SHOW jit")) == "off"


@pytest.mark.postgres_only
def test_statements_run_again_and_again_are_planned_for_their_own_parameters(app_ctx):
    """psycopg prepares a statement it has run 5 times, and PostgreSQL may then reuse one generic plan for any
    parameters (the team matrix's "not started" filter: 77 -> 255 ms from its 11th request). The session's
    connections prepare nothing (see create_app)."""
    from sqlalchemy import text

    for n in range(12):
        db.session.execute(text("SELECT count(*) FROM people WHERE id = :n"), {"n": n})
    assert db.session.scalar(text("SELECT count(*) FROM pg_prepared_statements")) == 0


@pytest.mark.postgres_only
def test_the_launch_statement_run_on_the_driver_reads_what_the_session_reads(app_ctx, make):
    """models/driver.py: the launch's one statement, run straight on psycopg, gives the values and types the ORM
    loads (aware datetimes, JSON lists), claims its nonce once, and hands its connection back to the pool as the
    pool hands connections out (in a transaction by default, synchronous_commit on)."""
    from lti_tool.lti import storage, tool_conf
    from lti_tool.models import driver
    from lti_tool.services.launches import CLAIM, launch_rows_read

    member = make.member(make.course())
    member.lti_roles = ["Learner"]
    db.session.commit()
    course, person = member.course, member.person
    read = launch_rows_read(course.registration_id, {"sub": person.sub, CLAIM + "context": {"id": course.context_id}})

    def claim(nonce):
        return storage.claim(nonce, 60, also=tool_conf.stamp(), relaxed_commit=True, read=read)

    assert driver.usable()
    claimed, stamp, row = claim("nonce-driver-1")
    assert claimed and stamp == tool_conf.read_stamp()
    assert claim("nonce-driver-1") == (False, None, None), "a nonce is claimed once"
    assert (row["person_id"], row["course_id"], row["member_id"]) == (person.id, course.id, member.id)
    assert row["member_lti_roles"] == ["Learner"] and row["person_created_at"].tzinfo is not None
    with recorded_statements(db.engine) as seen:  # counted: the same statement through the session
        assert not driver.usable()
        claimed, _, counted = claim("nonce-driver-2")
    assert claimed and len(seen) == 1
    assert dict(counted) == row
    pooled = db.engine.raw_connection()
    try:
        assert pooled.driver_connection.autocommit is False
        assert pooled.driver_connection.prepare_threshold is None, "the session's statements are not prepared"
        with pooled.driver_connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on"
            cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%lti_store%'")
            assert cursor.fetchone()[0] == 1, "the launch statement is"
    finally:
        pooled.close()


@pytest.mark.postgres_only
def test_a_connection_that_broke_under_the_launch_statement_is_not_handed_out_again(app, elsewhere, monkeypatch):
    """The driver path (models/driver.py) bypasses SQLAlchemy's disconnect handling, so it does the same: a
    connection the server dropped while it counted as busy (no ping before use) fails that one launch and is
    thrown away with the pool's other connections (the server dropped them too), so the next launch works."""
    import psycopg
    from sqlalchemy import text

    from lti_tool import extensions
    from lti_tool.lti import storage, tool_conf
    from lti_tool.services.launches import launch_rows_read

    monkeypatch.setattr(extensions, "IDLE_PING_SECONDS", 3600)  # busy: handed out without a ping
    with app.app_context():
        db.session.scalar(text("SELECT 1"))  # one pooled connection, returned at remove()
        db.session.remove()
    with elsewhere.begin() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"))
    read = launch_rows_read(1, {"sub": "nobody"})
    with app.app_context():
        try:
            with pytest.raises(psycopg.OperationalError):
                storage.claim("nonce-broken-1", 60, also=tool_conf.stamp(), relaxed_commit=True, read=read)
            claimed, _, row = storage.claim("nonce-broken-2", 60, also=tool_conf.stamp(), relaxed_commit=True,
                                            read=read)
            assert claimed and row["person_id"] is None
        finally:
            db.session.remove()
            db.engine.dispose()
