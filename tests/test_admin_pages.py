"""The administrator's pages over HTTP, reached through real LTI launches from the test platform: every action's
success and refusal, the access matrix (technicians and managers get a readable 403), and tenancy (an
administrator of one registration never sees or changes another's)."""
import csv
import html
import io
import json
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import event, func, select

from lti_tool.extensions import db
from lti_tool.lti import keys
from lti_tool.models import (
    AuditEntry,
    Competency,
    Course,
    CourseFramework,
    Deployment,
    Framework,
    Membership,
    Person,
    Registration,
    ScoreOutbox,
    ToolKey,
)
from lti_tool.models.base import utcnow
from lti_tool.services import frameworks as framework_service
from lti_tool.web import csrf_token
from tests.support.platform import CANVAS_ROLES, CLAIM, MOODLE_ROLES, TestPlatform

DATA = Path(__file__).parent / "data"
SCALE = [{"code": "no", "label": "Not yet", "proficient": False}, {"code": "yes", "label": "Yes", "proficient": True}]
ADMIN_MESSAGE = "for the LMS administrator"


def native_file(code="LOCAL", version="1", n=2):
    return json.dumps({
        "format": "pharmacy-tech-pathways/framework",
        "framework": {"code": code, "name": "Local skills", "version": version, "scale": SCALE},
        "competencies": [{"code": f"L-{i}", "title": f"Local skill {i}"} for i in range(1, n + 1)],
    }).encode()


def plain(resp):
    """The response with `.page`: its text with HTML entities decoded (autoescaping turns ' into &#39;)."""
    resp.page = html.unescape(resp.text)
    return resp


class Browser:
    """A person's tool session over HTTP: the token from a real launch, carried on every request."""

    def __init__(self, app, http, base, token):
        self.app, self.http, self.base, self.token = app, http, base, token

    def get(self, path, **params):
        return plain(self.http.get(self.base + path, params={"lt": self.token, **params}, allow_redirects=False))

    def csrf(self):
        with self.app.test_request_context("/", query_string={"lt": self.token}):
            return csrf_token()

    def post(self, path, data=None, files=None, csrf=True, **params):
        data = dict(data or {})
        if csrf:
            data["csrf_token"] = self.csrf()
        return plain(self.http.post(self.base + path, params={"lt": self.token, **params}, data=data, files=files,
                                    allow_redirects=False))

    def follow(self, resp):
        assert resp.status_code == 303, resp.text[:2000]
        return plain(self.http.get(self.base + resp.headers["Location"], allow_redirects=False))


def launch(app, platform, http, base, roles, sub, **kw) -> Browser:
    resp, _, _ = platform.launch(http, base, roles=roles, sub=sub, **kw)
    assert resp.status_code == 303, resp.text[:2000]
    token = parse_qs(urlsplit(resp.headers["Location"]).query)["lt"][0]
    return Browser(app, http, base, token)


@pytest.fixture
def signing_key(app):
    with app.app_context():
        keys.ensure_published()


@pytest.fixture
def admin(app, platform, registered, signing_key, http, live_server):
    return launch(app, platform, http, live_server, CANVAS_ROLES["account_admin"], "admin-1")


@pytest.fixture
def manager(app, platform, registered, live_server):
    import requests
    with requests.Session() as s:
        yield launch(app, platform, s, live_server, CANVAS_ROLES["teacher"], "manager-1")


@pytest.fixture
def technician(app, platform, registered, live_server):
    import requests
    with requests.Session() as s:
        yield launch(app, platform, s, live_server, CANVAS_ROLES["student"], "tech-1")


@pytest.fixture(scope="module")
def other_platform():
    p = TestPlatform(issuer_path="/other-lms")
    yield p
    p.close()


@pytest.fixture
def other_registered(app, other_platform):
    other_platform.published = [other_platform.key]
    with app.app_context():
        row = other_platform.register_in(db)
        row.name = "Other hospital LMS"
        db.session.commit()
        return row.id


def audit_actions(app, action=None):
    with app.app_context():
        query = select(AuditEntry).order_by(AuditEntry.id)
        if action:
            query = query.where(AuditEntry.action == action)
        return [(a.action, a.registration_id, a.before, a.after) for a in db.session.scalars(query)]


def only_registration(app):
    with app.app_context():
        return db.session.scalars(select(Registration)).one()


def notice_of(page):
    found = re.search(r'<div class="notice notice-(\w+)" role="status">(.*?)</div>', page.page, re.S)
    return (found.group(1), found.group(2).strip()) if found else None


# --- Home: registration, deployments, URLs, keys ------------------------------------------------------------

