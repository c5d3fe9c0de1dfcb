"""`flask demo load`: the development LMS, the shipped framework and a demo record, loaded once."""
from sqlalchemy import func, select

from lti_tool.extensions import db
from lti_tool.models import Evidence, Membership, ReviewRequest, SignOff


def test_demo_load_builds_a_record_worth_demonstrating_once(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "load", "--base-url", "http://127.0.0.1:5000"])
    assert first.exit_code == 0, first.output
    assert "Demo data loaded." in first.output
    with app.app_context():
        counts = {m: db.session.scalar(select(func.count()).select_from(m))
                  for m in (Evidence, SignOff, ReviewRequest, Membership)}
        assert counts[SignOff] == 2 and counts[Membership] == 3 and counts[Evidence] == 8
        assert db.session.scalar(select(func.count()).select_from(ReviewRequest)
                                 .where(ReviewRequest.status == "open")) == 2
    again = runner.invoke(args=["demo", "load", "--base-url", "http://127.0.0.1:5000"])
    assert again.exit_code == 0 and "already there" in again.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Evidence)) == counts[Evidence]


def _form_fields(html: str) -> tuple[str, dict]:
    import re
    from html import unescape

    action = unescape(re.search(r'<form[^>]*action="([^"]+)"', html).group(1))
    fields = {unescape(n): unescape(v) for n, v in re.findall(r'name="([^"]+)"\s+value="([^"]*)"', html)}
    return action, fields


def test_root_page_points_to_the_dev_lms_and_the_observer_launches_read_only(live_server, http):
    """A newcomer finds /dev/ from the root page; the observer persona runs the real OIDC flow and lands read-only."""
    import re
    from html import unescape

    root = http.get(live_server + "/")
    assert 'data-testid="dev-lms-link"' in root.text and 'href="/dev/"' in root.text
    dev = http.get(live_server + "/dev/")
    assert "Launch as Olivia Reyes (Observer)" in dev.text
    login = unescape(re.search(r'data-testid="launch-observer" href="([^"]+)"', dev.text).group(1))
    authorize = http.get(live_server + login, allow_redirects=True)
    assert authorize.status_code == 200, authorize.text[:300]
    action, fields = _form_fields(authorize.text)
    assert set(fields) >= {"id_token", "state"}
    landed = http.post(action, data=fields, allow_redirects=True)
    assert landed.status_code == 200, landed.text[:500]
    assert re.search(r'data-testid="role">\s*Observer', landed.text), landed.text[:1500]
    # Read-only: no reviewing, no recording.
    assert "Review queue" not in landed.text and "Record evidence" not in landed.text
