"""The administrator's import page over real HTTP after real launches (check, import, undo; who may use it) and
the operator's CLI `flask records import FILE [--dry-run]`."""
import html
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import func, select

from lti_tool.extensions import db
from lti_tool.lti import keys
from lti_tool.models import Course, CourseFramework, ImportBatch, Person, Registration, SignOff
from lti_tool.web import csrf_token
from tests.support.competency_world import make_framework
from tests.support.platform import CANVAS_ROLES

FILE = (b"Technician email,Technician name,Competency code,Date assessed,Assessor name,Assessor role\r\n"
        b"nora@example.org,Nora New,IV-GARB,1/15/2024,Dana Lee,Pharmacist\r\n"
        b"nora@example.org,Nora New,CEN-CART,2024-02-01,Dana Lee,Pharmacist\r\n")


class Page:
    def __init__(self, app, base, token):
        self.app, self.base, self.token, self.http = app, base, token, requests.Session()

    def _plain(self, resp):
        resp.page = html.unescape(resp.text)
        return resp

    def get(self, path, **params):
        return self._plain(self.http.get(self.base + path, params={"lt": self.token, **params},
                                         allow_redirects=False))

    def post(self, path, data=None, files=None):
        with self.app.test_request_context("/", query_string={"lt": self.token}):
            token = csrf_token()
        return self._plain(self.http.post(self.base + path, params={"lt": self.token},
                                          data={"csrf_token": token, **(data or {})}, files=files,
                                          allow_redirects=False))

    def follow(self, resp):
        assert resp.status_code == 303, resp.text[:1000]
        return self._plain(self.http.get(self.base + resp.headers["Location"]))


def launch(app, platform, base, role, sub):
    resp, _, _ = platform.launch(requests.Session(), base, roles=CANVAS_ROLES[role], sub=sub)
    assert resp.status_code == 303, resp.text[:1000]
    return Page(app, base, parse_qs(urlsplit(resp.headers["Location"]).query)["lt"][0])


@pytest.fixture
def course(app, platform, registered, live_server):
    with app.app_context():
        keys.ensure_published()
    pages = {"admin": launch(app, platform, live_server, "account_admin", "admin-1"),
             "manager": launch(app, platform, live_server, "teacher", "mgr-1"),
             "tech": launch(app, platform, live_server, "student", "tech-1")}
    with app.app_context():
        row = db.session.scalars(select(Course)).one()
        framework, _ = make_framework(row.registration, competencies=[
            {"code": "IV-GARB", "title": "Garbing", "revalidation_months": 6},
            {"code": "CEN-CART", "title": "Cart fill"}])
        db.session.add(CourseFramework(course_id=row.id, framework_id=framework.id))
        admin = db.session.scalars(select(Person).where(Person.sub == "admin-1")).one()
        admin.email = "ada@example.org"
        db.session.commit()
        pages["issuer"] = row.registration.issuer
    return pages


