"""The technician's pages in a real browser (Debian's chromium through Playwright), reached through a real LTI
launch: axe-core finds no violation on any of them, the dashboard and the cross-training form fit a 320 px
phone and can be used there, and the cross-training form can be filled and sent from the keyboard alone.
Screenshots of each page go to $ARTIFACTS_DIR."""
import io
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.models import Competency, Course, CourseFramework, Evidence, ReviewRequest
from lti_tool.services import evidence as evidence_service
from lti_tool.services import frameworks, reviews
from tests.support.browser import chromium, screenshot
from tests.support.platform import CANVAS_ROLES
from tests.test_technician_pages import PNG, actor_for, days_ago

pytestmark = pytest.mark.browser
TODAY = date.today()
KINDS = ["cross_training", "responsibility", "qi_project", "certification", "continuing_education"]


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def axe():
    return Axe()


def _id(code):
    return db.session.scalars(select(Competency.id).where(Competency.code == code)).one()


@pytest.fixture
def world(app, live_server, platform, registered, http):
    """A technician with a record worth looking at: achieved, due, expired, returned, CE and a certificate.
    Returns the launch location (/app/?lt=...) and the ids the tests visit."""
    resp, _, _ = platform.launch(http, live_server, sub="tech-1")
    location = resp.headers["Location"]
    platform.launch(http, live_server, sub="manager-1", roles=CANVAS_ROLES["teacher"])
    now = datetime.now(UTC)
    with app.app_context():
        framework = frameworks.ensure_default_framework()
        course = db.session.scalars(select(Course)).one()
        db.session.add(CourseFramework(course_id=course.id, framework_id=framework.id))
        db.session.flush()
        me, boss = actor_for("tech-1"), actor_for("manager-1")

        def cross_training(code, title):
            return evidence_service.create_draft(me, "cross_training", {
                "title": title, "department": "iv_room", "skills": ["Garbing"], "trainer_name": "Dana Ruiz",
                "hours": 4, "start_date": days_ago(250), "end_date": days_ago(249), "competency_ids": [_id(code)]})

        for code, days in (("USP797-02", 170), ("USP797-03", 120), ("XT-IV-01", 30)):
            ev = cross_training(code, f"{code} assessment")
            at = now - timedelta(days=days)
            request = reviews.request_review(me, ev.id, now=at)[0]
            reviews.sign_off(boss, request.id, "competent", "observed", [], comment="Well done.", now=at)
        returned = cross_training("XT-CEN-01", "Cart fill on 3 West")
        evidence_service.add_attachment(me, returned.id, "checklist.png", io.BytesIO(PNG))
        request = reviews.request_review(me, returned.id)[0]
        reviews.return_for_revision(boss, request.id, "Add the cart number and the ward.")
        evidence_service.create_draft(me, "certification", {
            "title": "CPhT", "credential": "ptcb_cpht", "number": "9", "issued_date": days_ago(500),
            "expiry_date": (TODAY + timedelta(days=100)).isoformat(), "competency_ids": [_id("CRED-CPHT")]})
        evidence_service.create_draft(me, "continuing_education", {
            "title": "Law update", "uan": "0197-0000-23-001-L03-T", "hours": 1.5, "completion_date": days_ago(9),
            "provider_name": "State board", "competency_ids": [_id("A2-01")]})
        db.session.commit()
        ids = {"returned": returned.id, "garb": _id("USP797-02")}
    token = parse_qs(urlsplit(location).query)["lt"][0]
    return {"base": live_server, "location": location, "token": token, **ids}


def _url(world, path, **params):
    query = "&".join(f"{k}={v}" for k, v in {"lt": world["token"], **params}.items())
    return f"{world['base']}{path}?{query}"


def _no_violations(axe, page, name):
    results = axe.run(page)
    assert results.violations_count == 0, f"{name}: {results.generate_report()}"


def _fits(page, width):
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"horizontal scrolling: the page is {scroll}px wide in a {width}px viewport"


