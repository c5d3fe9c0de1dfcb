"""Issue 10 through real HTTP and real launches: no input makes a 500 (ids past the database's range, digits
that are not ASCII, NUL, absurd hours, claims of the wrong type or length, bodies over the limit), downloads for
names outside Latin-1, CSV cells that are never formulas, attachments in a sandbox, one-time submission keys,
one live CE record per activity, the session token bound to the launch's browser cookie and its absolute
lifetime, and the per-client limit on anonymous logins."""
import csv
import io
import re
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from lti_tool import tool_session
from lti_tool.extensions import db
from lti_tool.lti import login_limit, storage
from lti_tool.models import Course, Evidence, FormSubmission, LtiStoreEntry, Person, Registration, ReviewRequest
from lti_tool.models.base import utcnow
from lti_tool.services.csv_cells import FORMULA_START
from tests.support.advantage import AdvantagePlatform
from tests.support.platform import CANVAS_ROLES, CLAIM
from tests.test_technician_pages import counts, good_form, launch

FORMULA = '=HYPERLINK("https://evil.example/phish","Open your record")'
POLYGLOT = b"%PDF-1.7\n<html><body><script>alert(document.domain)</script></body></html>\n%%EOF\n"


@pytest.fixture
def tech(app, live_server, platform, registered, http):
    from lti_tool.models import CourseFramework
    from lti_tool.services import frameworks

    portal = launch(app, live_server, platform, http, "tech-1")
    with app.app_context():
        framework = frameworks.ensure_default_framework()
        course = db.session.scalars(select(Course)).one()
        db.session.add(CourseFramework(course_id=course.id, framework_id=framework.id))
        db.session.commit()
    return portal


@pytest.fixture
def manager(app, live_server, platform, tech):
    with requests.Session() as other:
        yield launch(app, live_server, platform, other, "manager-1", CANVAS_ROLES["teacher"])


def _is_page(resp, status):
    assert resp.status_code == status, resp.text[:500]
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "Content-Security-Policy" in resp.headers and resp.headers["X-Content-Type-Options"] == "nosniff"
    return resp.text


# --- ids and digits ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/credentials/status/2147483648", "/credentials/status/99999999999999999999",
                                  "/credentials/status/%D9%A3", "/credentials/status/%C2%B2",
                                  "/transcripts/people/2147483648"])
def test_ids_past_the_database_range_or_not_ascii_are_readable_404s(live_server, http, app, path):
    text = _is_page(http.get(live_server + path), 404)
    assert "Not found" in text


def test_ids_in_forms_and_queries(tech, app):
    for path in ("/me/evidence/2147483648", "/me/evidence/%D9%A3"):
        assert tech.get(path).status_code == 404
    for raw in ("²", "٣", "2147483648", "99999999999999999999999"):
        assert tech.get("/me/evidence/new/cross_training", competency=raw).status_code == 200
    before = counts(app)
    for raw in ("٣", "2147483648"):
        form = {**good_form(app, "cross_training"), "competency_ids": [raw]}
        resp = tech.post("/me/evidence/new/cross_training", form)
        assert "Choose competencies from the list." in _is_page(resp, 400)
    assert counts(app) == before


def test_matrix_query_numbers(manager):
    for raw in ("²", "٣", "2147483648"):
        resp = manager.get("/team/", page=raw, area=raw)
        assert "Not a number." in _is_page(resp, 400)


def test_admin_setting_refuses_digits_that_are_not_ascii(app, live_server, platform, registered, http):
    admin = launch(app, live_server, platform, http, "admin-1", CANVAS_ROLES["account_admin"])
    for raw in ("٣٠", "²", "99999999999"):
        resp = _admin_post(admin, raw)
        assert "whole number of days" in _is_page(resp, 400)


def _admin_post(admin, raw):
    page = admin.get("/admin/settings")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return admin.post("/admin/settings/revalidation", {"revalidation_warning_days": raw, "csrf_token": token},
                      csrf=False)