def test_admin_home_shows_the_registration_deployments_urls_and_keys(app, admin, platform):
    page = admin.get("/admin/")
    assert page.status_code == 200
    text = page.page
    assert "Test platform" in text and platform.issuer in text and platform.client_id in text
    deployments = text.split('data-testid="deployments"')[1].split("</table>")[0]
    assert platform.deployment_id in deployments and "Active" in deployments
    # The admin's launch came through course-1: one course seen, launched just now.
    assert re.search(r'Courses seen">1</td>\s*<td data-label="Last launch"><time', deployments)
    assert "just now" in deployments
    assert admin.base + "/lti/login" in text and admin.base + "/lti/jwks" in text
    with app.app_context():
        kids = [k.kid for k in keys.published_keys()]
    assert kids and all(kid in text for kid in kids)
    assert "Signs now" in text and "lti rotate-key" in text
    assert "Rotate signing key" not in text and "Retire" not in text, "keys are the operator's, read-only here"
    assert "/lti/register" not in text and "registration link" in text
    assert 'aria-current="page">Administration<' in text, "the main nav marks the admin page"


def test_moodle_site_admin_and_an_admin_launched_outside_a_course_reach_the_pages(app, platform, registered, http,
                                                                                 live_server):
    moodle = launch(app, platform, http, live_server, MOODLE_ROLES["siteadmin"], "moodle-admin")
    assert moodle.get("/admin/").status_code == 200
    import requests
    with requests.Session() as s:
        outside = launch(app, platform, s, live_server, CANVAS_ROLES["account_admin"], "account-admin",
                         claims=lambda body: {k: v for k, v in body.items() if k != CLAIM + "context"})
        assert outside.get("/admin/").status_code == 200
        picker = outside.get("/admin/course-frameworks")
        assert picker.status_code == 200 and "Choose a course" in picker.page
        assert "IV Room Cross-Training" in picker.page  # the course the Moodle admin's launch created


# --- Access matrix ------------------------------------------------------------------------------------------

ADMIN_ROUTES = [
    ("GET", "/admin/", None),
    ("POST", "/admin/deployments/{deployment}/status", {"active": "0"}),
    ("POST", "/admin/scores/retry", {"all": "1"}),
    ("GET", "/admin/frameworks", None),
    ("POST", "/admin/frameworks/import", {}),
    ("GET", "/admin/frameworks/{framework}", None),
    ("GET", "/admin/frameworks/{framework}/export/case", None),
    ("GET", "/admin/frameworks/{framework}/export/moodle-csv", None),
    ("GET", "/admin/settings", None),
    ("POST", "/admin/settings/revalidation", {"revalidation_warning_days": "45"}),
    ("POST", "/admin/settings/time-zone", {"time_zone": "America/Chicago"}),
    ("POST", "/admin/settings/roles", {"role-Learner": "technician", "role-Instructor": "manager",
                                       "role-TeachingAssistant": "default", "role-ContentDeveloper": "default",
                                       "role-Mentor": "default", "role-Administrator": "default"}),
]


@pytest.fixture
def world_ids(app, registered):
    """A second deployment, a second key and a framework, so every admin route has something to act on."""
    with app.app_context():
        db.session.add(Deployment(registration_id=registered, deployment_id="2:second"))
        keys.ensure_published()
        keys.rotate()
        fw = Framework(code="FW", name="Framework", version="1", scale=SCALE, registration_id=registered,
                       identifier="5d8a2c4e-0c1f-4b7e-9a55-2f0e6d1c3b7a")
        db.session.add(fw)
        db.session.flush()
        db.session.add(Competency(framework_id=fw.id, code="C-1", title="Skill"))
        db.session.commit()
        dep = db.session.scalars(select(Deployment).where(Deployment.deployment_id == "2:second")).one()
        return {"deployment": dep.id, "kid": keys.published_keys()[0].kid, "framework": fw.id}


def _state(app):
    with app.app_context():
        return {
            "deployments": sorted(db.session.execute(select(Deployment.deployment_id, Deployment.active)).all()),
            "keys": sorted(db.session.execute(select(ToolKey.kid, ToolKey.retired_at)).all()),
            "frameworks": db.session.scalar(select(func.count()).select_from(Framework)),
            "settings": [(r.settings, r.role_mapping) for r in db.session.scalars(select(Registration))],
            "audit": db.session.scalar(select(func.count()).select_from(AuditEntry)),
        }


@pytest.mark.parametrize("who", ["technician", "manager"])
@pytest.mark.parametrize("method, path, data", ADMIN_ROUTES, ids=[f"{m} {p}" for m, p, _ in ADMIN_ROUTES])
def test_admin_pages_refuse_technicians_and_managers(request, app, world_ids, who, method, path, data):
    person = request.getfixturevalue(who)
    path = path.format(**world_ids)
    before = _state(app)
    if method == "GET":
        resp = person.get(path)
    else:
        form = {k: v.format(**world_ids) for k, v in (data or {}).items()}
        files = {"file": ("f.json", native_file())} if path.endswith("/import") else None
        resp = person.post(path, form, files=files)
    assert resp.status_code == 403
    assert "You do not have access to this page" in resp.page and ADMIN_MESSAGE in resp.page
    assert _state(app) == before


