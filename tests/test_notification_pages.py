"""In-tool notices on each role's home page, the e-mail preferences page, and the tenant's e-mail settings, over
real HTTP after real launches."""
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.models import Course, CourseFramework, Evidence, EvidenceCompetency, Membership, Registration
from lti_tool.services import preferences, reviews
from lti_tool.services.actors import Actor
from tests.support.competency_world import make_framework
from tests.support.platform import CANVAS_ROLES
from tests.test_admin_pages import launch


@pytest.fixture
def team(app, platform, registered, live_server, http):
    import requests

    tech = launch(app, platform, http, live_server, CANVAS_ROLES["student"], "tech-1", name="Tess Nguyen",
                  email="tess@example.org")
    manager = launch(app, platform, requests.Session(), live_server, CANVAS_ROLES["teacher"], "boss",
                     name="Mina Manager", email="mina@example.org")
    now = datetime.now(UTC)
    with app.app_context():
        course = db.session.scalars(select(Course)).one()
        framework, (garb, cart) = make_framework(course.registration, competencies=[
            {"code": "IV-GARB", "title": "Garbing and gloved-fingertip testing", "revalidation_months": 6},
            {"code": "CEN-CART", "title": "Cart fill"}])
        db.session.add(CourseFramework(course_id=course.id, framework_id=framework.id))
        members = {m.person.sub: Actor(person=m.person, course=course, membership=m)
                   for m in db.session.scalars(select(Membership))}

        def evidence(competency, title):
            row = Evidence(person_id=members["tech-1"].person.id, course_id=course.id, kind="cross_training",
                           title=title, data={"department": "iv_room", "hours": 2}, status="draft", revision=1,
                           created_at=now - timedelta(days=200))
            row.competency_links = [EvidenceCompetency(competency_id=competency.id)]
            db.session.add(row)
            db.session.flush()
            return reviews.request_review(members["tech-1"], row.id, now=now - timedelta(days=175))[0]

        signed = evidence(garb, "Fingertip test")
        reviews.sign_off(members["boss"], signed.id, "competent", "observed", [], now=now - timedelta(days=175))
        returned = evidence(cart, "Cart fill log")
        reviews.return_for_revision(members["boss"], returned.id, "Add the second week", now=now)
        db.session.commit()
    return tech, manager


def test_home_pages_say_what_is_due_returned_and_waiting(team, app):
    tech, manager = team
    page = tech.get("/app/")
    notices = page.page.split('data-testid="notices"')[1].split("</ul>")[0]
    assert "Garbing and gloved-fingertip testing</strong>: expires in" in notices
    assert "Cart fill log</strong>: returned for revision on" in notices and "Add the second week" in notices
    assert "E-mail preferences" in page.page

    board = manager.get("/app/")
    notices = board.page.split('data-testid="notices"')[1].split("</ul>")[0]
    assert "Tess Nguyen</strong>: 1 due by" in notices


def test_preferences_page_saves_choices(team, app):
    tech, manager = team
    page = tech.get("/notifications/preferences")
    assert page.status_code == 200 and "tess@example.org" in page.page
    assert "<select" not in page.page, "the review summary is for managers and preceptors"
    saved = tech.follow(tech.post("/notifications/preferences", {"review_updates": "on", "digest": "weekly"}))
    assert "Your e-mail preferences are saved." in saved.page
    with app.app_context():
        person_id = db.session.scalars(select(Membership.person_id).where(Membership.role == "technician")).one()
        pref = preferences.get(person_id)
        assert not pref.reminders and pref.review_updates and pref.digest == "weekly"
    assert "Weekly (Mondays)" in manager.get("/notifications/preferences").page
    bad = manager.post("/notifications/preferences", {"digest": "hourly"})
    assert bad.status_code == 400 and "Choose daily, weekly or off." in bad.page
    assert manager.post("/notifications/preferences", {"digest": "daily"}, csrf=False).status_code == 400
    assert tech.http.get(tech.base + "/notifications/preferences").status_code == 401


def test_admin_email_settings(app, platform, registered, live_server, http, signing_key):
    admin = launch(app, platform, http, live_server, CANVAS_ROLES["account_admin"], "admin-1")
    page = admin.get("/admin/settings")
    assert "E-mail reminders" in page.page and 'value="60, 14, 0"' in page.page
    bad = admin.post("/admin/settings/email", {"email_enabled": "on", "reminder_days": "30, 400",
                                               "email_sender_name": "Pharmacy <x@y>"})
    assert bad.status_code == 400 and "Up to five whole numbers of days from 0 to 365." in bad.page
    assert "without line breaks, quotes, @ or angle brackets" in bad.page
    with app.app_context():
        assert "reminder_days" not in (db.session.get(Registration, registered).settings or {})
    done = admin.follow(admin.post("/admin/settings/email", {"reminder_days": "30, 7, 0",
                                                             "email_sender_name": "St. Luke's Pharmacy"}))
    assert "The tool sends no e-mail for this LMS" in done.page
    with app.app_context():
        stored = db.session.get(Registration, registered).settings
        assert stored["email_enabled"] is False
        assert stored["reminder_days"] == [30, 7, 0] and stored["email_sender_name"] == "St. Luke's Pharmacy"


@pytest.fixture
def signing_key(app):
    from lti_tool.lti import keys

    with app.app_context():
        keys.ensure_published()
