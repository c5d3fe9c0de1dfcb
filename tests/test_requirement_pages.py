"""Requirements over real HTTP after real launches (issue 15): a manager creates, edits and retires requirements
and sets technicians' department / job role / assignment date; a bad form is a readable 400 that writes nothing;
technicians and managers of other courses are refused; the portfolio leads with "Required of you"; the matrix
filters overdue; the roster report counts it; the personal calendar feed (parsed with the icalendar library)."""
import re
from datetime import date, timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from lti_tool import web
from lti_tool.extensions import db
from lti_tool.models import AuditEntry, Membership, Person, Requirement
from lti_tool.services import status
from tests.support.platform import CANVAS_ROLES
from tests.test_manager_pages import NOW, Team, form_fields, launch


@pytest.fixture
def team(app, live_server, platform, registered, http):
    return Team(app, platform, http, live_server)


def _today(app, team):
    with app.app_context():
        from lti_tool.models import Registration

        return status.local_today(db.session.get(Registration, team.reg_id))


def _requirements(app):
    with app.app_context():
        return [(r.name, r.active, sorted(r.competency_ids)) for r in
                db.session.scalars(select(Requirement).order_by(Requirement.id))]


def _create(team, csrf, **fields):
    data = {"csrf_token": csrf, "name": "Orientation", "audience": "everyone", "due_kind": "date",
            "due_on": "2030-01-31", **fields}
    return team.post("/team/requirements/new", data)


def test_manager_creates_edits_and_retires_requirements_and_bad_forms_write_nothing(team, app):
    team.technicians(2)
    page = team.get("/team/requirements/new")
    assert page.status_code == 200 and "IV-GARB" in page.text and "Technician II" in page.text
    csrf = form_fields(page.text)["csrf_token"]

    bad = _create(team, csrf, name="", due_on="01/31/2030", audience="job_role", audience_job_role="Pilot")
    assert bad.status_code == 400
    text = unescape(bad.text)
    assert 'id="error-summary"' in bad.text and "Give a name" in text and "Choose a job role" in text
    assert "Give the due date as a date" in text
    assert _requirements(app) == []

    made = _create(team, csrf, area_ids=[str(team.iv_area)], name="<script>alert(1)</script> IV orientation")
    assert made.status_code == 303
    listing = team.http.get(team.base + made.headers["Location"]).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; IV orientation" in listing and "<script>alert(1)" not in listing
    assert "By Jan 31, 2030" in listing and "Every technician in the course" in listing
    assert _requirements(app) == [("<script>alert(1)</script> IV orientation", True,
                                   sorted([team.garb, team.asep]))]
    with app.app_context():
        req_id = db.session.scalar(select(Requirement.id))

    edit = team.get(f"/team/requirements/{req_id}")
    assert f'value="{team.iv_area}" id="area-{team.iv_area}" checked' in edit.text
    changed = team.post(f"/team/requirements/{req_id}", {
        "csrf_token": csrf, "name": "New hires: 90 days", "competency_ids": [str(team.cart)],
        "audience": "job_role", "audience_job_role": "New hire", "due_kind": "days", "due_days": "90"})
    assert changed.status_code == 303
    listing = team.http.get(team.base + changed.headers["Location"]).text
    assert "Within 90 days of assignment" in listing and "Job role: New hire" in listing
    retired = team.post(f"/team/requirements/{req_id}/retire", {"csrf_token": csrf})
    assert retired.status_code == 303
    assert _requirements(app) == [("New hires: 90 days", False, [team.cart])]
    with app.app_context():
        actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "requirements")
                                     .order_by(AuditEntry.id)).all()
        assert actions == ["requirement.create", "requirement.update", "requirement.retire"]


