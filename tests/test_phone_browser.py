"""Recording on a phone, in real chromium at 390x844 and 320 px, reached through real LTI launches.

The deep-linked cross-training journey is counted: every action the technician takes, from the tap on the
link in the LMS to "Save and request review", goes through `Taps`, and the test asserts at most 8. The pages
never scroll sideways (document.scrollingElement.scrollWidth <= innerWidth), controls are 44 px targets,
axe-core finds nothing, and screenshots go to $ARTIFACTS_DIR.
"""
import io
from datetime import date, timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.models import Competency, Course, CourseFramework, Evidence, ReviewRequest
from lti_tool.services import evidence as evidence_service
from lti_tool.services import frameworks
from tests.support.browser import chromium, screenshot, screenshot_on_failure
from tests.test_technician_pages import actor_for

pytestmark = pytest.mark.browser
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 1}
NARROW = {**PHONE, "viewport": {"width": 320, "height": 640}}
# Photos as the camera gives them: the server looks at the first bytes (JPEG), not the name.
JPEG = b"\xff\xd8\xff\xe0" + bytes(2000)
MAX_TAPS = 8


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def course(app, registered):
    """The shipped framework in the course the test platform launches into (created by a first launch)."""
    def attach():
        with app.app_context():
            course = db.session.scalars(select(Course)).one()
            if not db.session.scalars(select(CourseFramework).where(CourseFramework.course_id == course.id)).first():
                framework = frameworks.ensure_default_framework()
                db.session.add(CourseFramework(course_id=course.id, framework_id=framework.id))
                db.session.commit()
    return attach


def _competency(app, code):
    with app.app_context():
        c = db.session.scalars(select(Competency).where(Competency.code == code)).one()
        return {"id": c.id, "title": c.title, "checklist": list(c.checklist or [])}


def _launch(platform, http, live_server, sub="tech-1", target=None):
    claims = (lambda b: {**b, CLAIM + "custom": {"target": target}}) if target else None
    resp, _, _ = platform.launch(http, live_server, sub=sub, claims=claims)
    assert resp.status_code == 303, resp.text[:2000]
    return live_server + resp.headers["Location"]


class Taps:
    """Every action of the person, counted: a tap, a typed field, a choice, a file picked."""

    def __init__(self, page):
        self.page, self.count, self.log = page, 0, []

    def _note(self, what):
        self.count += 1
        self.log.append(what)

    def open(self, url, what):
        self._note(what)
        self.page.goto(url)

    def tap(self, locator, what):
        self._note(what)
        locator.tap()

    def type(self, locator, text, what):
        self._note(what)
        locator.fill(text)

    def pick_files(self, locator, files, what):
        self._note(what)
        locator.set_input_files(files)


# What sticks out past the window, outside any box that scrolls or clips it: the culprits of a failure.
OVERFLOWING = """(room) => {
  const boxed = el => { for (let p = el.parentElement; p; p = p.parentElement) {
    const o = getComputedStyle(p).overflowX; if (o !== "visible") return p !== document.body
      && p !== document.documentElement; } return false; };
  return [...document.querySelectorAll("body *")].filter(el => el.getBoundingClientRect().right > room + 1
    && !boxed(el)).slice(0, 6).map(el => el.outerHTML.slice(0, 120));
}"""


def fits(page, name):
    # A mobile browser widens its layout viewport (innerWidth) to content that overflows, so the page is
    # measured against the device's width as well as innerWidth.
    room = page.viewport_size["width"]
    width, inner = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    assert width <= room and inner <= room, (
        f"{name}: the page is {width} px wide in a {room} px window: {page.evaluate(OVERFLOWING, room)}")


def no_violations(page, name):
    results = Axe().run(page)
    assert results.violations_count == 0, f"{name}: {results.generate_report()}"


