"""No page scrolls sideways on a phone (issue 16): every page a technician, a manager and an LMS administrator
sees, and the public verification page, in Debian's chromium at 320x640 and 390x844, reached through real LTI
launches: document.scrollingElement.scrollWidth <= innerWidth at both, axe-core finds nothing at 320 px, the
technician's pages keep 44 px targets (as tests/test_phone_browser.py checks them). One browser, one launch per
role, one page per size; screenshots of some 320 px pages go to test-artifacts/. Then the team matrix of 60
technicians by the shipped framework at 1280x800: the page itself never wider than the window, the table
scrolling in its own box with the names and the header row in view, cells that open the record at the
competency, and a screenshot."""
import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.models import CourseFramework, Evidence, Framework, Person, ReviewRequest, SignOff
from lti_tool.services import frameworks
from tests.support.browser import chromium, screenshot, screenshot_on_failure
from tests.test_manager_browser import _populate
from tests.test_manager_pages import Team, launch
from tests.test_phone_browser import NARROW, PHONE, fits, targets_ok

pytestmark = pytest.mark.browser
WIDE = {"viewport": {"width": 1280, "height": 800}}
PHOTOGRAPHED = {"portfolio", "portfolio filtered", "queue", "matrix", "record", "transcript", "admin", "imports"}


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def clean(page, name):
    results = Axe().run(page)
    assert results.violations_count == 0, f"{name}: {results.generate_report()}"


def _pages(app, team, techs, signed):
    """(role, path, name, technician page?) for every page each role opens."""
    with app.app_context():
        tech_id = techs[0]
        evidence_id = db.session.scalars(select(Evidence.id).where(Evidence.person_id == tech_id)).first()
        request_ids = db.session.scalars(select(ReviewRequest.id).where(ReviewRequest.status == "open")
                                         .order_by(ReviewRequest.id)).all()
        framework_id = db.session.scalars(select(Framework.id).order_by(Framework.id)).first()
        sign_off_id = db.session.scalars(select(SignOff.id).order_by(SignOff.id)).first()
    technician = [("/app/", "home", False), ("/me/", "portfolio", True), ("/me/?status=not_started", "portfolio "
                  "filtered", True), ("/me/evidence/new", "choose", True),
                  ("/me/evidence/new/cross_training", "cross-training form", True),
                  ("/me/evidence/new/qi_project", "QI form", True), ("/me/evidence", "evidence list", True),
                  (f"/me/evidence/{evidence_id}", "evidence detail", True), ("/transcripts/", "transcripts", False),
                  (f"/transcripts/people/{tech_id}", "transcript", False),
                  ("/notifications/preferences", "e-mail preferences", False)]
    manager = [("/app/", "home", False), ("/team/queue", "queue", False),
               (f"/team/review/{request_ids[0]}", "review", False),
               ("/team/bulk?" + "&".join(f"request={i}" for i in request_ids), "bulk", False),
               (f"/team/sign-offs/{sign_off_id}", "sign-off", False), ("/team/", "matrix", False),
               ("/team/?status=expired", "matrix filtered", False), (f"/team/technicians/{techs[4]}", "record", False),
               ("/team/preceptors", "preceptors", False), ("/reports/", "reports", False),
               ("/reports/roster", "roster", False), ("/reports/summary", "summary", False),
               (f"/reports/people/{techs[4]}", "person file", False), ("/reports/audit", "audit log", False),
               ("/transcripts/", "transcripts", False), (f"/transcripts/people/{techs[5]}", "transcript", False),
               ("/admin/course-frameworks", "course frameworks", False),
               ("/notifications/preferences", "e-mail preferences", False)]
    admin = [("/app/", "home", False), ("/admin/", "admin", False), ("/admin/frameworks", "frameworks", False),
             (f"/admin/frameworks/{framework_id}", "framework", False), ("/admin/settings", "settings", False),
             ("/admin/course-frameworks", "course frameworks", False), ("/imports/", "imports", False),
             ("/reports/audit", "audit log", False), ("/transcripts/", "transcripts", False)]
    assert signed
    return {"technician": technician, "manager": manager, "admin": admin}


def test_no_page_scrolls_sideways_at_320_and_390_px(app, browser, live_server, platform, registered, http):
    team = Team(app, platform, http, live_server)
    techs, signed = _populate(team)
    with app.app_context():
        tech_sub = db.session.get(Person, techs[0]).sub
        # Long unbroken words where people type: they wrap instead of widening the page.
        db.session.get(Person, techs[1]).name = "Wolfeschlegelsteinhausenbergerdorff-Featherstonehaugh Tech"
        for item in db.session.scalars(select(Evidence).where(Evidence.person_id.in_(techs[:2]))):
            item.title = "Sterile-compounding-cross-training-in-the-IV-room-with-the-new-hood-" + str(item.id)
        db.session.commit()
    tokens = {"manager": team.token,
              "technician": launch(platform, http, live_server, role="student", sub=tech_sub, name="Tech 000"),
              "admin": launch(platform, http, live_server, role="account_admin", sub="admin-1", name="Ada Admin")}
    pages = _pages(app, team, techs, signed)
    seen = 0
    for size in (NARROW, PHONE):
        width = size["viewport"]["width"]
        context = browser.new_context(**size)
        page = context.new_page()
        with screenshot_on_failure(page, f"fit-{width}"):
            for role, visits in pages.items():
                for path, name, own in visits:
                    joiner = "&" if "?" in path else "?"
                    response = page.goto(f"{live_server}{path}{joiner}lt={tokens[role]}")
                    label = f"{role} {name} ({path}) at {width} px"
                    assert response.status < 400, f"{label}: {response.status}"
                    page.wait_for_load_state("load")
                    fits(page, label)
                    if own:
                        targets_ok(page, label)
                    if width == 320:  # axe-core at the narrower width only: it is most of the test's time
                        clean(page, label)
                        if name in PHOTOGRAPHED:
                            screenshot(page, f"fit-320-{role}-{name}")
                    seen += 1
            page.goto(f"{live_server}/verify")
            fits(page, f"verify at {width} px")
            clean(page, f"verify at {width} px")
        context.close()
    assert seen == 2 * sum(len(v) for v in pages.values())