@pytest.mark.parametrize("method, path, data", ADMIN_ROUTES, ids=[f"{m} {p}" for m, p, _ in ADMIN_ROUTES])
def test_admin_pages_need_a_session(app, world_ids, http, live_server, method, path, data):
    url = live_server + path.format(**world_ids)
    resp = http.get(url) if method == "GET" else http.post(url, data=data or {})
    assert resp.status_code == 401


@pytest.mark.parametrize("method, path, data", ADMIN_ROUTES, ids=[f"{m} {p}" for m, p, _ in ADMIN_ROUTES])
def test_admin_pages_answer_the_admin(app, world_ids, admin, method, path, data):
    path = path.format(**world_ids)
    if method == "GET":
        resp = admin.get(path)
        assert resp.status_code == 200
    else:
        form = {k: v.format(**world_ids) for k, v in (data or {}).items()}
        files = {"file": ("f.json", native_file())} if path.endswith("/import") else None
        resp = admin.post(path, form, files=files)
        assert resp.status_code == 303, resp.page[:3000]


def test_course_frameworks_page_is_for_managers_and_admins(app, world_ids, technician, manager, admin):
    assert manager.get("/admin/course-frameworks").status_code == 200
    assert admin.get("/admin/course-frameworks").status_code == 200
    refused = technician.get("/admin/course-frameworks")
    assert refused.status_code == 403 and "for the course's managers and the LMS administrator" in refused.page
    posted = technician.post("/admin/course-frameworks", {"framework": str(world_ids["framework"])})
    assert posted.status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CourseFramework)) == 0


def test_posts_without_the_csrf_token_are_refused(app, admin):
    before = _state(app)
    resp = admin.post("/admin/settings/revalidation", {"revalidation_warning_days": "45"}, csrf=False)
    assert resp.status_code == 400 and "did not come from this tool" in resp.page
    assert _state(app) == before


# --- Deployments --------------------------------------------------------------------------------------------

def test_disable_and_enable_a_deployment(app, platform, registered, admin, live_server):
    with app.app_context():
        db.session.add(Deployment(registration_id=registered, deployment_id="2:second"))
        db.session.commit()
        main = db.session.scalars(select(Deployment).where(Deployment.deployment_id == platform.deployment_id)).one()
    done = admin.post(f"/admin/deployments/{main.id}/status", {"active": "0"})
    page = admin.follow(done)
    assert notice_of(page) == ("success", f"Deployment {platform.deployment_id} disabled: launches through it are "
                                          "refused until you enable it.")
    assert "Disabled" in page.page.split('data-testid="deployments"')[1].split("</table>")[0]
    with app.app_context():
        assert db.session.get(Deployment, main.id).active is False
    assert audit_actions(app, "deployment.disabled") == [
        ("deployment.disabled", registered, {"active": True}, {"active": False,
                                                               "deployment_id": platform.deployment_id})]

    import requests
    with requests.Session() as s:
        refused, _, _ = platform.launch(s, live_server, roles=CANVAS_ROLES["student"], sub="tech-x")
    assert refused.status_code == 403 and "has been disabled by an administrator" in refused.text

    page = admin.follow(admin.post(f"/admin/deployments/{main.id}/status", {"active": "1"}))
    assert "enabled: launches through it work again" in notice_of(page)[1]
    with app.app_context():
        assert db.session.get(Deployment, main.id).active is True
    assert [a[0] for a in audit_actions(app) if a[0].startswith("deployment.")] == [
        "deployment.disabled", "deployment.enabled"]


def test_the_last_active_deployment_cannot_be_disabled(app, platform, registered, admin):
    with app.app_context():
        main = db.session.scalars(select(Deployment)).one()
    resp = admin.post(f"/admin/deployments/{main.id}/status", {"active": "0"})
    assert resp.status_code == 400
    assert "only active deployment" in resp.page and 'role="alert"' in resp.page
    with app.app_context():
        assert db.session.get(Deployment, main.id).active is True
    assert audit_actions(app, "deployment.disabled") == []
    bad = admin.post(f"/admin/deployments/{main.id}/status", {"active": "maybe"})
    assert bad.status_code == 400


def test_a_disabled_deployment_is_not_recreated_by_auto_deployments(app, platform, registered, admin, live_server):
    """Canvas registrations record new deployment ids at launch; a disabled one must stay refused."""
    with app.app_context():
        reg = db.session.get(Registration, registered)
        reg.auto_deployments = True
        db.session.add(Deployment(registration_id=registered, deployment_id="2:second"))
        db.session.commit()
        main = db.session.scalars(select(Deployment).where(Deployment.deployment_id == platform.deployment_id)).one()
    admin.follow(admin.post(f"/admin/deployments/{main.id}/status", {"active": "0"}))
    import requests
    with requests.Session() as s:
        refused, _, _ = platform.launch(s, live_server, roles=CANVAS_ROLES["student"], sub="tech-y")
    assert refused.status_code == 403 and "disabled" in refused.text
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Deployment).where(
            Deployment.deployment_id == platform.deployment_id)) == 1


