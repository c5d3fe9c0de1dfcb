"""The administrator's pages in a real browser (Debian's chromium through Playwright), reached through an LTI
launch from the test platform: axe-core finds no violation on any admin page or error state, the error summary
takes the focus, the import form shows its busy state, the pages fit a 320 px phone, and screenshots are kept."""
import json

import pytest
import requests
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.lti import keys
from lti_tool.models import Course, Deployment, Person, ScoreOutbox
from lti_tool.models.base import utcnow
from lti_tool.services import frameworks as framework_service
from tests.support.browser import chromium, screenshot
from tests.support.platform import CANVAS_ROLES

pytestmark = pytest.mark.browser
AXE = Axe()


def admin_nav(page):
    return page.get_by_role("navigation", name="Administration pages")


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    page = context.new_page()
    yield page
    context.close()


def launch_url(platform, live_server, roles, sub):
    with requests.Session() as http:
        resp, _, _ = platform.launch(http, live_server, roles=roles, sub=sub)
    assert resp.status_code == 303, resp.text[:2000]
    return live_server + resp.headers["Location"]


def assert_accessible(page, name):
    results = AXE.run(page)
    assert results.violations_count == 0, f"{name}:\n{results.generate_snapshot()}\n" + json.dumps(
        [{"id": v["id"], "nodes": [n["html"] for n in v["nodes"]][:3]} for v in results.response["violations"]],
        indent=1)


@pytest.fixture
def world(app, registered):
    """The shipped framework, a second deployment, two keys, a failed roster sync and a stuck score."""
    with app.app_context():
        framework_service.ensure_default_framework()
        db.session.add(Deployment(registration_id=registered, deployment_id="2:pharmacy-account"))
        keys.ensure_published()
        keys.rotate()
        db.session.commit()


def add_trouble(app, registered):
    with app.app_context():
        course = db.session.scalars(select(Course)).first()
        course.roster_error = "The LMS answered 401 Unauthorized to the roster request: check the tool's scopes."
        person = Person(registration_id=registered, sub="tech-77", name="Maria Lopez")
        db.session.add(person)
        db.session.flush()
        db.session.add(ScoreOutbox(registration_id=registered, course_id=course.id, person_id=person.id,
                                   lineitem_url="https://lms.example.org/lineitems/3", payload={"userId": "tech-77"},
                                   score_timestamp=utcnow(), status="failed", attempts=4,
                                   last_error="HTTP 400: the line item no longer exists"))
        db.session.commit()


def test_admin_pages_pass_axe_and_work_from_the_keyboard(app, platform, registered, world, live_server, page):
    page.goto(launch_url(platform, live_server, CANVAS_ROLES["account_admin"], "admin-1"))
    add_trouble(app, registered)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Administration").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Administration")
    expect(page.get_by_text("The LMS answered 401 Unauthorized")).to_be_visible()
    expect(page.get_by_text("HTTP 400: the line item no longer exists")).to_be_visible()
    # JavaScript reveals the copy buttons.
    expect(page.get_by_role("button", name="Copy Login (OpenID Connect initiation) URL")).to_be_visible()
    assert_accessible(page, "admin home")
    screenshot(page, "admin-home")

    # Retry the stuck score from the keyboard.
    page.get_by_role("checkbox", name="Retry the score of Maria Lopez in IV Room Cross-Training").check()
    page.get_by_role("button", name="Retry selected now").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").first).to_contain_text("1 score queued")
    assert_accessible(page, "admin home after a retry")

    # A refused action: the error summary takes the focus.
    page.get_by_role("button", name="Retry selected now").click()
    expect(page.locator("#error-summary")).to_be_focused()
    expect(page.locator("#error-summary")).to_contain_text("Choose at least one score")
    assert_accessible(page, "admin home with an error")

    # Keys are read-only for a tenant's administrator: listed, no buttons.
    expect(page.get_by_test_id("keys")).to_contain_text("Signs now")
    expect(page.get_by_role("button", name="Rotate signing key")).to_have_count(0)
    page.get_by_role("button", name="Disable deployment 2:pharmacy-account").click()
    expect(page.get_by_role("status").first).to_contain_text("Deployment 2:pharmacy-account disabled")
    expect(page.get_by_role("button", name="Enable deployment 2:pharmacy-account")).to_be_visible()
    assert_accessible(page, "admin home after disabling a deployment")