def test_every_technician_page_passes_axe(browser, axe, world):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    # Through the launch and the main navigation, as a technician meets it.
    page.goto(world["base"] + world["location"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My portfolio").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My portfolio")
    expect(page.get_by_text("Add the cart number and the ward.")).to_be_visible()
    _no_violations(axe, page, "dashboard")
    screenshot(page, "technician-dashboard")

    page.get_by_role("link", name="Record evidence").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Record evidence")
    _no_violations(axe, page, "choose a kind")
    screenshot(page, "technician-record-choose")

    for kind in KINDS:
        page.goto(_url(world, f"/me/evidence/new/{kind}"))
        _no_violations(axe, page, f"{kind} form")
        screenshot(page, f"technician-form-{kind}")

    # The error state: the server's messages (browser checks switched off to reach them).
    page.goto(_url(world, "/me/evidence/new/continuing_education"))
    page.get_by_label("Title").fill("Bad CE")
    page.get_by_label("Universal Activity Number (UAN)").fill("0197-0000-17-001-B05-T")
    page.evaluate("document.querySelector('form.evidence-form').noValidate = true")
    page.get_by_role("button", name="Save as draft").click()
    summary = page.locator("#error-summary")
    expect(summary).to_contain_text("There is a problem")
    expect(summary).to_be_focused()
    expect(page.locator("#f-uan-error")).to_contain_text("must be L (live) or H (home study)")
    _no_violations(axe, page, "form with errors")
    screenshot(page, "technician-form-errors")

    page.goto(_url(world, f"/me/evidence/{world['returned']}"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Cart fill on 3 West")
    expect(page.get_by_role("link", name="checklist.png")).to_be_visible()
    _no_violations(axe, page, "evidence detail")
    screenshot(page, "technician-evidence-detail")

    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Edit")
    _no_violations(axe, page, "edit form")
    screenshot(page, "technician-evidence-edit")

    page.goto(_url(world, "/me/evidence"))
    _no_violations(axe, page, "evidence list")
    page.get_by_label("Kind").select_option("certification")
    page.get_by_role("button", name="Show").click()
    expect(page.locator(".evidence-item")).to_have_count(1)
    _no_violations(axe, page, "filtered evidence list")
    screenshot(page, "technician-evidence-list")

    # A signed-off item shows its sign-off: who, role, when, method, rating, expiry.
    page.goto(_url(world, "/me/evidence", status="signed_off"))
    page.get_by_role("link", name="XT-IV-01 assessment").click()
    signoff = page.locator(".sign-off")
    expect(signoff).to_contain_text("Tess Nguyen (Manager)")
    expect(signoff).to_contain_text("Observed")
    expect(signoff).to_contain_text("Competent")
    _no_violations(axe, page, "signed-off detail")
    screenshot(page, "technician-evidence-signed-off")
    context.close()


def test_phone_width_dashboard_and_cross_training_form(app, browser, axe, world):
    context = browser.new_context(viewport={"width": 320, "height": 640}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(_url(world, "/me/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("My portfolio")
    _fits(page, 320)
    expect(page.get_by_text("days left")).to_be_visible()
    screenshot(page, "technician-dashboard-320")

    page.goto(_url(world, "/me/evidence/new/cross_training", competency=world["garb"]))
    _fits(page, 320)
    _no_violations(axe, page, "cross-training form at 320 px")
    screenshot(page, "technician-form-cross_training-320")
    # Usable at this width: every control fits, and the form can be filled and saved.
    for selector in ("#f-title", "#f-department", "#f-hours", "#f-start-date", "button[value=submit]"):
        box = page.locator(selector).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 320, selector
    page.locator("#f-title").fill("Garbing on a phone")
    page.locator("#f-department").select_option("iv_room")
    page.locator("#f-skills").fill("Garbing order")
    page.locator("#f-trainer-name").fill("Dana Ruiz")
    page.locator("#f-hours").fill("2.25")
    page.locator("#f-start-date").fill(days_ago(2))
    page.locator("#f-end-date").fill(days_ago(2))
    page.locator("button[value=submit]").tap()
    expect(page.get_by_role("status").first).to_contain_text("saved and sent for review")
    _fits(page, 320)
    with app.app_context():
        ev = db.session.scalars(select(Evidence).where(Evidence.title == "Garbing on a phone")).one()
        assert ev.status == "submitted" and ev.data["hours"] == 2.25
    context.close()


def test_keyboard_only_cross_training(app, browser, world):
    context = browser.new_context(viewport={"width": 1000, "height": 900}, locale="en-US")
    page = context.new_page()
    page.goto(_url(world, "/me/evidence/new/cross_training", competency=world["garb"]))
    active = "document.activeElement && document.activeElement.id"

    def tab_to(selector, limit=150):
        """Press Tab until the element matching `selector` has focus."""
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to("#f-title")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused field shows where focus is"
    page.keyboard.type("Keyboard garbing")
    page.keyboard.press("Tab")
    assert page.evaluate(active) == "f-department"
    page.keyboard.type("IV")
    assert page.locator("#f-department").input_value() == "iv_room"
    tab_to("#f-skills")
    page.keyboard.type("Garbing order")
    tab_to("#f-trainer-name")
    page.keyboard.type("Dana Ruiz")
    tab_to("#f-hours")
    page.keyboard.type("3.5")
    start = date.today() - timedelta(days=3)
    tab_to("#f-start-date")
    page.keyboard.type(start.strftime("%m%d%Y"))
    tab_to("#f-end-date")
    page.keyboard.type(start.strftime("%m%d%Y"))
    assert page.locator("#f-end-date").input_value() == start.isoformat()
    # The competency from the link is ticked; "All steps observed", then its checklist steps follow it in the
    # tab order.
    tab_to(f"input[name=competency_ids][value='{world['garb']}']")
    assert page.evaluate("document.activeElement.checked")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.hasAttribute('data-all-steps')")
    page.keyboard.press("Tab")
    first_step = page.evaluate("document.activeElement.value")
    page.keyboard.press("Space")
    assert page.evaluate("document.activeElement.checked")
    tab_to("button[value=draft]")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").first).to_contain_text("saved as a draft")
    with app.app_context():
        ev = db.session.scalars(select(Evidence).where(Evidence.title == "Keyboard garbing")).one()
        assert ev.data["checklist_steps"] == [first_step]
        assert ev.data["hours"] == 3.5 and ev.data["start_date"] == start.isoformat()
        assert not db.session.scalars(select(ReviewRequest).where(ReviewRequest.evidence_id == ev.id)).all()
    context.close()