# --- NUL and broken Unicode ----------------------------------------------------------------------------------

def test_nul_in_a_form_field_is_refused_and_writes_nothing(tech, app):
    before = counts(app)
    resp = tech.post("/me/evidence/new/cross_training", {**good_form(app, "cross_training"), "title": "IV\x00room"})
    assert "cannot be stored" in _is_page(resp, 400)
    assert counts(app) == before


def test_nul_in_lti_parameters(live_server, http, registered, platform, count_rows):
    resp = http.get(live_server + "/lti/login", params={"iss": platform.issuer + "\x00", "login_hint": "x"})
    assert "cannot be stored" in _is_page(resp, 400)
    resp = http.post(live_server + "/lti/launch/complete", data={"pending": "a\x00b", "state": "s"})
    _is_page(resp, 400)
    resp = http.post(live_server + "/verify", json={"credential": "eyJ\u0000"})
    assert resp.status_code == 400 and resp.json()["error"]["status"] == 400
    assert count_rows() == {"people": 0, "courses": 0, "memberships": 0}


@pytest.mark.parametrize("pairs, refused", [
    ([("a", "1"), ("a", "2"), ("b", "x y")], False),
    ([("a", "1"), ("a", "2\x00")], True),  # the second of a repeated field
    ([("a\x00", "1")], True),  # a field name
    ([("a", "\ud800")], True),
])
def test_every_key_and_value_of_a_form_is_checked(pairs, refused):
    from werkzeug.datastructures import MultiDict

    from lti_tool.guards import _multidict_unstorable

    assert _multidict_unstorable(MultiDict(pairs)) is refused


# --- hours ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("hours, message", [("1e308", "At most 2080 hours."), ("1" * 40, "At most 2080 hours."),
                                            ("NaN", "Enter hours as a number."),
                                            ("1e-999999999", "steps of 0.25")])
def test_hours_that_are_no_number_of_hours(tech, app, hours, message):
    before = counts(app)
    resp = tech.post("/me/evidence/new/cross_training", {**good_form(app, "cross_training"), "hours": hours})
    assert message in _is_page(resp, 400)
    assert counts(app) == before


# --- launch claims -------------------------------------------------------------------------------------------

CONTEXT = CLAIM + "context"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"


@pytest.mark.parametrize("change", [
    {CONTEXT: "course-1"},
    {CLAIM + "custom": "target=competency:1"},
    {AGS: "https://lms.example.org/lineitems"},
    {CLAIM + "launch_presentation": "https://lms.example.org/return"},
    {CLAIM + "resource_link": ["link-1"]},
    {"sub": "s" * 300},
    {"name": "N" * 400},
    {"email": "e" * 390 + "@example.org"},
    {CONTEXT: {"id": "c" * 300, "title": "IV room"}},
    {CONTEXT: {"id": "course-1", "title": "T" * 600}},
    {CONTEXT: {"id": ["course-1"]}},
    {AGS: {"lineitems": 7, "scope": []}},
    {"name": "Tess\u0000Nguyen"},
], ids=lambda c: next(iter(c)).rsplit("/", 1)[-1])
def test_claims_of_the_wrong_type_or_too_long_are_refused_writing_nothing(live_server, http, platform, registered,
                                                                         count_rows, change):
    resp, _, _ = platform.launch(http, live_server, claims=lambda body: {**body, **change})
    text = _is_page(resp, 400)
    assert "The LMS sent a launch the tool cannot use" in text
    assert count_rows() == {"people": 0, "courses": 0, "memberships": 0}


def test_a_numeric_context_id_still_launches(live_server, http, platform, registered, count_rows):
    resp, _, _ = platform.launch(http, live_server, claims=lambda body: {**body, CONTEXT: {"id": 12345}})
    assert resp.status_code == 303, resp.text
    assert count_rows() == {"people": 1, "courses": 1, "memberships": 1}


