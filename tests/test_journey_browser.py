"""The whole journey in Debian's chromium, every page reached through a real LTI launch from the test platform:
a technician records cross-training with its checklist and requests review; a manager signs it off; the
technician sees it achieved with its expiry date. Then the return-with-comments loop and a resubmission."""
from datetime import date, timedelta
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from lti_tool import formatting
from lti_tool.extensions import db
from lti_tool.models import Competency, Course, CourseFramework, Evidence, ReviewRequest, SignOff
from lti_tool.services import frameworks
from tests.support.browser import chromium, screenshot, screenshot_on_failure
from tests.support.platform import CANVAS_ROLES

pytestmark = pytest.mark.browser
GARB = "USP797-02"  # garbing and gloved-fingertip testing, Category 1-2: revalidated every 6 months


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def course_people(app, live_server, platform, registered, http):
    """Technician and manager launched into one course that uses the shipped framework."""
    tech, _, _ = platform.launch(http, live_server, sub="tess", name="Tess Nguyen")
    boss, _, _ = platform.launch(http, live_server, sub="morgan", name="Morgan Ellis",
                                 roles=CANVAS_ROLES["teacher"])
    with app.app_context():
        framework = frameworks.ensure_default_framework()
        course = db.session.scalars(select(Course)).one()
        db.session.add(CourseFramework(course_id=course.id, framework_id=framework.id))
        db.session.commit()
        garb = db.session.scalars(select(Competency).where(Competency.framework_id == framework.id,
                                                           Competency.code == GARB)).one()
        steps = list(garb.checklist)
        garb_id = garb.id
    return {"tech": tech.headers["Location"], "boss": boss.headers["Location"], "garb": garb_id, "steps": steps}


def _goto(page, base, location, path):
    """Open `path` with the session token of a launch's Location (/app/?lt=...)."""
    query = urlsplit(location).query
    page.goto(f"{base}{path}{'&' if '?' in path else '?'}{query}")


def _record_cross_training(page, live_server, people, title):
    _goto(page, live_server, people["tech"], f"/me/evidence/new/cross_training?competency={people['garb']}")
    page.fill("#f-title", title)
    page.select_option("#f-department", "iv_room")
    page.fill("#f-skills", "Garbing order\nGloved fingertip sampling")
    page.fill("#f-trainer-name", "Dana Ruiz")
    page.fill("#f-hours", "3.5")
    day = (date.today() - timedelta(days=2)).isoformat()
    page.fill("#f-start-date", day)
    page.fill("#f-end-date", day)
    for step in people["steps"]:
        page.locator(f"input[name=checklist_steps][value=\"{step}\"]").check()
    page.click("button[value=submit]")
    expect(page.get_by_role("status").first).to_be_visible()


def _review(page, live_server, people, decision, comment):
    _goto(page, live_server, people["boss"], "/team/queue")
    page.locator("main table a", has_text="Review").first.click()
    expect(page.get_by_role("heading", name="Your decision")).to_be_visible()
    if decision == "sign_off":
        for box in page.locator("input[name=checklist_seen]").all():
            box.check()
        page.locator("input[name=rating][value=competent]").check()
        page.locator("input[name=method][value=observed]").check()
    page.fill("#comment", comment)
    page.click(f"button[name=decision][value={decision}]")
    expect(page.get_by_role("status").first).to_be_visible()


def test_record_review_sign_off_and_see_it_achieved(app, browser, live_server, course_people):
    page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
    with screenshot_on_failure(page, "journey"):
        _record_cross_training(page, live_server, course_people, "Garbing observed in the IV room")
        screenshot(page, "journey-1-technician-requested")
        _review(page, live_server, course_people, "sign_off", "Clean technique throughout.")
        screenshot(page, "journey-2-manager-signed")

        with app.app_context():
            sign_off = db.session.scalars(select(SignOff)).one()
            assert sign_off.signer_name == "Morgan Ellis" and sign_off.rating_code == "competent"
            assert sign_off.method == "observed" and sign_off.checklist_seen == course_people["steps"]
            expires = sign_off.expires_at.date()
            expires_text = formatting.us_date(sign_off.expires_at, formatting.DEFAULT_TIME_ZONE)
            evidence_id = sign_off.evidence_id
        assert expires > date.today() + timedelta(days=150), "six-monthly revalidation"

        _goto(page, live_server, course_people["tech"], f"/me/evidence/{evidence_id}")
        body = page.locator("main")
        expect(body).to_contain_text("Morgan Ellis")
        expect(body).to_contain_text(expires_text)
        _goto(page, live_server, course_people["tech"], "/me/")
        expect(page.locator("main")).to_contain_text("Achieved")
        screenshot(page, "journey-3-technician-achieved")


def test_return_with_comments_then_resubmit_and_sign_off(app, browser, live_server, course_people):
    page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
    with screenshot_on_failure(page, "journey-return"):
        _record_cross_training(page, live_server, course_people, "Garbing, first attempt")
        _review(page, live_server, course_people, "return", "Please add the media-fill result.")

        with app.app_context():
            evidence = db.session.scalars(select(Evidence)).one()
            assert evidence.status == "returned"
            evidence_id, revision = evidence.id, evidence.revision
        _goto(page, live_server, course_people["tech"], f"/me/evidence/{evidence_id}")
        expect(page.locator("main")).to_contain_text("Please add the media-fill result.")
        page.get_by_role("link", name="Edit").first.click()
        page.fill("#f-title", "Garbing, with media fill")
        page.click("button[value=submit]")
        expect(page.get_by_role("status").first).to_be_visible()

        with app.app_context():
            evidence = db.session.get(Evidence, evidence_id)
            assert evidence.status == "submitted" and evidence.revision == revision + 1
            statuses = [r.status for r in db.session.scalars(select(ReviewRequest).order_by(ReviewRequest.id))]
            assert statuses == ["returned", "open"]

        _review(page, live_server, course_people, "sign_off", "Media fill passed.")
        with app.app_context():
            sign_off = db.session.scalars(select(SignOff)).one()
            assert sign_off.evidence_revision == revision + 1
            assert sign_off.evidence_snapshot["title"] == "Garbing, with media fill"