# --- Keys ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, data", [("/admin/keys/rotate", {}), ("/admin/keys/retire", {"kid": "{kid}"})])
def test_a_tenant_admin_cannot_rotate_or_retire_keys(app, admin, world_ids, path, data):
    """Keys are shared by every tenant of the installation: only the operator (CLI) changes them."""
    before = _state(app)
    resp = admin.post(path, {k: v.format(**world_ids) for k, v in data.items()})
    assert resp.status_code in (404, 405)
    assert _state(app) == before


def test_the_page_names_the_signing_key_and_waits_for_the_activation_delay(app, admin):
    """Production: a rotated key is published at once but signs a day later; the page shows which one signs."""
    from datetime import timedelta

    from lti_tool.models.base import utcnow

    with app.app_context():
        old = keys.published_keys()[0]
        old.created_at = utcnow() - timedelta(days=10)
        new = keys.rotate()
        db.session.commit()
        old_kid, new_kid = old.kid, new.kid
    app.config["LTI_KEY_ACTIVATION_DELAY"] = 24 * 3600
    try:
        table = admin.get("/admin/").page.split('data-testid="keys"')[1].split("</table>")[0]
    finally:
        app.config["LTI_KEY_ACTIVATION_DELAY"] = 0
    rows = {kid: row for kid in (old_kid, new_kid) for row in table.split("<tr>") if kid in row}
    assert "Signs now" in rows[old_kid] and "Signs now" not in rows[new_kid]
    assert "Published, does not sign" in rows[new_kid]


# --- Outbound health ------------------------------------------------------------------------------------------

def _outbox(app, registration_id, sub, *, status, attempts, error=None, context="course-1"):
    with app.app_context():
        course = db.session.scalars(select(Course).where(Course.registration_id == registration_id,
                                                         Course.context_id == context)).first()
        if course is None:
            course = Course(registration_id=registration_id, context_id=context, title="Other course")
            db.session.add(course)
            db.session.flush()
        person = Person(registration_id=registration_id, sub=sub, name=f"Tech {sub}")
        db.session.add(person)
        db.session.flush()
        now = utcnow()
        row = ScoreOutbox(registration_id=registration_id, course_id=course.id, person_id=person.id,
                          lineitem_url="https://lms.example.org/lineitems/1", payload={"userId": sub},
                          score_timestamp=now, status=status, attempts=attempts, last_error=error,
                          next_attempt_at=now + timedelta(hours=3))
        db.session.add(row)
        db.session.commit()
        return row.id


def test_health_lists_roster_failures_and_stuck_scores_and_retries_them(app, registered, admin):
    with app.app_context():
        course = db.session.scalars(select(Course)).one()
        course.roster_error = "The LMS refused the roster request (401)."
        db.session.commit()
    failed = _outbox(app, registered, "s-failed", status="failed", attempts=1, error="HTTP 400: bad score")
    slow = _outbox(app, registered, "s-slow", status="pending", attempts=5, error="HTTP 503")
    fresh = _outbox(app, registered, "s-fresh", status="pending", attempts=0)
    page = admin.get("/admin/")
    assert "The LMS refused the roster request (401)." in page.page
    stuck = page.page.split('data-testid="stuck-scores"')[1].split("</table>")[0]
    assert "Tech s-failed" in stuck and "Tech s-slow" in stuck and "Tech s-fresh" not in stuck
    assert "HTTP 400: bad score" in stuck and "Failed: not retried" in stuck and "Still retrying" in stuck
    assert "Problem:" in page.page

    empty = admin.post("/admin/scores/retry", {})
    assert empty.status_code == 400 and "Choose at least one score" in empty.page

    page = admin.follow(admin.post("/admin/scores/retry", {"score": str(failed)}))
    assert notice_of(page)[1].startswith("1 score queued")
    with app.app_context():
        row = db.session.get(ScoreOutbox, failed)
        assert row.status == "pending" and abs((row.next_attempt_at - utcnow()).total_seconds()) < 60
        assert db.session.get(ScoreOutbox, slow).next_attempt_at > utcnow() + timedelta(hours=2)
    entries = audit_actions(app, "score.retry")
    assert len(entries) == 1 and entries[0][2]["status"] == "failed" and entries[0][3]["status"] == "pending"

    # A retried score that is pending with one attempt is no longer stuck; "retry all" takes the slow one.
    page = admin.follow(admin.post("/admin/scores/retry", {"all": "1"}))
    assert notice_of(page)[1].startswith("1 score queued")
    with app.app_context():
        assert abs((db.session.get(ScoreOutbox, slow).next_attempt_at - utcnow()).total_seconds()) < 60
        assert db.session.get(ScoreOutbox, fresh).next_attempt_at > utcnow() + timedelta(hours=2)
    stuck = page.page.split('data-testid="stuck-scores"')[1].split("</table>")[0]
    assert "Tech s-slow" in stuck and "Queued to send now" in stuck and "Tech s-failed" not in stuck
    assert 'data-testid="overdue"' not in page.page

    # Nothing stuck, but a score long past its time: the worker is not running.
    with app.app_context():
        for row in db.session.scalars(select(ScoreOutbox)):
            row.status, row.attempts, row.next_attempt_at = "pending", 1, utcnow() - timedelta(hours=1)
        db.session.commit()
    page = admin.get("/admin/")
    assert "every score reached the gradebook or is on its way. 3 scores waiting to be sent." in page.page
    assert "3 scores should have been sent more than 10 minutes ago" in page.page
    assert "lti worker" in page.page