SMALL_TARGETS = """() => {
  // Controls a finger must hit, smaller than 44 px. Links inside running text are exempt (WCAG 2.5.8 "inline").
  const small = [];
  // An input drawn as its label (opacity 0) is not a target itself; its label is, and is measured.
  const visible = el => { const r = el.getBoundingClientRect(), s = getComputedStyle(el);
                          return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.opacity !== "0"; };
  const inline = a => { const p = a.parentElement; return getComputedStyle(a).display === "inline"
                        && p && p.textContent.trim() !== a.textContent.trim(); };
  for (const el of document.querySelectorAll("main a, main button, main select, main summary, main textarea, "
      + "main input:not([type=hidden]), main label.button, nav a")) {
    if (!visible(el) || (el.tagName === "A" && inline(el))) continue;
    let box = el.getBoundingClientRect();
    if (el.type === "checkbox" || el.type === "radio") {
      const label = document.querySelector(`label[for="${el.id}"]`);
      if (!label) { small.push(el.outerHTML.slice(0, 80)); continue; }
      const l = label.getBoundingClientRect();
      const joined = Math.abs(l.left - box.right) < 1;  // the label starts where the box ends: one target
      box = {width: joined ? l.right - box.left : box.width, height: Math.max(box.height, l.height)};
    }
    if (box.height < 43.5 || box.width < 43.5) small.push(`${Math.round(box.width)}x${Math.round(box.height)} `
        + el.outerHTML.slice(0, 100));
  }
  return small;
}"""


def targets_ok(page, name):
    small = page.evaluate(SMALL_TARGETS)
    assert not small, f"{name}: targets under 44 px: {small}"


def test_deep_linked_cross_training_in_at_most_8_taps(app, browser, live_server, platform, registered, http,
                                                      course):
    """IV room cross-training with its checklist and two photos, from the LMS link to "sent for review"."""
    _launch(platform, http, live_server)  # the technician's first launch creates the course
    course()
    competency = _competency(app, "XT-IV-01")
    link = _launch(platform, http, live_server, target=f"competency:{competency['id']}")
    start = (date.today() - timedelta(days=1)).isoformat()

    context = browser.new_context(**PHONE)
    page = context.new_page()
    taps = Taps(page)
    with screenshot_on_failure(page, "phone-journey"):
        taps.open(link, "the link in the LMS")
        # The competency accepts cross-training only: the form opens at once, prepared for it.
        expect(page.get_by_role("heading", level=1)).to_have_text("Record cross-training")
        chosen = page.locator(f"input[name=competency_ids][value='{competency['id']}']")
        expect(chosen).to_be_checked()
        expect(page.locator("#f-department")).to_have_value("iv_room")
        expect(page.locator("#f-title")).to_have_value(competency["title"])
        # The department filters the list: its competencies only, their groups open, the rest out of the way.
        expect(page.locator("#f-filter-status")).to_contain_text("IV room / sterile compounding")
        listed = page.locator("li.competency-choice:visible")
        assert 1 < listed.count() < 20, listed.count()
        assert page.locator("li.competency-choice").count() > 60
        fits(page, "form")
        targets_ok(page, "cross-training form")
        no_violations(page, "cross-training form at 390 px")
        screenshot(page, "phone-390-cross-training-form")

        taps.type(page.get_by_label("Skills practiced"), "Aseptic technique\nFirst air", "skills")
        taps.type(page.get_by_label("Trainer’s name"), "Dana Ruiz", "trainer")
        taps.type(page.get_by_label("Hours of training"), "4", "hours")
        taps.type(page.get_by_label("Start date"), start, "start date")
        expect(page.get_by_label("End date")).to_have_value(start)  # one day: the end follows the start
        taps.tap(page.get_by_label(f"All {len(competency['checklist'])} steps observed for XT-IV-01"),
                 "all steps observed")
        steps = page.locator(f"#steps-{competency['id']} input[name=checklist_steps]")
        assert steps.count() == len(competency["checklist"]) and all(
            steps.nth(i).is_checked() for i in range(steps.count()))
        taps.pick_files(page.locator("#f-files"), [
            {"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": JPEG},
            {"name": "IMG_0002.jpg", "mimeType": "image/jpeg", "buffer": JPEG + b"2"}], "two photos")
        expect(page.locator("#f-files-list li")).to_have_count(2)
        fits(page, "form filled")
        screenshot(page, "phone-390-cross-training-filled")
        taps.tap(page.get_by_role("button", name="Save and request review"), "save and request review")

        expect(page.get_by_role("status").first).to_contain_text("saved and sent for review")
        page.wait_for_load_state()
        expect(page.locator("dl.facts").first).to_contain_text("(revision 1)")  # one save, one revision
        fits(page, "detail")
        screenshot(page, "phone-390-cross-training-sent")
    assert taps.count <= MAX_TAPS, taps.log
    with app.app_context():
        ev = db.session.scalars(select(Evidence)).one()
        assert (ev.status, ev.revision, ev.kind, ev.title) == ("submitted", 1, "cross_training", competency["title"])
        assert ev.data["department"] == "iv_room" and ev.data["end_date"] == ev.data["start_date"] == start
        assert ev.data["checklist_steps"] == competency["checklist"], "each step recorded on its own"
        assert ev.data["trainer_name"] == "Dana Ruiz", "the trainer's name still says who observed them"
        assert sorted(a.filename for a in ev.attachments) == ["IMG_0001.jpg", "IMG_0002.jpg"]
        assert [r.competency_id for r in db.session.scalars(select(ReviewRequest))] == [competency["id"]]
    context.close()


