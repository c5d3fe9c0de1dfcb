"""Issue 11's journeys in Debian's chromium, every page reached through a real LTI launch from the test platform:
- a fresh course, with no framework chosen: the manager places a competency by deep linking, a technician opens
  the placed link and saves their first evidence, with no administrator step;
- a preceptor: the manager names a technician preceptor, another technician asks for review, the preceptor
  signs off from their own review queue, and the transcript says "Preceptor";
- a revocation: the manager revokes the sign-off and the technician's evidence page and dashboard say so.
Screenshots of each land in test-artifacts."""
from datetime import date, timedelta
from urllib.parse import urlsplit

import jwt
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.models import Competency, CourseFramework, Evidence, Person, SignOff
from lti_tool.services import frameworks
from tests.support.browser import chromium, screenshot, screenshot_on_failure
from tests.support.platform import CANVAS_ROLES, CLAIM
from tests.test_deep_linking import DL, _deep_link_request

pytestmark = pytest.mark.browser
GARB = "USP797-02"


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def fresh_course(app, live_server, platform, registered, http):
    """The shipped framework installed (`frameworks load-default`), a course that never chose one."""
    with app.app_context():
        framework = frameworks.ensure_default_framework()
        db.session.commit()
        garb = db.session.scalars(select(Competency).where(Competency.framework_id == framework.id,
                                                           Competency.code == GARB)).one()
        return {"garb": garb.id, "steps": list(garb.checklist)}


def _launch(platform, http, base, sub, name, role="student", claims=None):
    resp, _, _ = platform.launch(http, base, sub=sub, name=name, roles=CANVAS_ROLES[role], claims=claims)
    assert resp.status_code == 303, resp.text
    return resp.headers["Location"]


def _goto(page, base, location, path):
    query = urlsplit(location).query
    page.goto(f"{base}{path}{'&' if '?' in path else '?'}{query}")


def _fill_cross_training(page, title, steps):
    page.fill("#f-title", title)
    page.select_option("#f-department", "iv_room")
    page.fill("#f-skills", "Garbing order")
    page.fill("#f-trainer-name", "Dana Ruiz")
    page.fill("#f-hours", "2")
    day = (date.today() - timedelta(days=1)).isoformat()
    page.fill("#f-start-date", day)
    page.fill("#f-end-date", day)
    for step in steps:
        page.locator(f"input[name=checklist_steps][value=\"{step}\"]").check()


def test_fresh_course_from_deep_linking_to_first_saved_evidence(app, browser, live_server, platform, http,
                                                                fresh_course):
    page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
    posted = {}

    def platform_return(route):
        posted["jwt"] = dict(p.split("=", 1) for p in route.request.post_data.split("&"))["JWT"]
        route.fulfill(status=200, content_type="text/html", body="<p>Added to the course.</p>")

    page.route(platform.base + "/deep-link-return", platform_return)
    with screenshot_on_failure(page, "fresh-course"):
        picker = _launch(platform, http, live_server, "mgr-fresh", "Morgan Ellis", "teacher",
                         claims=_deep_link_request(platform))
        page.goto(live_server + picker)
        target = f"competency:{fresh_course['garb']}"
        box = page.locator(f"input[name=target][value=\"{target}\"]")
        expect(box).to_be_visible()
        screenshot(page, "fresh-course-1-picker")
        box.check()
        page.get_by_role("button", name="Add to course").click()
        expect(page.locator("body")).to_contain_text("Added to the course.")
        items = jwt.decode(posted["jwt"], options={"verify_signature": False})[DL + "content_items"]
        assert [i["custom"]["target"] for i in items] == [target]

        # The LMS launches the placed link for a technician: straight to the form, for that competency.
        placed = _launch(platform, http, live_server, "tech-fresh", "Tess Nguyen",
                         claims=lambda b: {**b, CLAIM + "custom": {"target": target},
                                           CLAIM + "resource_link": {"id": "rl-fresh"}})
        page.goto(live_server + placed)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        if "/me/evidence/new/" not in page.url:
            page.get_by_role("link", name="Cross-training").first.click()
        _fill_cross_training(page, "Garbing on my first day", fresh_course["steps"])
        screenshot(page, "fresh-course-2-technician-form")
        page.click("button[value=draft]")
        expect(page.get_by_role("status").first).to_contain_text("saved as a draft")
        screenshot(page, "fresh-course-3-evidence-saved")
        with app.app_context():
            saved = db.session.scalars(select(Evidence)).one()
            assert saved.title == "Garbing on my first day"
            assert [link.competency_id for link in saved.competency_links] == [fresh_course["garb"]]
            assert db.session.scalars(select(CourseFramework)).all() == [], "no administrator step"

        # The manager finds the course's frameworks on the team pages.
        boss = _launch(platform, http, live_server, "mgr-fresh", "Morgan Ellis", "teacher")
        _goto(page, live_server, boss, "/team/queue")
        page.get_by_role("link", name="Course frameworks").click()
        expect(page.locator("main")).to_contain_text("the framework shipped with the tool")
        expect(page.locator("main")).to_contain_text("Pharmacy Technician")
        screenshot(page, "fresh-course-4-manager-course-frameworks")


