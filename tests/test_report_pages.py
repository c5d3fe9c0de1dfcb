"""The reports and the audit log viewer over real HTTP after real LTI launches: the access matrix (a manager sees
their course, the administrator their tenant, technicians 403, other tenants 404), filters, paging, links,
downloads (CSV that cannot run formulas, PDF) and the chart."""
import csv
import html
import io
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from pypdf import PdfReader
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.lti import keys
from lti_tool.models import AuditEntry, Course, CourseFramework, Membership, Person
from lti_tool.services import reviews
from lti_tool.services.actors import Actor
from tests.support.competency_world import make_framework
from tests.support.platform import CANVAS_ROLES, TestPlatform

T0 = datetime(2025, 1, 15, 15, 0, tzinfo=UTC)


class Session:
    def __init__(self, http, base, token):
        self.http, self.base, self.token = http, base, token

    def get(self, path, **params):
        resp = self.http.get(self.base + path, params={"lt": self.token, **params}, allow_redirects=False)
        resp.page = html.unescape(resp.text)
        return resp


def launch(platform, base, role, sub, name, **kw):
    http = requests.Session()
    resp, _, _ = platform.launch(http, base, roles=CANVAS_ROLES[role], sub=sub, name=name, **kw)
    assert resp.status_code == 303, resp.text[:1000]
    return Session(http, base, parse_qs(urlsplit(resp.headers["Location"]).query)["lt"][0])


@pytest.fixture(scope="module")
def other_platform():
    p = TestPlatform(issuer_path="/other-lms")
    yield p
    p.close()


@pytest.fixture
def site(app, platform, other_platform, registered, live_server):
    """Tenant A: course-1 (manager Maria, technicians Tess and a hostile name) and course-2 (another manager);
    tenant B: its own manager. A sign-off and a revocation in course-1, a sign-off in course-2."""
    with app.app_context():
        keys.ensure_published()
    other_platform.published = [other_platform.key]
    with app.app_context():
        other_platform.register_in(db)
    s = {
        "manager": launch(platform, live_server, "teacher", "mgr-1", "Maria Manager"),
        "tech": launch(platform, live_server, "student", "tech-1", "Tess Tech"),
        "evil": launch(platform, live_server, "student", "tech-2", "=HYPERLINK(\"http://evil\")"),
        "manager2": launch(platform, live_server, "teacher", "mgr-2", "Carl Other", context_id="course-2"),
        "admin": launch(platform, live_server, "account_admin", "admin-1", "Ada Admin"),
        "outsider": launch(other_platform, live_server, "teacher", "mgr-x", "Olga Outsider"),
    }
    with app.app_context():
        people = {p.sub: p for p in db.session.scalars(select(Person))}
        ours = {c.context_id: c for c in db.session.scalars(
            select(Course).where(Course.registration_id == people["mgr-1"].registration_id))}
        course1, course2 = ours["course-1"], ours["course-2"]
        _, (garb,) = make_framework(course1.registration, competencies=[
            {"code": "IV-GARB", "title": "Garbing", "departments": ["iv_room"], "revalidation_months": 6}])
        db.session.add_all([CourseFramework(course_id=course1.id, framework_id=garb.framework_id),
                            CourseFramework(course_id=course2.id, framework_id=garb.framework_id)])
        db.session.flush()

        def actor(sub, course):
            m = db.session.scalars(select(Membership).where(Membership.person_id == people[sub].id,
                                                            Membership.course_id == course.id)).one()
            return Actor(person=people[sub], course=course, membership=m)

        from lti_tool.models import Evidence, EvidenceCompetency

        def signed(tech, mgr, course, at):
            ev = Evidence(person_id=tech.person.id, course_id=course.id, kind="cross_training", title="Garbing",
                          data={"department": "iv_room"}, status="draft", revision=1, created_at=at)
            ev.competency_links = [EvidenceCompetency(competency_id=garb.id)]
            db.session.add(ev)
            db.session.flush()
            [req] = reviews.request_review(tech, ev.id, now=at)
            return reviews.sign_off(mgr, req.id, "competent", "observed", now=at)

        first = signed(actor("tech-1", course1), actor("mgr-1", course1), course1, T0)
        evil_signed = signed(actor("tech-2", course1), actor("mgr-1", course1), course1, T0)
        reviews.revoke(actor("mgr-1", course1), evil_signed.id, "Recorded in error", now=T0 + timedelta(days=10))
        # course-2: Tess also belongs there (membership added), signed off by the other manager.
        db.session.add(Membership(person_id=people["tech-1"].id, course_id=course2.id, role="technician",
                                  lti_roles=[]))
        db.session.flush()
        signed(actor("tech-1", course2), actor("mgr-2", course2), course2, T0 + timedelta(days=1))
        db.session.commit()
        s["ids"] = {"tess": people["tech-1"].id, "evil": people["tech-2"].id, "outsider": people["mgr-x"].id,
                    "sign_off": first.id, "garb": garb.id, "maria": people["mgr-1"].id}
    return s


def actions_on(resp):
    return [a for a in resp.page.split('data-action="')[1:]]