def test_files_are_checked_before_upload_and_the_good_ones_stay_chosen(app, browser, live_server, platform,
                                                                      registered, http, course, monkeypatch):
    """At 320 px: a file over ATTACHMENT_MAX_BYTES or of a refused type is named and left out while the others
    stay chosen; camera photos add up; the department filters the competencies and "Show all" undoes it."""
    monkeypatch.setitem(app.config, "ATTACHMENT_MAX_BYTES", 4096)
    landing = _launch(platform, http, live_server)
    course()
    context = browser.new_context(**NARROW)
    page = context.new_page()
    with screenshot_on_failure(page, "phone-files"):
        page.goto(landing)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Record evidence").tap()
        page.get_by_role("link", name="Cross-training").tap()
        expect(page.get_by_role("heading", level=1)).to_have_text("Record cross-training")
        page.wait_for_load_state()  # the whole list is there before it is counted
        expect(page.locator("#f-filter-status")).to_be_hidden()
        everything = page.locator("li.competency-choice").count()
        page.get_by_label("Department", exact=True).select_option("central")
        expect(page.locator("#f-filter-status")).to_contain_text("Hospital central pharmacy")
        central = page.locator("li.competency-choice:visible").count()
        assert 0 < central < everything
        expect(page.locator("details.group:visible").first).to_have_attribute("open", "")
        page.get_by_role("button", name="Show all competencies").tap()
        expect(page.locator("li.competency-choice:not([hidden])")).to_have_count(everything)
        expect(page.locator("details.group:not([hidden])")).to_have_count(page.locator("details.group").count())
        page.get_by_role("button", name="Show only Hospital central pharmacy").tap()
        expect(page.locator("li.competency-choice:visible")).to_have_count(central)

        files = page.locator("#f-files")
        expect(files).to_have_attribute("data-max-bytes", "4096")
        expect(files).to_have_attribute("accept", "image/*,application/pdf")
        expect(page.locator("#f-camera")).to_have_attribute("capture", "environment")
        files.set_input_files([{"name": "checklist.jpg", "mimeType": "image/jpeg", "buffer": JPEG},
                               {"name": "huge.jpg", "mimeType": "image/jpeg", "buffer": JPEG + bytes(5000)}])
        refused = page.locator("#f-files-refused")
        expect(refused).to_contain_text("“huge.jpg” is 7 KB; a file can be at most 4 KB.")
        expect(refused).to_contain_text("The other file is still chosen.")
        expect(page.locator("#f-files-list li")).to_have_count(1)
        assert page.evaluate("document.getElementById('f-files').files.length") == 1
        page.locator("#f-camera").set_input_files(
            {"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": JPEG + b"camera"})
        files.set_input_files({"name": "clip.gif", "mimeType": "image/gif", "buffer": b"GIF89a" + bytes(10)})
        expect(refused).to_contain_text("“clip.gif” cannot be attached")
        expect(refused).to_contain_text("The other 2 files are still chosen.")
        expect(page.locator("#f-files-list")).to_contain_text("checklist.jpg")
        expect(page.locator("#f-files-list")).to_contain_text("photo.jpg")
        assert page.evaluate("[document.getElementById('f-files').files.length, "
                             "document.getElementById('f-camera').files.length]") == [2, 0]
        page.get_by_role("button", name="Remove checklist.jpg").tap()
        expect(page.locator("#f-files-list li")).to_have_count(1)
        fits(page, "form with files at 320 px")
        targets_ok(page, "form with files at 320 px")
        no_violations(page, "form with files at 320 px")
        screenshot(page, "phone-320-files-refused")

        page.get_by_label("Title").fill("Cart fill")
        page.get_by_label("Skills practiced").fill("Cart fill")
        page.get_by_label("Trainer’s name").fill("Dana Ruiz")
        page.get_by_label("Hours of training").fill("2")
        page.get_by_label("Start date").fill((date.today() - timedelta(days=3)).isoformat())
        page.get_by_label("End date").fill((date.today() - timedelta(days=2)).isoformat())
        page.get_by_label("Start date").fill((date.today() - timedelta(days=4)).isoformat())
        # Changed by hand, the end date no longer follows the start.
        expect(page.get_by_label("End date")).to_have_value((date.today() - timedelta(days=2)).isoformat())
        page.get_by_role("checkbox", name="XT-CEN-01 Cart fill").check()
        page.get_by_role("button", name="Save as draft").tap()
        expect(page.get_by_role("status").first).to_contain_text("saved as a draft")
    with app.app_context():
        ev = db.session.scalars(select(Evidence)).one()
        assert [a.filename for a in ev.attachments] == ["photo.jpg"] and ev.revision == 1
    context.close()


