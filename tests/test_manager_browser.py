"""The manager's pages in Debian's chromium, reached through a real launch from the test platform: axe-core with
zero violations on every page, a bulk sign-off, matrix filtering, sticky headers, and screenshots."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.models import Course, SignOff
from tests.support.browser import chromium, screenshot
from tests.test_manager_pages import NOW, Team, launch

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def team(app, live_server, platform, registered, http):
    return Team(app, platform, http, live_server)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.csp_errors = []
    page.on("console", lambda msg: page.csp_errors.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    yield page
    context.close()


def axe_clean(page, name):
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    assert results.violations_count == 0, f"{name}: {results.generate_report()}"
    assert page.csp_errors == [], page.csp_errors


def open_page(page, team, path):
    page.goto(team.url(path))
    page.wait_for_load_state("load")


def _populate(team):
    techs = team.technicians(6)
    for i, tech in enumerate(techs[:3]):
        team.request(tech, [team.garb], title=f"Garbing observed {i}", at=NOW - timedelta(days=3 - i))
    team.request(techs[3], [team.cart], title="Cart fill week")
    team.sign(team.request(techs[4], [team.garb], at=NOW - timedelta(days=215))[0], at=NOW - timedelta(days=215))
    signed = team.sign(team.request(techs[5], [team.asep], at=NOW - timedelta(days=350))[0],
                       at=NOW - timedelta(days=350))
    return techs, signed


def test_every_manager_page_passes_axe_and_is_photographed(team, page, app):
    techs, signed = _populate(team)
    with app.app_context():
        course = db.session.get(Course, team.course_id)
        course.roster_synced_at = NOW - timedelta(hours=2)
        db.session.commit()

    open_page(page, team, "/team/queue")
    assert page.locator("table.queue tbody tr").count() == 4
    assert page.locator("#select-all").count() == 1  # added by manager.js
    axe_clean(page, "queue")
    screenshot(page, "manager-queue")

    page.get_by_role("link", name="Review Tech 000, IV-GARB").click()
    page.wait_for_load_state("load")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Review:")
    axe_clean(page, "review")
    screenshot(page, "manager-review")
    # Submitting without a rating: the error summary takes the focus and links to the fields.
    page.get_by_role("button", name="Sign off", exact=True).click()
    page.wait_for_load_state("load")
    assert page.evaluate("document.activeElement.id") == "error-summary"
    axe_clean(page, "review with errors")

    open_page(page, team, "/team/")
    axe_clean(page, "matrix")
    screenshot(page, "manager-matrix")

    open_page(page, team, f"/team/technicians/{techs[4]}")
    axe_clean(page, "technician")
    screenshot(page, "manager-technician")

    open_page(page, team, f"/team/sign-offs/{signed}")
    axe_clean(page, "sign-off")
    open_page(page, team, "/team/preceptors")
    axe_clean(page, "preceptors")
    page.goto(team.url("/team/bulk") + "".join(f"&request={i}" for i in _open_ids(app, team)))
    axe_clean(page, "bulk (mixed competencies)")


def _open_ids(app, team):
    from lti_tool.models import ReviewRequest

    with app.app_context():
        return db.session.scalars(select(ReviewRequest.id).where(ReviewRequest.status == "open")
                                  .order_by(ReviewRequest.id)).all()


def test_bulk_sign_off_in_the_browser(team, page, app):
    _populate(team)
    open_page(page, team, "/team/queue")
    page.get_by_label("Competency").select_option(label="IV-GARB Garbing (3)")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_load_state("load")
    assert page.locator("table.queue tbody tr").count() == 3
    page.locator("#select-all").check()
    assert page.locator("#selected-count").inner_text() == "3 selected"
    page.get_by_role("button", name="Sign off selected…").click()
    page.wait_for_load_state("load")
    assert page.get_by_role("heading", level=1).inner_text() == "Sign off 3 requests together"
    axe_clean(page, "bulk")
    page.locator("#rating-competent").check()
    page.get_by_label("Observed").check()
    page.get_by_label("Hand hygiene").check()
    page.get_by_label("I assessed each of these 3 technicians").check()
    page.get_by_role("button", name="Sign off 3 requests").click()
    page.wait_for_load_state("load")
    assert page.get_by_role("heading", level=1).inner_text() == "3 sign-offs recorded"
    assert "3 of 3 review requests signed off." in page.locator(".notice").inner_text()
    axe_clean(page, "bulk result")
    screenshot(page, "manager-bulk-result")
    with app.app_context():
        assert len(db.session.scalars(select(SignOff).where(SignOff.comment.is_(None))).all()) == 5


def test_matrix_filtering_and_sticky_headers_in_the_browser(team, page):
    _populate(team)
    open_page(page, team, "/team/")
    assert page.locator("table.matrix tbody tr").count() == 6
    header = page.locator("table.matrix thead th").first
    assert header.evaluate("el => getComputedStyle(el).position") == "sticky"
    name_cell = page.locator("table.matrix tbody th.name-col").first
    assert name_cell.evaluate("el => getComputedStyle(el).position") == "sticky"

    page.get_by_label("Status").select_option(label="Expired")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_load_state("load")
    rows = page.locator("table.matrix tbody tr")
    assert rows.count() == 1 and "Tech 004" in rows.first.inner_text()
    # One status: the table marks that status's cells (data-hit), outlined with a ✱ after the code.
    marked = page.locator('table.matrix[data-hit="exp"] td.exp')
    assert marked.count() == 1 and page.locator("td.hit").count() == 0
    assert marked.evaluate("el => getComputedStyle(el, '::after').content") == '"✱"'
    assert marked.evaluate("el => getComputedStyle(el).outlineStyle") == "solid"
    axe_clean(page, "matrix filtered")
    screenshot(page, "manager-matrix-expired")

    page.get_by_label("Status").select_option(label="Any status")
    page.get_by_label("Expiring").select_option(label="Within 30 days")
    page.get_by_label("Department").select_option(label="IV room / sterile compounding")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_load_state("load")
    assert "Tech 005" in page.locator("table.matrix tbody").inner_text()
    assert page.locator("table.matrix tbody tr").count() == 1
    assert "CEN-CART" not in page.locator("table.matrix thead").inner_text()

    # A phone-width frame: the matrix scrolls inside its own box; the page itself does not overflow.
    page.set_viewport_size({"width": 320, "height": 700})
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    axe_clean(page, "matrix at 320 px")


def test_a_technician_meets_a_readable_403(team, page, platform, http):
    token = launch(platform, http, team.base, role="student", sub="tech-b", name="Tina Tech")
    for path in ("/team/", "/team/queue", "/team/preceptors"):
        response = page.goto(f"{team.base}{path}?lt={token}")
        assert response.status == 403
        assert page.get_by_role("heading", level=1).inner_text() == "You do not have access to this page"
    axe_clean(page, "403")