# --- Frameworks -----------------------------------------------------------------------------------------------

def test_import_native_case_and_moodle_files(app, registered, admin):
    for name, raw, fmt, count in [
        ("local.json", native_file(), "native", 2),
        ("case.json", (DATA / "case_plain_package.json").read_bytes(), "case", None),
        ("moodle.csv", (DATA / "moodle_framework_export.csv").read_bytes(), "moodle-csv", 4),
    ]:
        done = admin.post("/admin/frameworks/import", files={"file": (name, raw)})
        assert done.status_code == 303, done.page[:3000]
        page = admin.follow(done)
        assert page.status_code == 200
        assert f"from {name}" in notice_of(page)[1]
        with app.app_context():
            fw = db.session.scalars(select(Framework).order_by(Framework.id.desc())).first()
            assert fw.registration_id == registered
            total = db.session.scalar(select(func.count()).select_from(Competency).where(
                Competency.framework_id == fw.id))
        if count:
            assert total == count
        assert f'data-testid="competency-count">{total}<' in page.page
        imported = audit_actions(app, "framework.imported")[-1]
        assert imported[1] == registered and imported[3]["format"] == fmt
    listing = admin.get("/admin/frameworks")
    assert "Sterile Compounding Onboarding" in listing.page and "Hospital technician onboarding" in listing.page
    assert listing.page.count("Your organization") == 3


def test_import_with_a_version_and_a_clash(app, admin):
    assert admin.post("/admin/frameworks/import", files={"file": ("a.json", native_file())}).status_code == 303
    clash = admin.post("/admin/frameworks/import", files={"file": ("a.json", native_file())})
    assert clash.status_code == 400
    assert "already exists" in clash.page and "import it with another version" in clash.page
    again = admin.post("/admin/frameworks/import", {"version": "2"}, files={"file": ("a.json", native_file())})
    assert again.status_code == 303
    with app.app_context():
        assert sorted(db.session.scalars(select(Framework.version))) == ["1", "2"]


def test_a_bad_file_is_refused_with_every_problem_and_nothing_imported(app, admin):
    rows = list(csv.reader(io.StringIO((DATA / "moodle_framework_export.csv").read_text())))
    rows[2][2] = ""  # line 3: no short name
    rows[4][0] = "NOPE"  # line 5: an unknown parent
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL).writerows(rows)
    resp = admin.post("/admin/frameworks/import", files={"file": ("broken.csv", out.getvalue().encode())})
    assert resp.status_code == 400
    summary = resp.page.split('id="error-summary"')[1].split("</div>")[0]
    assert 'role="alert"' in resp.page
    assert "broken.csv: line 3, Short name:" in summary and "broken.csv: line 5, Parent ID number:" in summary
    assert 'href="#file"' in summary and 'aria-describedby="file-error"' in resp.page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Framework)) == 0
        assert db.session.scalar(select(func.count()).select_from(Competency)) == 0
    assert audit_actions(app) == []


@pytest.mark.parametrize("files, data, message", [
    (None, {}, "Choose a file to import."),
    ({"file": ("big.json", b" " * (5 * 1024 * 1024 + 1))}, {}, "larger than 5 MB"),
    ({"file": ("empty.csv", b"")}, {}, "The file is empty."),
    ({"file": ("x.json", b"{not json")}, {}, "Not valid JSON"),
    ({"file": ("a.json", native_file())}, {"version": "v" * 51}, "at most 50 characters"),
], ids=["no file", "too large", "empty", "not json", "long version"])
def test_import_refusals(app, admin, files, data, message):
    resp = admin.post("/admin/frameworks/import", data, files=files)
    assert resp.status_code == 400 and message in resp.page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Framework)) == 0


def test_export_case_and_moodle_csv_downloads(app, admin):
    with app.app_context():
        fw = framework_service.ensure_default_framework()
        db.session.commit()
        fw_id, code, version, total = fw.id, fw.code, fw.version, len(fw.competencies)
    case = admin.get(f"/admin/frameworks/{fw_id}/export/case")
    assert case.status_code == 200 and case.headers["Content-Type"].startswith("application/json")
    assert case.headers["Content-Disposition"] == f"attachment; filename={code}-{version}-case.json"
    package = case.json()
    assert package["CFDocument"]["title"] == "Pharmacy Technician" and len(package["CFItems"]) == total
    moodle = admin.get(f"/admin/frameworks/{fw_id}/export/moodle-csv")
    assert moodle.status_code == 200 and moodle.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert moodle.headers["Content-Disposition"] == f"attachment; filename={code}-{version}-moodle.csv"
    rows = list(csv.reader(io.StringIO(moodle.content.decode("utf-8"))))
    assert rows[0][1] == "ID number" and len(rows) == total + 2  # header, the framework row, competencies
    assert admin.get(f"/admin/frameworks/{fw_id}/export/pdf").status_code == 404