def _names(app):
    with app.app_context():
        return {p.sub: p.id for p in db.session.scalars(select(Person))}


def test_preceptor_journey_then_revocation_seen_by_the_technician(app, browser, live_server, platform, http,
                                                                  fresh_course):
    boss = _launch(platform, http, live_server, "mgr-1", "Morgan Ellis", "teacher")
    tech = _launch(platform, http, live_server, "tech-1", "Tess Nguyen")
    prec = _launch(platform, http, live_server, "prec-1", "Paula Preceptor")
    page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
    with screenshot_on_failure(page, "preceptor"):
        # The manager names Paula preceptor for garbing.
        _goto(page, live_server, boss, "/team/preceptors")
        page.select_option("#person", str(_names(app)["prec-1"]))
        page.locator("details.area summary", has_text="USP compounding").click()  # the area is folded
        page.locator(f"input[name=competency][value=\"{fresh_course['garb']}\"]").check()
        page.get_by_role("button", name="Name preceptor").click()
        expect(page.get_by_role("status").first).to_contain_text("Paula Preceptor is now preceptor")
        screenshot(page, "preceptor-1-named")

        # Tess records garbing and asks for review.
        _goto(page, live_server, tech, f"/me/evidence/new/cross_training?competency={fresh_course['garb']}")
        _fill_cross_training(page, "Garbing observed by Paula", fresh_course["steps"])
        page.click("button[value=submit]")
        expect(page.get_by_role("status").first).to_contain_text("sent for review")

        # Paula signs off from her own review queue.
        _goto(page, live_server, prec, "/app/")
        page.get_by_role("link", name="Review queue").first.click()
        expect(page.locator("main")).to_contain_text("Garbing observed by Paula")
        screenshot(page, "preceptor-2-queue")
        page.locator("main table a", has_text="Review").first.click()
        for box in page.locator("input[name=checklist_seen]").all():
            box.check()
        page.locator("input[name=rating][value=competent]").check()
        page.locator("input[name=method][value=observed]").check()
        page.click("button[name=decision][value=sign_off]")
        expect(page.get_by_role("status").first).to_contain_text("Signed off USP797-02 for Tess Nguyen")
        with app.app_context():
            sign_off = db.session.scalars(select(SignOff)).one()
            assert (sign_off.signer_name, sign_off.signer_role) == ("Paula Preceptor", "preceptor")
            sign_off_id, evidence_id = sign_off.id, sign_off.evidence_id

        _goto(page, live_server, tech, f"/transcripts/people/{_names(app)['tech-1']}")
        row = page.locator("table tr", has_text="Paula Preceptor")
        expect(row).to_contain_text("Preceptor")
        screenshot(page, "preceptor-3-transcript")

        # The manager revokes it; the technician sees it on the evidence and under "What needs attention".
        _goto(page, live_server, boss, f"/team/sign-offs/{sign_off_id}")
        page.fill("#revoke-reason", "Signed before the media fill was read")
        page.get_by_role("button", name="Revoke sign-off").click()
        expect(page.get_by_role("status").first).to_contain_text("Sign-off revoked")
        expect(page.locator("main")).to_contain_text("Sign-off revoked on")
        screenshot(page, "revocation-1-manager-technician-page")
        _goto(page, live_server, tech, f"/me/evidence/{evidence_id}")
        expect(page.locator("main")).to_contain_text("Sign-off revoked on")
        expect(page.locator("main")).to_contain_text("no longer counts toward USP797-02")
        screenshot(page, "revocation-2-technician-evidence")
        _goto(page, live_server, tech, "/me/")
        expect(page.get_by_test_id("reassess")).to_contain_text("USP797-02")
        screenshot(page, "revocation-3-technician-needs-reassessment")