def count(app, model):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_check_import_and_undo(course, app):
    admin = course["admin"]
    page = admin.get("/imports/")
    assert page.status_code == 200 and "Import prior records" in page.page
    template = admin.get("/imports/templates/sign_offs.csv")
    assert template.status_code == 200 and template.text.startswith("Technician email,")
    checked = admin.post("/imports/check", {"kind": "sign_offs"}, files={"file": ("old.csv", FILE, "text/csv")})
    assert checked.status_code == 200, checked.page[:2000]
    assert "2</strong> to create" in checked.page and "1</strong> new people" in checked.page
    assert "Row 2: Nora New: IV-GARB assessed Jan 15, 2024 by Dana Lee" in checked.page
    assert count(app, SignOff) == 0
    token = checked.page.split('name="token" value="')[1].split('"')[0]
    # The import runs as a task (in-memory immediate mode here: done before the redirect is followed).
    done = admin.follow(admin.post("/imports/run", {"token": token}))
    assert "The import of old.csv has started." in done.page and 'data-status="applied"' in done.page
    assert "Imported: 2 sign-offs, 2 records, 1 new people (not launched yet); 0 rows already imported." in done.page
    assert 'http-equiv="refresh"' not in done.page
    assert "Undo this import" in admin.get("/imports/").page
    assert count(app, SignOff) == 2
    # The same checked file cannot be imported twice through its token (it shows the finished import);
    # checking it again finds nothing new.
    again = admin.post("/imports/run", {"token": token})
    assert again.status_code == 303 and count(app, SignOff) == 2
    rechecked = admin.post("/imports/check", {"kind": "sign_offs"}, files={"file": ("old.csv", FILE, "text/csv")})
    assert "0</strong> to create" in rechecked.page and "2</strong> already imported" in rechecked.page
    assert 'name="token"' not in rechecked.page
    with app.app_context():
        batch_id = db.session.scalars(select(ImportBatch.id)).one()
    progress = admin.get(f"/imports/{batch_id}.json").json()
    assert progress["status"] == "applied" and progress["done"] == progress["total"] == 2 and progress["finished"]
    assert course["manager"].get(f"/imports/{batch_id}.json").status_code == 403
    assert admin.get("/imports/999999.json").status_code == 404
    # While a worker writes it, the page says how far it got and refreshes itself (no JavaScript needed).
    with app.app_context():
        row = db.session.get(ImportBatch, batch_id)
        row.status, row.done_count = "running", 1
        db.session.commit()
    running = admin.get(f"/imports/{batch_id}")
    assert 'http-equiv="refresh"' in running.page and "1 of 2 rows written." in running.page
    assert "In progress: 1 of 2 rows" in admin.get("/imports/").page
    with app.app_context():
        db.session.get(ImportBatch, batch_id).status = "applied"
        db.session.commit()
    log = admin.get("/reports/audit", action="import.applied")
    assert f"#batch-{batch_id}\"" in log.page and "/imports/?lt=" in log.page and "Imported prior records" in log.page
    imported = admin.get("/reports/audit", action="sign_off.imported")
    assert imported.page.count('data-action="sign_off.imported"') == 2 and "Nora New" in imported.page
    undone = admin.follow(admin.post(f"/imports/{batch_id}/undo"))
    assert "Undid the import of old.csv" in undone.page and count(app, SignOff) == 0


def test_problems_are_listed_and_nothing_is_written(course, app):
    bad = FILE + b"nora@example.org,Nora New,NOPE,2024-02-01,Dana Lee,Pharmacist\r\n"
    checked = course["admin"].post("/imports/check", {"kind": "sign_offs"},
                                   files={"file": ("bad.csv", bad, "text/csv")})
    assert "Row 4: 'NOPE' is not a competency of this course" in checked.page
    assert 'name="token"' not in checked.page
    empty = course["admin"].post("/imports/check", {"kind": "sign_offs"},
                                 files={"file": ("none.csv", b"", "text/csv")})
    assert empty.status_code == 400 and "The file is empty." in empty.page
    forged = course["admin"].post("/imports/run", {"token": "forged"})
    assert forged.status_code == 400 and count(app, SignOff) == 0


@pytest.mark.parametrize("who", ["manager", "tech"])
def test_only_the_administrator_imports(course, who):
    assert course[who].get("/imports/").status_code == 403
    resp = course[who].post("/imports/check", {"kind": "sign_offs"}, files={"file": ("x.csv", FILE, "text/csv")})
    assert resp.status_code == 403


def test_cli_dry_run_then_import(course, app, tmp_path):
    path = tmp_path / "records.csv"
    path.write_bytes(FILE)
    runner = app.test_cli_runner()
    args = ["records", "import", str(path), "--issuer", course["issuer"], "--course", "course-1",
            "--as", "ada@example.org"]
    dry = runner.invoke(args=[*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "2 to create, 0 already imported, 0 with problems, 1 new people" in dry.output
    assert count(app, SignOff) == 0
    done = runner.invoke(args=args)
    assert done.exit_code == 0, done.output
    assert count(app, SignOff) == 2
    again = runner.invoke(args=args)
    assert "0 to create, 2 already imported" in again.output and count(app, SignOff) == 2
    nobody = runner.invoke(args=[*args[:-1], "nobody@example.org"])
    assert nobody.exit_code != 0 and "No administrator" in nobody.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Registration)) == 1


def _people(app, email):
    with app.app_context():
        return [(p.sub, p.last_launch_at is not None, p.registration_id) for p in db.session.scalars(
            select(Person).where(func.lower(Person.email) == email.lower()).order_by(Person.id))]