def test_bulk_attributes_and_the_technician_page_show_what_is_required(team, app):
    ana, ben = team.technicians(2)
    csrf = team.csrf("/team/requirements/")
    done = team.post("/team/requirements/people", {
        "csrf_token": csrf, "person_ids": [str(ana), str(ben)], "change_department": "1", "department": "iv_room",
        "change_job_role": "1", "job_role": "New hire", "department_ignored": "x"})
    assert done.status_code == 303
    with app.app_context():
        rows = db.session.execute(select(Membership.department, Membership.job_role, Membership.assigned_on)
                                  .where(Membership.person_id.in_([ana, ben]))).all()
        assert set(rows) == {("iv_room", "New hire", None)}
    refused = team.post("/team/requirements/people", {"csrf_token": csrf, "person_ids": [str(ana)],
                                                      "change_job_role": "1", "job_role": "Astronaut"})
    assert refused.status_code == 303
    assert "Choose a job role from the list." in unescape(team.http.get(team.base + refused.headers["Location"]).text)
    today = _today(app, team)
    _create(team, csrf, audience="department", audience_department="iv_room", competency_ids=[str(team.garb)],
            due_on=(today - timedelta(days=3)).isoformat())
    page = team.get(f"/team/technicians/{ana}")
    assert page.status_code == 200
    text = unescape(page.text)
    assert "Overdue since" in text and 'selected>IV room / sterile compounding' in text
    one = team.post("/team/requirements/people", {
        "csrf_token": csrf, "person_ids": [str(ana)], "back": "technician", "change_department": "1",
        "department": "central", "change_job_role": "1", "job_role": "", "change_assigned_on": "1",
        "assigned_on": "2026-08-01"})
    assert one.status_code == 303 and f"/team/technicians/{ana}" in one.headers["Location"]
    text = unescape(team.http.get(team.base + one.headers["Location"]).text)
    assert "Nothing is required of this technician." in text


def test_technicians_and_other_courses_managers_are_refused(team, app, platform, http):
    team.technicians(1)
    csrf = team.csrf("/team/requirements/")
    _create(team, csrf, competency_ids=[str(team.garb)])
    with app.app_context():
        req_id = db.session.scalar(select(Requirement.id))
    tech_token = launch(platform, http, team.base, role="student", sub="tech-launch", name="Tina Tech")
    with app.test_request_context(f"/app/?lt={tech_token}"):
        tech_csrf = web.csrf_token()
    for method, path in (("GET", "/team/requirements/"), ("GET", "/team/requirements/new"),
                         ("POST", "/team/requirements/new"), ("GET", f"/team/requirements/{req_id}"),
                         ("POST", f"/team/requirements/{req_id}/retire"), ("POST", "/team/requirements/people")):
        resp = http.request(method, f"{team.base}{path}?lt={tech_token}",
                            data={"csrf_token": tech_csrf, "name": "Mine"} if method == "POST" else None,
                            allow_redirects=False)
        assert resp.status_code == 403, (method, path)
    # The same tenant, another course: that manager's session acts in course-2.
    resp, _, _ = platform.launch(http, team.base, roles=CANVAS_ROLES["teacher"], sub="mgr-other",
                                 context_id="course-2")
    assert resp.status_code == 303
    other_token = parse_qs(urlsplit(resp.headers["Location"]).query)["lt"][0]
    assert http.get(f"{team.base}/team/requirements/{req_id}?lt={other_token}").status_code == 404
    with app.test_request_context(f"/app/?lt={other_token}"):
        other_csrf = web.csrf_token()
    gone = http.post(f"{team.base}/team/requirements/{req_id}/retire?lt={other_token}",
                     data={"csrf_token": other_csrf}, allow_redirects=False)
    assert gone.status_code == 404
    assert _requirements(app)[0][1] is True


def test_portfolio_leads_with_what_is_required_overdue_first(team, app, platform, http):
    token = launch(platform, http, team.base, role="student", sub="tech-launch", name="Tina Tech")
    today = _today(app, team)
    csrf = team.csrf("/team/requirements/")
    _create(team, csrf, name="Later", competency_ids=[str(team.cart)], due_on=(today + timedelta(days=200))
            .isoformat())
    _create(team, csrf, name="Late", competency_ids=[str(team.asep)], due_on=(today - timedelta(days=2)).isoformat())
    page = http.get(f"{team.base}/me/?lt={token}")
    assert page.status_code == 200
    text = unescape(page.text)
    assert "Required of you" in text
    assert text.index("Required of you") < text.index("Where you stand")
    assert text.index("IV-ASEP") < text.index("CEN-CART")  # overdue first
    assert "Overdue: was due" in text and f"competency={team.asep}" in page.text