def test_framework_tree_page_query_count_does_not_grow_with_the_framework(app, admin):
    with app.app_context():
        big = framework_service.ensure_default_framework()
        db.session.commit()
        big_id = big.id
    admin.post("/admin/frameworks/import", files={"file": ("s.json", native_file(n=1))})
    with app.app_context():
        small_id = db.session.scalars(select(Framework.id).where(Framework.code == "LOCAL")).one()
    counts = {}
    for name, fw_id in (("small", small_id), ("big", big_id)):
        statements = []
        with app.app_context():
            engine = db.engine

        def record(conn, cursor, statement, params, context, executemany, into=statements):
            into.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            page = admin.get(f"/admin/frameworks/{fw_id}")
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert page.status_code == 200
        counts[name] = len([s for s in statements if "competencies" in s])
    assert counts["small"] == counts["big"] == 1
    assert "Sterile compounding" in page.page or "USP" in page.page


# --- Course frameworks ------------------------------------------------------------------------------------------

def test_a_manager_chooses_the_course_frameworks(app, registered, manager):
    with app.app_context():
        shipped = framework_service.ensure_default_framework()
        own = Framework(code="OWN", name="Own skills", version="1", scale=SCALE, registration_id=registered)
        db.session.add(own)
        db.session.commit()
        shipped_id, own_id = shipped.id, own.id
    page = manager.get("/admin/course-frameworks")
    assert "None chosen yet" in page.page and "Pharmacy Technician" in page.page and "Own skills" in page.page
    assert 'aria-label="Administration pages"' not in page.page, "managers get no admin sub-navigation"

    empty = manager.post("/admin/course-frameworks", {})
    assert empty.status_code == 400 and "Choose at least one" in empty.page and 'href="#frameworks"' in empty.page

    page = manager.follow(manager.post("/admin/course-frameworks", {"framework": [str(shipped_id), str(own_id)]}))
    assert "now uses: Own skills 1, Pharmacy Technician" in notice_of(page)[1]
    with app.app_context():
        assert sorted(db.session.scalars(select(CourseFramework.framework_id))) == sorted([shipped_id, own_id])
    chosen = audit_actions(app, "course.frameworks_chosen")
    assert chosen[-1][2] == {"framework_ids": []} and chosen[-1][3] == {"framework_ids": sorted([shipped_id,
                                                                                                  own_id])}
    current = page.page.split('data-testid="current-frameworks"')[1].split("</ul>")[0]
    assert "Own skills" in current and "Pharmacy Technician" in current


def test_a_manager_cannot_choose_for_another_course(app, registered, manager):
    with app.app_context():
        other = Course(registration_id=registered, context_id="course-2", title="Another course")
        db.session.add(other)
        db.session.commit()
        other_id = other.id
    resp = manager.get("/admin/course-frameworks", course=other_id)
    assert resp.status_code == 403 and "course you opened the tool from" in resp.page


def test_an_admin_chooses_for_any_course_of_the_tenant_only(app, registered, other_registered, admin):
    with app.app_context():
        mine = Course(registration_id=registered, context_id="course-9", title="Night shift")
        theirs = Course(registration_id=other_registered, context_id="course-1", title="Their course")
        fw = Framework(code="OWN", name="Own skills", version="1", scale=SCALE, registration_id=registered)
        db.session.add_all([mine, theirs, fw])
        db.session.commit()
        mine_id, theirs_id, fw_id = mine.id, theirs.id, fw.id
    picker = admin.get("/admin/course-frameworks", pick=1)
    assert "Night shift" in picker.page and "Their course" not in picker.page
    page = admin.follow(admin.post("/admin/course-frameworks", {"framework": str(fw_id)}, course=mine_id))
    assert "Night shift now uses: Own skills 1." == notice_of(page)[1]
    assert admin.get("/admin/course-frameworks", course=theirs_id).status_code == 404
    assert admin.post("/admin/course-frameworks", {"framework": str(fw_id)}, course=theirs_id).status_code == 404
    with app.app_context():
        assert db.session.scalars(select(CourseFramework.course_id)).all() == [mine_id]


# --- Settings -------------------------------------------------------------------------------------------------

