"""The pages outside the three areas, in Debian's chromium with axe-core: landing, home after launch, a refused
launch, the deep-linking picker, the dynamic-registration confirmation and the development LMS."""
from urllib.parse import quote

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.support.browser import chromium, screenshot
from tests.support.platform import CANVAS_ROLES
from tests.test_deep_linking import _deep_link_request, _framework

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.csp_errors = []
    page.on("console", lambda m: page.csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
    yield page
    context.close()


def _clean(page, name):
    results = Axe().run(page)
    assert results.violations_count == 0, f"{name}: {results.generate_report()}"
    assert page.csp_errors == []
    screenshot(page, name)


def test_landing_home_and_refused_launch_pages(page, live_server, platform, registered, http):
    page.goto(live_server + "/")
    assert "Dynamic registration" in page.content() and "single-use registration link" in page.content()
    _clean(page, "page-landing")

    resp, _, _ = platform.launch(http, live_server, roles=CANVAS_ROLES["observer"], sub="observer-1")
    page.goto(live_server + resp.headers["Location"])
    assert page.locator("[data-testid=role]").inner_text() == "Observer"
    _clean(page, "page-home-observer")

    # A refused launch, shown the way the LMS frame shows it: a real form post of an expired token.
    refused, auth, body = platform.launch(http, live_server, claims=lambda b: {**b, "exp": b["iat"] - 400,
                                                                               "iat": b["iat"] - 700})
    assert refused.status_code == 401
    page.set_content(refused.text.replace('href="/static', f'href="{live_server}/static'))
    assert "The launch has expired" in page.content()
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def test_deep_linking_picker_page(app, page, live_server, platform, registered, http):
    _framework(app)
    resp, _, _ = platform.launch(http, live_server, roles=CANVAS_ROLES["teacher"],
                                 claims=_deep_link_request(platform))
    page.goto(live_server + resp.headers["Location"])
    assert page.get_by_role("heading", level=1).inner_text().startswith("Add ")
    _clean(page, "page-deep-linking-picker")


def test_registration_confirmation_and_dev_lms_pages(app, page, live_server, platform):
    from lti_tool.extensions import db
    from lti_tool.lti import registration_links

    page.goto(f"{live_server}/lti/register?openid_configuration=x")
    assert "not valid" in page.content()
    _clean(page, "page-register-refused")
    with app.app_context():
        _, link = registration_links.create(None, 1)
        db.session.commit()
    config_url = quote(platform.base + "/.well-known/openid-configuration", safe="")
    page.goto(f"{live_server}/lti/register?link={link}&openid_configuration={config_url}&registration_token=x")
    assert "Register the tool" in page.content()
    _clean(page, "page-register-confirm")
    page.goto(live_server + "/dev/")
    assert "Launch as" in page.content()
    _clean(page, "page-dev-lms")