def test_dynamic_registration_with_a_200_character_issuer_host(live_server, http, platform, app, monkeypatch):
    from tests.test_dynamic_registration import new_link

    host = "lms-" + "a" * 196 + ".example.edu"
    original = platform.openid_configuration
    config_url = platform.base + "/.well-known/openid-configuration"
    monkeypatch.setattr(platform, "openid_configuration", lambda: {**original(), "issuer": f"https://{host}"})
    resp = http.post(live_server + "/lti/register", data={
        "link": new_link(app), "openid_configuration": config_url, "registration_token": platform.registration_token})
    assert resp.status_code == 200, resp.text[:500]
    with app.app_context():
        row = db.session.scalars(select(Registration).where(Registration.issuer == f"https://{host}")).one()
        assert len(row.name) <= 200 and row.name.startswith("Moodle lms-aaa")

    monkeypatch.setattr(platform, "openid_configuration", lambda: {**original(), "issuer": "https://" + "b" * 600})
    resp = http.post(live_server + "/lti/register", data={
        "link": new_link(app), "openid_configuration": config_url, "registration_token": platform.registration_token})
    assert 400 <= resp.status_code < 500 and "longer than the tool accepts" in resp.text
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Registration)) == 1


# --- 413 ---------------------------------------------------------------------------------------------------

def test_a_body_over_the_limit_gets_the_tools_413_page(live_server, http, app):
    too_big = b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    resp = http.post(live_server + "/verify", data={"credential": too_big})
    text = _is_page(resp, 413)
    assert "larger than the tool accepts (16 MB at most)" in text
    resp = http.post(live_server + "/verify", data=too_big, headers={"Content-Type": "application/json",
                                                                     "Accept": "application/json"})
    assert resp.status_code == 413 and resp.json()["error"]["status"] == 413


def test_an_upload_over_the_limit_inside_a_session(tech, app):
    before = counts(app)
    files = {"files": ("scan.pdf", b"%PDF-1.7\n" + b"0" * app.config["MAX_CONTENT_LENGTH"], "application/pdf")}
    resp = tech.post("/me/evidence/new/cross_training", good_form(app, "cross_training"), files=files)
    assert "Too large" in _is_page(resp, 413)
    assert counts(app) == before


# --- downloads -----------------------------------------------------------------------------------------------

def test_transcript_downloads_for_a_name_outside_latin_1(app, live_server, platform, registered, http):
    portal = launch(app, live_server, platform, http, "tech-zh")
    platform.launch(http, live_server, sub="tech-zh", name="张伟 Ελένη Иван")
    with app.app_context():
        person_id = db.session.scalars(select(Person.id).where(Person.sub == "tech-zh")).one()
    for fmt in ("csv", "json", "pdf-letter"):
        resp = portal.get(f"/transcripts/people/{person_id}/download/{fmt}")
        assert resp.status_code == 200, resp.text[:300]
        disposition = resp.headers["Content-Disposition"]
        disposition.encode("latin-1")
        assert disposition.startswith("attachment; filename=")
        assert "filename*=UTF-8''transcript-%E5%BC%A0%E4%BC%9F" in disposition


# --- CSV cells -----------------------------------------------------------------------------------------------

def _cells(text):
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def test_formulas_in_evidence_and_names_are_text_in_every_csv(tech, manager, app, platform, http, live_server):
    form = {**good_form(app, "cross_training"), "title": FORMULA, "trainer_name": "+1-555-0100", "action": "submit"}
    assert tech.post("/me/evidence/new/cross_training", form).status_code == 303
    platform.launch(http, live_server, sub="tech-1", name="@SUM(1+1)*cmd|' /C calc'!A0")
    with app.app_context():
        person_id = db.session.scalars(select(Person.id).where(Person.sub == "tech-1")).one()
        course_id = db.session.scalars(select(Course.id)).one()
    transcript = tech.get(f"/transcripts/people/{person_id}/download/csv").text
    matrix = manager.get(f"/transcripts/courses/{course_id}/matrix.csv").text
    for text in (transcript, matrix):
        assert not [c for c in _cells(text) if c.startswith(FORMULA_START)]
    assert "'" + FORMULA in _cells(transcript) and "'+1-555-0100" in _cells(transcript)
    assert "'@SUM(1+1)*cmd|' /C calc'!A0" in _cells(matrix)


