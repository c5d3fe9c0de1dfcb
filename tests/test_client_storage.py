"""LTI client-side postMessage storage in a real browser.

The test platform serves a course page on another site (127.0.0.2) that frames the tool (127.0.0.1) and starts
the login inside the frame with lti_storage_target=_parent. The tool's state cookie is set in a cross-site frame
over plain HTTP, so chromium neither keeps nor sends it (SameSite=Lax by default): the launch can only complete
through the platform's storage (lti.put_data at login, lti.get_data at launch).
"""
import pytest
from playwright.sync_api import expect

from lti_tool.extensions import db
from tests.support.browser import SAME_PROCESS_FRAMES, chromium, screenshot, screenshot_on_failure
from tests.support.platform import TestPlatform

# A hang must fail the test, not stall the suite for the global 300 s.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def browser():
    with chromium(extra_args=SAME_PROCESS_FRAMES) as b:
        yield b


@pytest.fixture(scope="module")
def other_site():
    """The test platform on another site than the tool (127.0.0.2 is loopback too, but not 127.0.0.1's site)."""
    p = TestPlatform(host="127.0.0.2")
    yield p
    p.close()


@pytest.fixture
def storage_lms(app, other_site):
    # 127.0.0.2 is not in the testing allow list (only 127.0.0.1): the operator allows this platform's address.
    allow = app.config["LTI_OUTBOUND_ALLOW"]
    app.config["LTI_OUTBOUND_ALLOW"] = (*allow, "127.0.0.2")
    with app.app_context():
        other_site.register_in(db)
    yield other_site
    app.config["LTI_OUTBOUND_ALLOW"] = allow


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


def _course_page(lms, tool, storage):
    return f"{lms.base}/page?storage={storage}&tool={tool}&user=browser-user"


@pytest.mark.parametrize("storage, handler", [
    ("1", "page"),  # the embedding window answers everything (lti_storage_target=_parent)
    ("canvas", "post_message_forwarding"),  # Canvas: a named sibling frame answers put/get
])
def test_launch_completes_through_platform_storage(page, live_server, storage_lms, count_rows, storage, handler):
    page.goto(_course_page(storage_lms, live_server, storage))
    frame = page.frame_locator("#tool")
    with screenshot_on_failure(page, f"client-storage-launch-{handler}"):
        # A technician lands on the portfolio; the top bar names the person and the course.
        expect(frame.get_by_role("heading", level=1)).to_have_text("My portfolio", timeout=30000)
    expect(frame.locator(".topbar")).to_contain_text("Tess Nguyen · IV Room Cross-Training")
    screenshot(page, f"client-storage-launch-{handler}")

    messages = page.evaluate("window.ltiMessages")
    subjects = [m["subject"] for m in messages]
    assert "lti.capabilities" in subjects
    puts = [m["key"] for m in messages if m["subject"] == "lti.put_data"]
    gets = [m["key"] for m in messages if m["subject"] == "lti.get_data"]
    assert any(k.startswith("lti_state_") for k in puts)
    assert gets and gets[0] in puts
    assert {m["at"] for m in messages if m["subject"] in ("lti.put_data", "lti.get_data")} == {handler}
    assert [m["at"] for m in messages if m["subject"] == "lti.capabilities"] == ["page"]
    # Every storage message came from the tool's origin; the platform answered to that origin only.
    assert {m["origin"] for m in messages} == {live_server}

    # The cookie path was not what made it work: chromium kept no state cookie for the framed tool.
    cookies = page.context.cookies(live_server)
    assert not [c for c in cookies if c["name"].startswith("lti1p3-")], cookies
    assert page.frame(name="tool").url.startswith(live_server + "/me/?lt=")
    assert count_rows() == {"people": 1, "courses": 1, "memberships": 1}


def test_without_platform_storage_a_readable_blocked_message(page, live_server, storage_lms, count_rows):
    page.goto(_course_page(storage_lms, live_server, "0"))
    frame = page.frame_locator("#tool")
    failed = frame.locator("#storage-failed")
    with screenshot_on_failure(page, "client-storage-blocked"):
        expect(failed).to_be_visible(timeout=30000)
    expect(failed.get_by_role("heading")).to_have_text("Your browser blocked the launch")
    expect(failed).to_contain_text("open the tool in a new window")
    expect(frame.locator("#storage-status")).to_be_hidden()
    screenshot(page, "client-storage-blocked")
    assert count_rows() == {"people": 0, "courses": 0, "memberships": 0}