@pytest.mark.parametrize("size", [PHONE, NARROW], ids=["390", "320"])
def test_technician_pages_fit_a_phone_and_the_nav_shows_every_tab(app, browser, live_server, platform, registered,
                                                                  http, course, size):
    """The launch lands on the portfolio; every tab is in sight (none cut off, Transcripts reachable); the
    technician's pages never scroll sideways, their controls are 44 px targets and axe finds nothing."""
    landing = _launch(platform, http, live_server)
    course()
    with app.app_context():
        cart = db.session.scalars(select(Competency.id).where(Competency.code == "XT-CEN-01")).one()
        item = evidence_service.create_draft(actor_for("tech-1"), "cross_training", {
            "title": "Cart fill on 3 West", "department": "central", "skills": ["Cart fill"],
            "trainer_name": "Dana Ruiz", "hours": 2, "start_date": date.today().isoformat(),
            "end_date": date.today().isoformat(), "notes": "Cart 4, ward 3 West.", "competency_ids": [cart]})
        evidence_service.add_attachment(actor_for("tech-1"), item.id, "checklist.jpg", io.BytesIO(JPEG))
        db.session.commit()
        item_id = item.id
    width = size["viewport"]["width"]
    context = browser.new_context(**size)
    page = context.new_page()
    nav = page.get_by_role("navigation", name="Main")
    with screenshot_on_failure(page, f"phone-{width}-pages"):
        page.goto(landing)
        expect(page.get_by_role("heading", level=1)).to_have_text("My portfolio")
        labels = ["Home", "My portfolio", "Record evidence", "My evidence", "Transcripts"]
        expect(nav.get_by_role("link")).to_have_text(labels)
        for label in labels:
            box = nav.get_by_role("link", name=label).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width and box["height"] >= 44, (label, box)
        assert page.evaluate("[...document.querySelectorAll('.mainnav a')].every(a => a.scrollWidth <= a.clientWidth)")

        pages = [("portfolio", None), ("choose", "Record evidence"), ("list", "My evidence")]
        for name, tab in pages:
            if tab:
                nav.get_by_role("link", name=tab).tap()
                expect(nav.get_by_role("link", name=tab)).to_have_attribute("aria-current", "page")
                page.wait_for_load_state()
            fits(page, f"{name} at {width} px")
            targets_ok(page, f"{name} at {width} px")
            no_violations(page, f"{name} at {width} px")
            screenshot(page, f"phone-{width}-{name}")

        page.get_by_role("link", name="Cart fill on 3 West").tap()
        expect(page.get_by_role("heading", level=1)).to_have_text("Cart fill on 3 West")
        page.wait_for_load_state()
        facts = page.locator("dl.facts").first
        expect(facts.locator("dt", has_text="Notes")).to_have_count(1)  # "Notes" shown once
        for name in ("detail", "edit"):
            if name == "edit":
                page.get_by_role("link", name="Edit").tap()
                expect(page.get_by_role("heading", level=1)).to_contain_text("Edit")
                page.wait_for_load_state()
            fits(page, f"{name} at {width} px")
            targets_ok(page, f"{name} at {width} px")
            no_violations(page, f"{name} at {width} px")
            screenshot(page, f"phone-{width}-{name}")

        nav.get_by_role("link", name="Transcripts").tap()
        expect(nav.get_by_role("link", name="Transcripts")).to_have_attribute("aria-current", "page")
    assert item_id
    context.close()