def test_revalidation_window_is_saved_and_validated(app, registered, admin):
    page = admin.get("/admin/settings")
    assert 'value="30"' in page.page
    page = admin.follow(admin.post("/admin/settings/revalidation", {"revalidation_warning_days": "45"}))
    assert "45 days before their sign-off expires" in notice_of(page)[1] and 'value="45"' in page.page
    with app.app_context():
        assert db.session.get(Registration, registered).settings == {"revalidation_warning_days": 45}
    assert audit_actions(app, "settings.update") == [
        ("settings.update", registered, {}, {"revalidation_warning_days": 45})]
    for bad in ("0", "366", "abc", "", "12.5", "-3"):
        resp = admin.post("/admin/settings/revalidation", {"revalidation_warning_days": bad})
        assert resp.status_code == 400, bad
        assert "Enter a whole number of days from 1 to 365." in resp.page
        assert f'value="{bad}"' in resp.page and 'href="#revalidation_warning_days"' in resp.page
    with app.app_context():
        assert db.session.get(Registration, registered).settings == {"revalidation_warning_days": 45}
    assert len(audit_actions(app, "settings.update")) == 1


def test_time_zone_is_saved_validated_and_used_for_times_on_pages(app, registered, admin):
    page = admin.get("/admin/settings")
    assert '<option value="America/New_York" selected>' in page.page
    for bad in ("Mars/Olympus_Mons", "", "../../etc/passwd", "America/Chicago\x00"):
        resp = admin.post("/admin/settings/time-zone", {"time_zone": bad})
        assert resp.status_code == 400, bad
        # A NUL is refused before any view runs (lti_tool/guards.py), with its own message.
        assert ("cannot be stored" if "\x00" in bad else "Choose a time zone from the list") in resp.page
    with app.app_context():
        assert (db.session.get(Registration, registered).settings or {}).get("time_zone") is None
    page = admin.follow(admin.post("/admin/settings/time-zone", {"time_zone": "America/Los_Angeles"}))
    assert "America/Los Angeles time" in notice_of(page)[1]
    assert '<option value="America/Los_Angeles" selected>' in page.page
    assert audit_actions(app, "settings.update")[-1][3] == {"time_zone": "America/Los_Angeles"}
    # The admin home shows when keys were made: now in Pacific time.
    home = admin.get("/admin/")
    assert re.search(r"[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d\d [AP]M P[SD]T", home.page)


def test_role_mapping_is_saved_audited_and_applies_at_the_next_launch(app, platform, registered, admin, live_server):
    with app.app_context():
        reg = db.session.get(Registration, registered)
        reg.role_mapping = {"http://example.org/custom#Role": "observer"}
        db.session.commit()
    page = admin.get("/admin/settings")
    assert "Default (Manager)" in page.page and "http://example.org/custom#Role" in page.page
    choices = {f"role-{r}": "default" for r in
               ("Learner", "Instructor", "TeachingAssistant", "ContentDeveloper", "Mentor", "Administrator")}
    choices["role-TeachingAssistant"] = "technician"
    page = admin.follow(admin.post("/admin/settings/roles", choices))
    assert "applies from each person's next launch" in notice_of(page)[1]
    expected = {"http://example.org/custom#Role": "observer", "TeachingAssistant": "technician"}
    with app.app_context():
        assert db.session.get(Registration, registered).role_mapping == expected
    assert audit_actions(app, "registration.role_mapping") == [
        ("registration.role_mapping", registered, {"http://example.org/custom#Role": "observer"}, expected)]
    import requests
    with requests.Session() as s:
        ta = launch(app, platform, s, live_server, CANVAS_ROLES["ta"], "ta-1")
        landing = ta.follow(ta.get("/app/", landed="1"))
        assert landing.url.startswith(live_server + "/me/"), "a technician's launch landing"
    with app.app_context():
        roles = db.session.execute(select(Person.sub, Membership.role).join(Membership)).all()
        assert ("ta-1", "technician") in roles

    # Back to the default: the key goes, the other override stays.
    choices["role-TeachingAssistant"] = "default"
    admin.follow(admin.post("/admin/settings/roles", choices))
    with app.app_context():
        assert db.session.get(Registration, registered).role_mapping == {"http://example.org/custom#Role": "observer"}


def test_role_mapping_refuses_unknown_roles(app, registered, admin):
    choices = {f"role-{r}": "default" for r in
               ("Learner", "Instructor", "TeachingAssistant", "ContentDeveloper", "Mentor", "Administrator")}
    choices["role-Learner"] = "superuser"
    resp = admin.post("/admin/settings/roles", choices)
    assert resp.status_code == 400
    assert 'href="#role-Learner"' in resp.page and "Choose one of the listed tool roles for Learner" in resp.page
    assert 'aria-describedby="role-Learner-error"' in resp.page
    del choices["role-Mentor"]
    choices["role-Learner"] = "manager"
    missing = admin.post("/admin/settings/roles", choices)
    assert missing.status_code == 400 and "Choose a tool role for Mentor" in missing.page
    with app.app_context():
        assert db.session.get(Registration, registered).role_mapping is None
    assert audit_actions(app) == []


# --- Tenancy ------------------------------------------------------------------------------------------------

