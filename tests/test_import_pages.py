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