def test_matrix_overdue_filter_and_roster_report(team, app):
    ana, ben = team.technicians(2)
    today = _today(app, team)
    csrf = team.csrf("/team/requirements/")
    _create(team, csrf, audience="people", person_ids=[str(ana)], competency_ids=[str(team.garb)],
            due_on=(today - timedelta(days=1)).isoformat())
    page = team.get("/team/", status="overdue")
    assert page.status_code == 200
    assert "Tech 000" in page.text and "Tech 001" not in page.text
    assert "OVD" in page.text and 'class="ns hit ovd"' in page.text
    required = team.get("/team/", status="required")
    assert "Tech 000" in required.text and "Tech 001" not in required.text
    roster = team.get("/reports/roster", set=f"c:{team.garb}")
    assert roster.status_code == 200
    text = unescape(roster.text)
    assert "Overdue (required): <strong>1</strong>" in text and "overdue, required by" in text
    assert ben


def _feed_url(html: str) -> str:
    return unescape(re.search(r'id="feed-url"[^>]*value="([^"]+)"', html).group(1))


def test_calendar_feed_parse_replace_revoke(team, app, platform, http):
    token = launch(platform, http, team.base, role="student", sub="tech-launch", name="Tina Tech")
    (other,) = team.technicians(1)
    today = _today(app, team)
    csrf = team.csrf("/team/requirements/")
    _create(team, csrf, name="IV", competency_ids=[str(team.garb)], due_on=(today + timedelta(days=10)).isoformat())
    with app.app_context():
        tina = db.session.scalar(select(Person.id).where(Person.sub == "tech-launch"))
    team.sign(team.request(tina, [team.asep], at=NOW - timedelta(days=1))[0], at=NOW - timedelta(days=1))
    with app.test_request_context(f"/app/?lt={token}"):
        tech_csrf = web.csrf_token()
    manage = http.get(f"{team.base}/notifications/calendar?lt={token}")
    assert manage.status_code == 200 and "You have no calendar link." in manage.text
    made = http.post(f"{team.base}/notifications/calendar?lt={token}", data={"csrf_token": tech_csrf,
                                                                             "action": "create"})
    url = _feed_url(made.text)
    assert "/calendar/" in url and url.endswith(".ics")
    feed = http.get(url)
    assert feed.status_code == 200 and feed.headers["Content-Type"].startswith("text/calendar")
    cal = Calendar.from_ical(feed.content)
    events = {str(e["SUMMARY"]): e for e in cal.walk("VEVENT")}
    assert set(events) == {"Required: IV-GARB Garbing", "Expires: IV-ASEP Aseptic technique"}
    required = events["Required: IV-GARB Garbing"]
    assert required.decoded("DTSTART") == today + timedelta(days=10)
    assert str(required["UID"]) == f"required-{tina}-{team.garb}@pharmacy-tech-pathways"
    assert events["Expires: IV-ASEP Aseptic technique"].decoded("DTSTART") > today + timedelta(days=300)
    # Nobody else's data: the other technician has the same requirement, not in this feed.
    assert all(str(e["UID"]).split("-")[1] == str(tina) for e in cal.walk("VEVENT")) and other != tina
    again = Calendar.from_ical(http.get(url).content)
    assert [str(e["UID"]) for e in again.walk("VEVENT")] == [str(e["UID"]) for e in cal.walk("VEVENT")]

    replaced = http.post(f"{team.base}/notifications/calendar?lt={token}", data={"csrf_token": tech_csrf,
                                                                                "action": "create"})
    assert replaced.status_code == 200 and http.get(url).status_code == 404
    new_url = _feed_url(replaced.text)
    assert http.get(new_url).status_code == 200
    revoked = http.post(f"{team.base}/notifications/calendar?lt={token}", data={"csrf_token": tech_csrf,
                                                                               "action": "revoke"},
                        allow_redirects=False)
    assert revoked.status_code == 303 and http.get(new_url).status_code == 404
    assert http.get(f"{team.base}/calendar/not-a-token.ics").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Person)
                                 .where(Person.calendar_token_hash.is_not(None))) == 0