def test_an_admin_never_sees_or_changes_another_registration(app, platform, registered, other_platform,
                                                               other_registered, admin, live_server):
    import requests
    with requests.Session() as s:
        other_admin = launch(app, other_platform, s, live_server, CANVAS_ROLES["account_admin"], "admin-b")
    with app.app_context():
        db.session.add(Deployment(registration_id=other_registered, deployment_id="2:other-second"))
        theirs_fw = Framework(code="THEIRS", name="Their secret framework", version="1", scale=SCALE,
                              registration_id=other_registered)
        db.session.add(theirs_fw)
        course_b = db.session.scalars(select(Course).where(Course.registration_id == other_registered)).one()
        course_b.roster_error = "Their roster is broken"
        db.session.commit()
        dep_b = db.session.scalars(select(Deployment).where(Deployment.registration_id == other_registered)
                                   .order_by(Deployment.id)).first()
        dep_b_id, fw_b = dep_b.id, theirs_fw.id
    score_b = _outbox(app, other_registered, "their-tech", status="failed", attempts=2, error="Their error")

    mine = admin.get("/admin/").page
    assert platform.issuer in mine and other_platform.issuer not in mine and other_platform.client_id not in mine
    assert "Their roster is broken" not in mine and "Their error" not in mine and "2:other-second" not in mine
    theirs = other_admin.get("/admin/").page
    assert other_platform.issuer in theirs and platform.client_id not in theirs and "Their error" in theirs
    assert "Their secret framework" not in admin.get("/admin/frameworks").page
    assert "Their secret framework" in other_admin.get("/admin/frameworks").page

    before = _state(app)
    assert admin.post(f"/admin/deployments/{dep_b_id}/status", {"active": "0"}).status_code == 404
    assert admin.post("/admin/scores/retry", {"score": str(score_b)}).status_code == 404
    assert admin.get(f"/admin/frameworks/{fw_b}").status_code == 404
    assert admin.get(f"/admin/frameworks/{fw_b}/export/case").status_code == 404
    admin.follow(admin.post("/admin/scores/retry", {"all": "1"}))  # nothing of A's to retry; B's untouched
    assert _state(app) == before
    with app.app_context():
        assert db.session.get(ScoreOutbox, score_b).status == "failed"

    admin.follow(admin.post("/admin/settings/revalidation", {"revalidation_warning_days": "10"}))
    with app.app_context():
        assert db.session.get(Registration, other_registered).settings is None
        assert db.session.get(Registration, registered).settings == {"revalidation_warning_days": 10}
        entries = db.session.scalars(select(AuditEntry)).all()
        assert {e.registration_id for e in entries} == {registered}


def _statements_during(app, call):
    with app.app_context():
        engine = db.engine
    statements = []

    def record(conn, cursor, statement, params, context, executemany):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        resp = call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert resp.status_code == 200
    return len(statements)


def test_admin_home_query_count_does_not_grow_with_deployments_courses_or_scores(app, registered, admin):
    _outbox(app, registered, "s-0", status="failed", attempts=1)
    small = _statements_during(app, lambda: admin.get("/admin/"))
    with app.app_context():
        for n in range(15):
            dep = Deployment(registration_id=registered, deployment_id=f"dep-{n}")
            db.session.add(dep)
            db.session.flush()
            db.session.add(Course(registration_id=registered, context_id=f"ctx-{n}", title=f"Course {n}",
                                  deployment_id=dep.id, roster_error="NRPS answered 500"))
        db.session.commit()
    for n in range(1, 15):
        _outbox(app, registered, f"s-{n}", status="failed", attempts=1, context=f"ctx-{n}")
    page = admin.get("/admin/")
    assert page.page.count("NRPS answered 500") == 15 and page.page.count("Failed: not retried") == 15
    assert _statements_during(app, lambda: admin.get("/admin/")) == small


def test_an_administrator_publishes_a_framework_on_the_case_api(app, admin, manager, live_server, http):
    admin.post("/admin/frameworks/import", files={"file": ("s.json", native_file(n=1))})
    with app.app_context():
        fw = db.session.scalars(select(Framework).where(Framework.code == "LOCAL")).one()
        fw_id, ident = fw.id, fw.identifier
    package = f"{live_server}/ims/case/v1p1/CFPackages/{ident}"
    page = admin.get(f"/admin/frameworks/{fw_id}")
    assert 'data-testid="case-private"' in page.text and http.get(package).status_code == 404

    assert manager.post(f"/admin/frameworks/{fw_id}/public", {"public": "1"}).status_code == 403
    assert http.get(package).status_code == 404
    done = admin.follow(admin.post(f"/admin/frameworks/{fw_id}/public", {"public": "1"}))
    assert "is public" in done.page and 'data-testid="case-public"' in done.text
    assert http.get(package).json()["CFDocument"]["identifier"] == ident
    admin.follow(admin.post(f"/admin/frameworks/{fw_id}/public", {"public": "0"}))
    assert http.get(package).status_code == 404
    assert admin.post(f"/admin/frameworks/{fw_id}/public", {"public": "maybe"}).status_code == 400
