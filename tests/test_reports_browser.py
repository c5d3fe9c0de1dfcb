"""The reports and the audit log in Debian's chromium after a real launch: axe-core finds no violations, the CSP
blocks nothing (the chart is plain server-rendered SVG), the chart is drawn, and screenshots are kept."""

import pytest

from tests.support.browser import screenshot
from tests.test_manager_browser import _populate, axe_clean, browser, open_page, page  # noqa: F401 (fixtures)
from tests.test_manager_pages import Team

pytestmark = pytest.mark.browser


def test_report_pages_are_accessible(app, live_server, platform, registered, http, page):  # noqa: F811
    team = Team(app, platform, http, live_server)
    techs, _ = _populate(team)
    open_page(page, team, "/team/")
    page.get_by_role("link", name="Reports").first.click()
    page.wait_for_load_state("load")
    assert page.get_by_role("heading", name="Reports").is_visible()
    axe_clean(page, "reports index")

    open_page(page, team, "/reports/roster")
    assert page.locator("tbody tr").count() >= 6
    axe_clean(page, "roster")
    screenshot(page, "reports-roster")

    open_page(page, team, "/reports/summary")
    chart = page.locator("svg.trend-chart")
    assert chart.is_visible() and chart.locator("polyline").count() >= 1
    axe_clean(page, "summary")
    screenshot(page, "reports-summary")

    open_page(page, team, f"/reports/people/{techs[5]}")
    assert page.get_by_role("heading", name="Audit trail").is_visible()
    axe_clean(page, "person file")

    open_page(page, team, "/reports/audit")
    page.get_by_label("Action").select_option(label="Signed off a competency")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state("load")
    assert page.locator('tr[data-action="sign_off.create"]').count() == 2
    assert page.locator("tr[data-action]").count() == 2
    axe_clean(page, "audit log")
    screenshot(page, "reports-audit")