def test_moodle_csv_export_is_inert_and_reimports_unchanged(app_ctx):
    from lti_tool.services import framework_io
    from lti_tool.services.frameworks import export_framework
    from tests.support.competency_world import make_framework

    fw, _ = make_framework(code="=fw", competencies=[{"code": "-A1", "title": "=1+2"},
                                                     {"code": "B2", "title": "@SUM(A1)", "description": "+x"}])
    exported = export_framework(None, fw.id, "moodle-csv")
    assert not [c for c in _cells(exported) if c.startswith(FORMULA_START)]
    assert " =1+2" in _cells(exported)  # a leading space, which Moodle's importer keeps as plain text
    parsed = framework_io.parse(exported.encode(), filename="x.csv")
    assert parsed.framework["code"] == "=fw"
    assert {(n.data["code"], n.data["title"], n.data.get("description")) for n in parsed.nodes} == {
        ("-A1", "=1+2", None), ("B2", "@SUM(A1)", "+x")}


# --- attachments ---------------------------------------------------------------------------------------------

def test_a_pdf_html_polyglot_is_served_as_a_sandboxed_pdf(tech, manager, app):
    form = {**good_form(app, "cross_training"), "action": "submit"}
    resp = tech.post("/me/evidence/new/cross_training", form, files={"files": ("evil.html", POLYGLOT, "text/html")})
    assert resp.status_code == 303, resp.text[:500]
    with app.app_context():
        from lti_tool.models import Attachment

        att = db.session.scalars(select(Attachment)).one()
        evidence_id, att_id = att.evidence_id, att.id
    view = manager.get(f"/team/attachments/{att_id}")
    assert view.status_code == 200 and view.headers["Content-Type"] == "application/pdf"
    assert view.headers["Content-Security-Policy"].startswith("sandbox;")
    assert view.headers["Content-Disposition"] == "inline; filename=evil.pdf"
    download = manager.get(f"/team/attachments/{att_id}", download="1")
    assert download.headers["Content-Disposition"] == "attachment; filename=evil.pdf"
    own = tech.get(f"/me/evidence/{evidence_id}/attachments/{att_id}")
    assert own.headers["Content-Disposition"] == "attachment; filename=evil.pdf"
    assert own.headers["Content-Security-Policy"].startswith("sandbox;")


def test_new_window_link_opens_its_file_only(tech, manager, app):
    form = {**good_form(app, "cross_training"), "action": "submit"}
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    assert tech.post("/me/evidence/new/cross_training", form,
                     files={"files": ("scan.png", png, "image/png")}).status_code == 303
    with app.app_context():
        request_id = db.session.scalars(select(ReviewRequest.id)).one()
    page = manager.get(f"/team/review/{request_id}")
    link = re.search(r'href="([^"]*/team/attachments/\d+\?lt=[^"]+)" target="_blank"', page.text).group(1)
    link = link.replace("&amp;", "&")
    with requests.Session() as elsewhere:  # a new top-level window: the frame's partitioned cookie is not sent
        assert elsewhere.get(manager.base + link).status_code == 200
        token = parse_qs(urlsplit(link).query)["lt"][0]
        other = elsewhere.get(manager.base + "/team/", params={"lt": token})
        assert "open the tool" in _is_page(other, 401).lower()


# --- one-time submission keys and CE uniqueness ------------------------------------------------------------

def _key(portal, path="/me/evidence/new/cross_training"):
    return re.search(r'name="submission_key" value="([^"]+)"', portal.get(path).text).group(1)