def test_frameworks_import_export_and_tree(app, platform, registered, world, live_server, page, tmp_path):
    page.goto(launch_url(platform, live_server, CANVAS_ROLES["account_admin"], "admin-1"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Administration").click()
    admin_nav(page).get_by_role("link", name="Frameworks", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Competency frameworks")
    expect(page.get_by_role("table", name="Frameworks, by name and version")).to_contain_text("Pharmacy Technician")
    assert_accessible(page, "frameworks")
    screenshot(page, "admin-frameworks")

    # A broken Moodle file: every problem listed, the summary focused, nothing imported.
    bad = tmp_path / "broken.csv"
    bad.write_text('"Parent ID number","ID number","Short name","Description","Description format",'
                   '"Scale values","Scale configuration","Rule type (optional)","Rule outcome (optional)",'
                   '"Rule config (optional)","Cross-referenced competency ID numbers","Exported ID (optional)",'
                   '"Is framework","Taxonomy"\n'
                   '"","F","Night shift","","1","No,Yes","[{""scaleid"":""2""},{""id"":2,""scaledefault"":1,'
                   '""proficient"":1}]","","","","","","1",""\n'
                   '"","N-1","","","1","","","","0","null","","","",""\n')
    page.get_by_label("Framework file").set_input_files(str(bad))
    page.get_by_role("button", name="Import framework").click()
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("broken.csv: line 3, Short name")
    assert_accessible(page, "frameworks import error")
    screenshot(page, "admin-frameworks-import-error")

    # A good native file: the busy state shows while the import runs, then the new framework's tree.
    good = tmp_path / "local.json"
    good.write_text(json.dumps({
        "format": "pharmacy-tech-pathways/framework",
        "framework": {"code": "NIGHT", "name": "Night shift skills", "version": "1",
                      "scale": [{"code": "no", "label": "Not yet", "proficient": False},
                                {"code": "yes", "label": "Yes", "proficient": True}]},
        "competencies": [{"code": "N-1", "title": "Night shift handover", "children": [
            {"code": "N-1.1", "title": "Controlled-substance count at handover"}]}]}))
    page.get_by_label("Framework file").set_input_files(str(good))
    page.evaluate("""() => {
        const form = document.querySelector('form[data-busy-label]');
        form.addEventListener('submit', () => {
            const button = form.querySelector('button[type=submit]');
            sessionStorage.setItem('busy', button.getAttribute('aria-busy') + '|' +
                                   form.querySelector('.admin-busy').textContent);
        });
    }""")
    page.get_by_role("button", name="Import framework").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Night shift skills")
    assert page.evaluate("sessionStorage.getItem('busy')").startswith("true|Importing")
    expect(page.get_by_role("status").first).to_contain_text("Imported Night shift skills (version 1)")
    expect(page.get_by_test_id("tree")).to_contain_text("Controlled-substance count at handover")
    assert_accessible(page, "imported framework")

    with page.expect_download() as info:
        page.get_by_role("link", name="Export as CASE 1.1 JSON").click()
    download = info.value
    assert download.suggested_filename == "NIGHT-1-case.json"
    with open(download.path(), encoding="utf-8") as fh:
        package = json.load(fh)
    assert package["CFDocument"]["title"] == "Night shift skills" and len(package["CFItems"]) == 2

    # Private until published on the CASE API; the button says what it does and the page says where it is served.
    expect(page.get_by_test_id("case-private")).to_be_visible()
    page.get_by_role("button", name="Publish on the CASE API").click()
    expect(page.get_by_role("status").first).to_contain_text("is public")
    expect(page.get_by_test_id("case-public")).to_contain_text("/ims/case/v1p1/CFPackages/")
    assert_accessible(page, "published framework")

    page.get_by_role("link", name="‹ All frameworks").click()
    page.get_by_role("link", name="Pharmacy Technician", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Pharmacy Technician")
    assert_accessible(page, "shipped framework tree")
    screenshot(page, "admin-framework-tree")


def test_settings_and_course_frameworks(app, platform, registered, world, live_server, page):
    page.goto(launch_url(platform, live_server, CANVAS_ROLES["account_admin"], "admin-1"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Administration").click()
    admin_nav(page).get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Settings")
    assert_accessible(page, "settings")
    screenshot(page, "admin-settings")

    field = page.get_by_label("Days before a sign-off expires")
    field.fill("400")
    page.get_by_role("button", name="Save warning window").click()
    expect(page.locator("#error-summary")).to_be_focused()
    expect(field).to_have_value("400")
    expect(field).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, "settings with an error")
    screenshot(page, "admin-settings-error")
    page.locator("#error-summary a").click()
    expect(field).to_be_focused()
    field.fill("60")
    page.get_by_role("button", name="Save warning window").click()
    expect(page.get_by_role("status").first).to_contain_text("60 days before")

    page.get_by_label("Teaching assistant").select_option("technician")
    page.get_by_role("button", name="Save role mapping").click()
    expect(page.get_by_role("status").first).to_contain_text("Role mapping saved")
    expect(page.get_by_label("Teaching assistant")).to_have_value("technician")

    admin_nav(page).get_by_role("link", name="Course frameworks").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Frameworks for IV Room Cross-Training")
    assert_accessible(page, "course frameworks")
    page.get_by_role("button", name="Save frameworks").click()
    expect(page.locator("#error-summary")).to_be_focused()
    assert_accessible(page, "course frameworks with an error")
    page.get_by_label("Pharmacy Technician").check()
    page.get_by_role("button", name="Save frameworks").click()
    expect(page.get_by_role("status").first).to_contain_text("now uses: Pharmacy Technician")
    screenshot(page, "admin-course-frameworks")
    page.get_by_role("link", name="Choose another course").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Frameworks used by a course")
    assert_accessible(page, "course picker")


def test_a_manager_chooses_frameworks_and_cannot_reach_admin_pages(app, platform, registered, world, live_server,
                                                                   page):
    token_url = launch_url(platform, live_server, CANVAS_ROLES["teacher"], "manager-1")  # /app/?lt=...
    page.goto(token_url)
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Administration")).to_have_count(0)
    page.goto(token_url.replace("/app/", "/admin/course-frameworks"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Frameworks for IV Room Cross-Training")
    assert_accessible(page, "course frameworks as a manager")
    page.goto(token_url.replace("/app/", "/admin/settings"))
    expect(page.get_by_role("heading", level=1)).to_have_text("You do not have access to this page")
    expect(page.get_by_text("for the LMS administrator")).to_be_visible()
    assert_accessible(page, "403 for a manager")


@pytest.mark.parametrize("path", ["/admin/", "/admin/frameworks", "/admin/settings"])
def test_admin_pages_fit_a_phone(app, platform, registered, world, live_server, browser, path):
    context = browser.new_context(viewport={"width": 320, "height": 640})
    page = context.new_page()
    try:
        token_url = launch_url(platform, live_server, CANVAS_ROLES["account_admin"], "admin-1")  # /app/?lt=...
        page.goto(token_url)
        if path == "/admin/":
            add_trouble(app, registered)
        page.goto(token_url.replace("/app/", path))
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        width, room = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert width <= room, f"{path} is {width} px wide in {room} px"
        assert_accessible(page, f"{path} at 320 px")
        screenshot(page, "admin-phone-" + (path.strip("/").replace("/", "-") or "home"))
    finally:
        context.close()