def test_an_imported_person_is_claimed_at_their_first_launch(course, app, platform, live_server):
    admin = course["admin"]
    checked = admin.post("/imports/check", {"kind": "sign_offs"}, files={"file": ("old.csv", FILE, "text/csv")})
    token = checked.page.split('name="token" value="')[1].split('"')[0]
    admin.follow(admin.post("/imports/run", {"token": token}))
    with app.app_context():
        imported_id, tenant = db.session.execute(select(Person.id, Person.registration_id)
                                                 .where(Person.email == "nora@example.org")).one()
    assert _people(app, "nora@example.org") == [("import:nora@example.org", False, tenant)]
    # Nora opens the tool from the LMS for the first time: her e-mail in the signed id_token matches the one
    # person the import created, so that row becomes hers (no second Nora), with her imported sign-offs.
    resp, _, _ = platform.launch(requests.Session(), live_server, roles=CANVAS_ROLES["student"], sub="nora-7",
                                 email="nora@example.org", name="Nora New")
    assert resp.status_code == 303, resp.text[:1000]
    assert _people(app, "nora@example.org") == [("nora-7", True, tenant)]
    with app.app_context():
        person = db.session.scalars(select(Person).where(Person.sub == "nora-7")).one()
        assert person.id == imported_id
        assert db.session.scalar(select(func.count()).select_from(SignOff).where(SignOff.person_id == person.id)) == 2
        batch = db.session.scalars(select(ImportBatch)).one()
        from lti_tool.models import AuditEntry
        from lti_tool.services import prior_records

        claimed = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "person.claimed")).one()
        assert claimed.before == {"sub": "import:nora@example.org"} and claimed.after["sub"] == "nora-7"
        assert claimed.registration_id == person.registration_id and claimed.actor_id == person.id
        # Her imported history now builds on a launch: the import can no longer be undone as a whole.
        assert "a person the import added has since opened the tool" in prior_records.blockers(batch)
    # Her next launch is an ordinary returning launch.
    again, _, _ = platform.launch(requests.Session(), live_server, roles=CANVAS_ROLES["student"], sub="nora-7",
                                  email="nora@example.org")
    assert again.status_code == 303 and _people(app, "nora@example.org") == [("nora-7", True, tenant)]


def test_no_claim_across_tenants_with_two_candidates_or_after_a_launch(course, app, platform, live_server):
    from datetime import UTC, datetime

    from tests.conftest import Factory

    with app.app_context():
        registration_id = db.session.scalars(select(Course.registration_id)).one()
        other = Factory().registration()
        db.session.add_all([
            Person(registration_id=other.id, sub="import:lee@example.org", email="lee@example.org"),
            Person(registration_id=registration_id, sub="import:kim@example.org", email="kim@example.org"),
            Person(registration_id=registration_id, sub="import:KIM@example.org", email="KIM@example.org"),
            Person(registration_id=registration_id, sub="import:max@example.org", email="max@example.org",
                   last_launch_at=datetime.now(UTC))])
        db.session.commit()
        other_id = other.id
    for sub, email in (("lee-1", "lee@example.org"), ("kim-1", "kim@example.org"), ("max-1", "max@example.org")):
        resp, _, _ = platform.launch(requests.Session(), live_server, roles=CANVAS_ROLES["student"], sub=sub,
                                     email=email)
        assert resp.status_code == 303, resp.text[:1000]
    # Another tenant's imported person is never claimed; this tenant's Lee is a new person.
    assert _people(app, "lee@example.org") == [("import:lee@example.org", False, other_id),
                                               ("lee-1", True, registration_id)]
    # Two imported people share Kim's e-mail: nothing is merged, and the administrator is told.
    assert _people(app, "kim@example.org") == [("import:kim@example.org", False, registration_id),
                                               ("import:KIM@example.org", False, registration_id),
                                               ("kim-1", True, registration_id)]
    # A row that has launched before is never taken over.
    assert [p[0] for p in _people(app, "max@example.org")] == ["import:max@example.org", "max-1"]
    page = course["admin"].get("/imports/")
    assert "Imported people not matched at their first launch" in page.page
    assert "kim@example.org, not launched yet): 1 launched person(s) share this e-mail." in page.page
    assert "lee@example.org" not in page.page and "max@example.org" not in page.page