def test_form_pages_carry_a_fresh_key_each_time(tech):
    assert _key(tech) != _key(tech)


def test_a_second_submit_of_the_same_form_shows_the_first_result(tech, app):
    form = {**good_form(app, "cross_training"), "action": "submit", "submission_key": _key(tech)}
    first = tech.post("/me/evidence/new/cross_training", form)
    second = tech.post("/me/evidence/new/cross_training", form)
    assert first.status_code == second.status_code == 303
    assert urlsplit(first.headers["Location"]).path == urlsplit(second.headers["Location"]).path
    assert "was saved and sent for review" in tech.follow(second).text
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Evidence)) == 1
        assert db.session.scalar(select(func.count()).select_from(ReviewRequest)) == 1


def test_parallel_identical_submits_make_one_item(tech, app):
    form = {**good_form(app, "cross_training"), "action": "submit", "submission_key": _key(tech),
            "csrf_token": tech.csrf()}
    results = []

    def post():
        with requests.Session() as s:
            s.cookies.update(tech.http.cookies)
            results.append(s.post(tech.url("/me/evidence/new/cross_training"), params={"lt": tech.token},
                                  data=form, allow_redirects=False))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [r.status_code for r in results] == [303] * 6, [r.text[:300] for r in results if r.status_code != 303]
    assert len({urlsplit(r.headers["Location"]).path for r in results}) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Evidence)) == 1
        assert db.session.scalar(select(func.count()).select_from(ReviewRequest)) == 1


def test_a_refused_first_submit_leaves_the_key_usable(tech, app):
    key = _key(tech)
    bad = {**good_form(app, "cross_training"), "hours": "0.3", "submission_key": key}
    assert tech.post("/me/evidence/new/cross_training", bad).status_code == 400
    good = {**good_form(app, "cross_training"), "submission_key": key}
    assert tech.post("/me/evidence/new/cross_training", good).status_code == 303
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Evidence)) == 1


def test_the_database_keeps_one_live_record_of_a_ce_activity(make):
    course = make.course()
    person = make.person(course.registration)

    def ce(status="draft", course_id=course.id):
        db.session.add(Evidence(person_id=person.id, course_id=course_id, kind="continuing_education",
                                title="Sterile compounding update", data={"uan": "0197-0000-24-001-L07-T"},
                                status=status, ce_uan="0197-0000-24-001-L07-T"))
        db.session.flush()

    ce(status="withdrawn")
    ce()  # a withdrawn record does not block recording the activity again
    ce(course_id=make.course(course.registration).id)  # nor does another course's record
    with pytest.raises(IntegrityError):
        ce()


def test_two_tabs_recording_one_ce_activity_get_one_record(tech, app):
    form = {**good_form(app, "continuing_education"),
            "submission_key": _key(tech, "/me/evidence/new/continuing_education")}
    assert tech.post("/me/evidence/new/continuing_education", form).status_code == 303
    again = {**form, "submission_key": _key(tech, "/me/evidence/new/continuing_education")}
    resp = tech.post("/me/evidence/new/continuing_education", again)
    assert "already recorded this activity" in _is_page(resp, 400)
    with app.app_context():
        rows = db.session.scalars(select(Evidence.ce_uan)).all()
    assert rows == [form["uan"]]


# --- the session token -----------------------------------------------------------------------------------

def _link_from(page) -> str:
    return re.search(r'href="(/me/[^"]*\?lt=[^"]+)"', page.text).group(1).replace("&amp;", "&")


def test_a_copied_link_opens_nothing_in_another_browser(tech):
    page = tech.get("/me/")  # this browser shows the launch's cookie: from now on its tokens require it
    assert page.status_code == 200 and tech.http.cookies.get(tool_session.BROWSER_COOKIE)
    link = _link_from(page)
    assert tech.http.get(tech.url(link)).status_code == 200
    with requests.Session() as elsewhere:
        text = _is_page(elsewhere.get(tech.url(link)), 401)
        assert "Please open the tool from your course" in text
        elsewhere.cookies.set(tool_session.BROWSER_COOKIE, "another-browsers-cookie")
        _is_page(elsewhere.get(tech.url(link)), 401)


