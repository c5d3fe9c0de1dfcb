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