def test_the_administrator_sets_the_tenant_job_roles(app, platform, registered, http, live_server):
    from tests.test_admin_pages import launch as admin_launch

    admin = admin_launch(app, platform, http, live_server, CANVAS_ROLES["account_admin"], "admin-1")
    assert "Technician III" in admin.get("/admin/settings").page
    bad = admin.post("/admin/settings/job-roles", {"job_roles": "x" * 61})
    assert bad.status_code == 400 and "at most 60 characters" in bad.page
    saved = admin.follow(admin.post("/admin/settings/job-roles", {"job_roles": "CPhT I\n\nCPhT II\nCPhT I\n"}))
    assert "Job roles saved." in saved.page
    with app.app_context():
        from lti_tool.models import Registration
        from lti_tool.services import requirements

        assert requirements.job_roles(db.session.scalars(select(Registration)).one()) == ["CPhT I", "CPhT II"]


def test_a_first_launch_gets_the_requirements_and_custom_parameters_set_the_department(team, app, platform, http):
    csrf = team.csrf("/team/requirements/new")
    _create(team, csrf, audience="department", audience_department="iv_room", competency_ids=[str(team.garb)],
            due_kind="days", due_days="90")
    custom = {"https://purl.imsglobal.org/spec/lti/claim/custom": {"pharmacy_department": "iv_room",
                                                                   "pharmacy_job_role": "New hire"}}
    resp, _, _ = platform.launch(http, team.base, roles=CANVAS_ROLES["student"], sub="new-hire", **custom)
    assert resp.status_code == 303
    token = parse_qs(urlsplit(resp.headers["Location"]).query)["lt"][0]
    with app.app_context():
        membership = db.session.scalars(select(Membership).join(Person).where(Person.sub == "new-hire")).one()
        assert (membership.department, membership.job_role) == ("iv_room", "New hire")
    text = unescape(http.get(f"{team.base}/me/?lt={token}").text)
    due = (_today(app, team) + timedelta(days=90))
    assert "Required of you" in text and f"Due {due:%b} {due.day}, {due.year}" in text


def test_a_returning_launch_with_another_department_stores_it(team, app, platform, http):
    """A returning technician's membership comes back from the launch detached from the session (nothing else
    changed): the department sent the next time is still written, and kept after the request."""
    def launch(department):
        custom = {"https://purl.imsglobal.org/spec/lti/claim/custom": {"pharmacy_department": department}}
        resp, _, _ = platform.launch(http, team.base, roles=CANVAS_ROLES["student"], sub="mover", **custom)
        assert resp.status_code == 303
        with app.app_context():
            return db.session.scalars(select(Membership.department).join(Person).where(Person.sub == "mover")).one()

    assert launch("iv_room") == "iv_room"
    assert launch("central") == "central"


def test_a_launch_that_changes_the_role_or_comes_back_follows_the_requirements(team, app, platform, http):
    csrf = form_fields(team.get("/team/requirements/new").text)["csrf_token"]
    assert _create(team, csrf, competency_ids=[str(team.garb)]).status_code == 303

    def required():
        with app.app_context():
            from lti_tool.models import StoredStatus

            person_id = db.session.scalar(select(Person.id).where(Person.sub == "comes-and-goes"))
            return db.session.execute(select(StoredStatus.competency_id, StoredStatus.required_by).where(
                StoredStatus.person_id == person_id, StoredStatus.required_by.is_not(None))).all()

    launch(platform, http, team.base, role="student", sub="comes-and-goes", name="Cam Reyes")
    assert required() == [(team.garb, date(2030, 1, 31))]
    launch(platform, http, team.base, role="teacher", sub="comes-and-goes", name="Cam Reyes")
    assert required() == [], "a manager now: nothing is required of them"
    launch(platform, http, team.base, role="student", sub="comes-and-goes", name="Cam Reyes")
    assert required() == [(team.garb, date(2030, 1, 31))], "a technician again"
    with app.app_context():
        member = db.session.scalars(select(Membership).join(Person).where(Person.sub == "comes-and-goes")).one()
        member.active = False  # left the course (a roster sync)
        db.session.commit()
    assert required() == []
    launch(platform, http, team.base, role="student", sub="comes-and-goes", name="Cam Reyes")
    assert required() == [(team.garb, date(2030, 1, 31))], "back in the course"