def test_a_browser_that_keeps_no_cookie_still_works(app, live_server, platform, registered):
    with requests.Session() as http:
        portal = launch(app, live_server, platform, http, "tech-safari")
        http.cookies.clear()  # like Safari in a third-party frame
        page = http.get(portal.url("/app/"), params={"lt": portal.token})
        assert page.status_code == 200
        link = re.search(r'href="(/[^"]*\?lt=[^"]+)"', page.text).group(1).replace("&amp;", "&")
        assert http.get(portal.url(link)).status_code == 200


def test_the_session_ends_24_hours_after_the_launch(app, tech, live_server, http):
    with app.test_request_context():
        person = db.session.scalars(select(Person).where(Person.sub == "tech-1")).one()
        old = tool_session.issue(person, None, launched_at=int(time.time()) - 24 * 3600 - 60)
        fresh = tool_session.issue(person, None)
    assert http.get(live_server + "/app/", params={"lt": fresh}).status_code == 200
    text = _is_page(http.get(live_server + "/app/", params={"lt": old}), 401)
    assert "Your session has timed out" in text


# --- anonymous logins ----------------------------------------------------------------------------------------

def test_logins_are_limited_per_client_and_their_state_expires(app, live_server, platform, registered, http,
                                                              monkeypatch):
    monkeypatch.setitem(app.config, "LTI_LOGIN_LIMIT", 3)
    login_limit.reset()
    try:
        for _ in range(3):
            assert platform.login(http, live_server)[0].status_code == 302
        with app.app_context():
            stored = db.session.scalar(select(func.count()).select_from(LtiStoreEntry))
        refused, _ = platform.login(http, live_server)
        assert "Too many sign-ins" in _is_page(refused, 429)
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(LtiStoreEntry)) == stored
    finally:
        login_limit.reset()

    with app.app_context():
        storage.put("state-old", {"nonce": "n"}, -1)
        person = Person(registration_id=registered, sub="someone")
        db.session.add(person)
        db.session.flush()
        db.session.add(FormSubmission(key="k" * 32, person_id=person.id, created_at=utcnow().replace(year=2020)))
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["lti", "worker", "--once"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.get(LtiStoreEntry, "state-old") is None
        assert db.session.scalar(select(func.count()).select_from(FormSubmission)) == 0


# --- NRPS answering something other than JSON ---------------------------------------------------------------

class HtmlRosterPlatform(AdvantagePlatform):
    """An LMS behind a proxy that answers the roster request with its HTML login page."""

    def _advantage(self, request):
        if request.path == "/memberships/Course-1" and request.method == "GET":
            from werkzeug.wrappers import Response

            return Response("<html><body>Please sign in</body></html>", 200, mimetype="text/html")
        return super()._advantage(request)


def test_an_nrps_answer_that_is_not_json_is_recorded_on_the_course(app, live_server, http):
    adv = HtmlRosterPlatform(live_server + "/lti/jwks")
    try:
        with app.app_context():
            adv.register_in(db)
        nrps = {"https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
            "context_memberships_url": adv.nrps_url, "service_versions": ["2.0"]}}
        resp, _, _ = adv.launch(http, live_server, roles=CANVAS_ROLES["teacher"], sub="boss",
                                claims=lambda body: {**body, **nrps})
        assert resp.status_code == 303, resp.text[:500]
        page = http.get(live_server + resp.headers["Location"])
        assert page.status_code == 200 and "The course roster could not be updated" in page.text
        with app.app_context():
            assert "roster answer is not JSON" in db.session.scalars(select(Course)).one().roster_error
    finally:
        adv.close()