def test_sixty_technicians_matrix_at_1280_px(app, browser, live_server, platform, registered, http):
    team = Team(app, platform, http, live_server)
    with app.app_context():
        shipped = frameworks.ensure_default_framework()
        db.session.add(CourseFramework(course_id=team.course_id, framework_id=shipped.id))
        db.session.commit()
    techs = team.technicians(60, launched=True)
    for i, tech in enumerate(techs[:20]):
        request = team.request(tech, [team.garb, team.cart] if i % 3 else [team.asep])
        if i % 2:
            team.sign(request[0])
    context = browser.new_context(**WIDE)
    page = context.new_page()
    with screenshot_on_failure(page, "matrix-60"):
        page.goto(team.url("/team/"))
        page.wait_for_load_state("load")
        rows = page.locator("table.matrix tbody tr")
        expect(rows).to_have_count(50)
        fits(page, "matrix at 1280 px")
        box = page.evaluate("""() => { const w = document.querySelector('.matrix-wrap');
                               return [w.scrollWidth, w.clientWidth, w.getBoundingClientRect().right]; }""")
        assert box[0] > box[1] and box[2] <= 1280, box  # the table scrolls inside its box, the box fits
        screenshot(page, "manager-matrix-60-technicians-1280")
        # Scrolled right and down inside its box: the names and the header row stay in view.
        page.evaluate("() => { const w = document.querySelector('.matrix-wrap'); w.scrollLeft = 2000; "
                      "w.scrollTop = 400; }")
        name = page.locator("table.matrix tbody th.name-col").nth(20).bounding_box()
        wrap = page.locator(".matrix-wrap").bounding_box()
        head = page.locator("table.matrix thead th").nth(40).bounding_box()
        assert abs(name["x"] - wrap["x"]) < 3 and abs(head["y"] - wrap["y"]) < 3, (name, head, wrap)
        page.evaluate("() => { const w = document.querySelector('.matrix-wrap'); w.scrollLeft = 0; w.scrollTop = 0; }")

        # Full names: in the head for screen readers and on hover, in the legend below the table.
        first_head = page.locator("table.matrix thead th[data-c]").first
        assert first_head.get_attribute("title") == "IV-GARB Garbing"
        expect(page.locator(".legend-names")).to_contain_text("A1-03")
        # The keyboard: one cell is in the tab order; the arrows move; the line above names the cell in full.
        cell = page.locator("table.matrix tbody tr").first.locator("td a")
        expect(cell).to_have_count(1)
        cell.focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowDown")
        focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
        assert focused.startswith("Tech 001, IV-ASEP Aseptic technique: "), focused
        expect(page.locator("#matrix-readout")).to_have_text(focused)
        assert page.evaluate("document.querySelectorAll('table.matrix td a[tabindex=\"0\"]').length") == 1
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert re.search(r"/team/technicians/\d+\?.*competency=\d+#competency-\d+$", page.url), page.url
        expect(page.get_by_role("heading", level=1)).to_have_text("Tech 001")
        target = page.locator("tr.focused")
        expect(target).to_have_count(1)
        expect(target).to_be_visible()
        expect(target).to_contain_text("IV-ASEP")

        # A pointer: the cell under it becomes a link to the same place.
        page.go_back(wait_until="load")
        with page.expect_navigation():
            page.locator("table.matrix tbody tr").nth(2).locator("td").nth(3).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Tech 002")

        # Search and the competency filter from the form, then the print stylesheet: no navigation or filters,
        # every column, the legend.
        page.go_back(wait_until="load")
        page.get_by_label("Technician name").fill("tech 05")
        with page.expect_navigation():
            page.get_by_role("button", name="Apply filters").click()
        expect(rows).to_have_count(10)
        page.emulate_media(media="print")
        assert page.locator(".filters").is_hidden() and page.locator(".mainnav").is_hidden()
        assert page.evaluate("getComputedStyle(document.querySelector('.matrix-wrap')).overflow") == "visible"
        expect(page.locator(".legend-names")).to_be_visible()
        page.emulate_media(media="screen")
        # axe-core over 50 x 130 cells takes minutes on this machine: it checks the same markup with the columns
        # of one area (the cells, heads, links and regions are the same kind).
        page.goto(team.url("/team/", area=team.iv_area))
        page.locator("table.matrix tbody td a").first.focus()
        clean(page, "matrix of 60, one area, at 1280 px")
        page.set_viewport_size({"width": 320, "height": 640})
        fits(page, "matrix at 320 px")
        screenshot(page, "manager-matrix-320")
    context.close()