@pytest.mark.parametrize("path", ["/reports/", "/reports/audit", "/reports/roster", "/reports/summary"])
def test_technicians_are_refused(site, path):
    resp = site["tech"].get(path)
    assert resp.status_code == 403 and "Reports are for this course" in resp.page


def test_access_matrix_of_the_audit_log(site):
    mine = site["manager"].get("/reports/audit")
    assert mine.status_code == 200
    assert "Every change in IV Room Cross-Training" in mine.page
    # Maria's course: two sign-offs, one revocation; not the sign-off of course-2.
    assert mine.page.count('data-action="sign_off.create"') == 2
    assert mine.page.count('data-action="sign_off.revoke"') == 1
    assert "Carl Other" not in mine.page
    assert "Revoked a sign-off" in mine.page and "Maria Manager" in mine.page

    tenant = site["admin"].get("/reports/audit")
    assert tenant.status_code == 200 and "across your organization" in tenant.page
    assert tenant.page.count('data-action="sign_off.create"') == 3 and "Carl Other" in tenant.page

    outsider = site["outsider"].get("/reports/audit")
    assert outsider.status_code == 200 and 'data-action="sign_off' not in outsider.page
    assert "Maria Manager" not in outsider.page and "Tess Tech" not in outsider.page
    # Another tenant's person file, or filtering on another tenant's person, finds nothing.
    assert site["outsider"].get(f"/reports/people/{site['ids']['tess']}").status_code == 404
    filtered = site["outsider"].get("/reports/audit", person=site["ids"]["tess"])
    assert filtered.status_code == 200 and 'data-action="' not in filtered.page


def test_audit_filters_paging_and_links(site):
    ids = site["ids"]
    by_person = site["manager"].get("/reports/audit", person=ids["evil"])
    assert by_person.page.count('data-action="sign_off.revoke"') == 1
    assert by_person.page.count('data-action="sign_off.create"') == 1
    assert f"/reports/people/{ids['evil']}" in by_person.page
    by_action = site["manager"].get("/reports/audit", action="sign_off.create")
    assert set(p.split('"')[0] for p in actions_on(by_action)) == {"sign_off.create"}
    assert f"#sign-off-{ids['sign_off']}" in by_action.page
    by_actor = site["admin"].get("/reports/audit", actor=ids["maria"], competency=ids["garb"])
    assert "Carl Other" not in by_actor.page.split("<tbody>")[1] and 'data-action="sign_off.create"' in by_actor.page
    dated = site["admin"].get("/reports/audit", **{"from": "2020-01-01", "to": "2020-12-31"})
    assert "No entries match." in dated.page
    bad = site["manager"].get("/reports/audit", action="drop_tables", **{"from": "yesterday"})
    assert bad.status_code == 400 and "Not a known action." in bad.page and "Give a date like" in bad.page
    page2 = site["admin"].get("/reports/audit", page=2)
    assert page2.status_code == 200


def test_audit_csv_is_safe_and_complete(site, app):
    resp = site["manager"].get("/reports/audit", format="csv")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert rows[0][0] == "When (local)"
    with app.app_context():
        maria = db.session.get(Person, site["ids"]["maria"])
        course1 = db.session.scalars(select(Course).where(Course.context_id == "course-1",
                                                          Course.registration_id == maria.registration_id)).one()
        expected = db.session.scalars(select(AuditEntry.id).where(AuditEntry.course_id == course1.id)).all()
    assert len(rows) - 1 == len(expected)
    hostile = [r for r in rows if "HYPERLINK" in r[6]]
    assert hostile and all(r[6].startswith("'=") for r in hostile)


def test_roster_summary_and_person_file_pages(site):
    ids = site["ids"]
    page = site["manager"].get("/reports/roster", as_of="2025-01-20")
    assert page.status_code == 200 and "Competency roster" in page.page and "Jan 15, 2025" in page.page
    assert 'data-standing="current"' in page.page and "Maria Manager" in page.page
    assert f"/reports/people/{ids['tess']}" in page.page
    assert page.page.count('data-standing="current"') == 2  # the later revocation does not show on Jan 20
    today = site["manager"].get("/reports/roster")
    assert today.page.count('data-standing="current"') == 0  # 6-month garbing expired; the other was revoked
    pdf = site["manager"].get("/reports/roster", as_of="2025-01-20", format="pdf")
    assert pdf.headers["Content-Type"] == "application/pdf"
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages).split())
    assert "Tess Tech" in text and "Jan 15, 2025" in text
    bad = site["manager"].get("/reports/roster", set="c:99999")
    assert bad.status_code == 400
    summary = site["manager"].get("/reports/summary", as_of="2025-01-20")
    assert summary.status_code == 200 and "<svg" in summary.text and "100.0%" in summary.page
    person = site["manager"].get(f"/reports/people/{ids['evil']}")
    assert person.status_code == 200 and "Recorded in error" in person.page
    assert '=HYPERLINK("http://evil")' in person.page and "<a href=\"http://evil" not in person.text
    admin_roster = site["admin"].get("/reports/roster")
    assert admin_roster.status_code == 200
    assert site["manager2"].get(f"/reports/people/{ids['evil']}").status_code == 404


def test_reports_in_the_navigation(site):
    assert ">Reports</a>" in site["manager"].get("/team/").page
    assert ">Reports</a>" not in site["tech"].get("/me").page
