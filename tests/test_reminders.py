"""Reminder planning: which e-mails are due, once per event, in the tenant's time zone, only to addresses the LMS
shared and only to people who want them; the same notices on the home page."""
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.models import NotificationPreference, SentMessage
from lti_tool.services import mailer, notices, preferences, reminders, reviews
from lti_tool.services import settings as tenant_settings
from tests.support.competency_world import World

# IV-GARB (6-month revalidation) signed at T0 (Jan 15, 2025 09:00 UTC) expires Jul 15, 2025 09:00 UTC, which is
# 05:00 in New York: Jul 15 there too.
BEFORE_14 = datetime(2025, 7, 1, 13, 0, tzinfo=UTC)  # 9 a.m. in New York, 14 days before
ON_THE_DAY = datetime(2025, 7, 15, 14, 0, tzinfo=UTC)


@pytest.fixture
def world(make):
    w = World(make)
    w.tech.person.given_name = "Tess"
    w.sign_off = w.signed()
    return w


def _rows():
    return {r.event_key: r for r in db.session.scalars(select(SentMessage))}


@pytest.mark.parametrize("days_left, stage", [(90, None), (60, 60), (59, 60), (15, 60), (14, 14), (1, 14), (0, 0),
                                              (-3, 0), (-8, None)])
def test_the_nearest_due_stage_is_chosen(days_left, stage):
    assert reminders.stage_for(days_left, [60, 14, 0]) == stage


def test_expiry_reminder_and_digest_are_planned_once(world):
    created = reminders.plan(BEFORE_14)
    rows = _rows()
    key = f"expiry:signoff:{world.sign_off.id}:14"
    digest = f"digest:{world.manager.person.id}:{world.course.id}:2025-W27"
    assert set(rows) == {key, digest} and len(created) == 2
    row = rows[key]
    assert row.to_address == world.tech.person.email and row.person_id == world.tech.person.id
    assert row.subject == "Garbing and gloved-fingertip testing is due for renewal"
    assert "Hello Tess," in row.body_text
    assert "expires in 14 days, on Jul 15, 2025" in row.body_text
    assert f'open the course "{world.course.title}" in {world.reg.name}' in row.body_text
    assert "expires in 14 days, on Jul 15, 2025" in row.body_html
    assert row.unsubscribe_url.startswith("http://127.0.0.1:5000/notifications/unsubscribe/")
    assert "1 due by Jul 15, 2025" in rows[digest].body_text

    # Planning again (another worker, the next run) adds nothing.
    assert reminders.plan(BEFORE_14 + timedelta(minutes=15)) == []
    assert len(_rows()) == 2
    # On the day: the last stage; afterwards nothing more for this sign-off.
    reminders.plan(ON_THE_DAY)
    last = _rows()[f"expiry:signoff:{world.sign_off.id}:0"]
    assert "expires today, on Jul 15, 2025" in last.body_text
    reminders.plan(ON_THE_DAY + timedelta(days=1))
    assert len([k for k in _rows() if k.startswith("expiry:")]) == 2


def test_the_database_refuses_a_second_row_for_an_event(world):
    reminders.plan(BEFORE_14)
    db.session.commit()
    row = db.session.scalars(select(SentMessage)).first()
    db.session.add(SentMessage(registration_id=row.registration_id, person_id=row.person_id,
                               event_key=row.event_key, category=row.category, to_address="x@example.org",
                               subject="again", body_text="again", body_html="again", unsubscribe_url="u"))
    with pytest.raises(Exception, match="(?i)unique"):
        db.session.flush()
    db.session.rollback()


def test_the_tenant_time_zone_decides_the_day(world):
    # 03:00 UTC on Jul 15 is still Jul 14, 8 p.m. in Los Angeles (one day left); in UTC it is the day itself.
    moment = datetime(2025, 7, 15, 3, 0, tzinfo=UTC)
    world.reg.settings = {"time_zone": "America/Los_Angeles"}
    reminders.plan(moment)
    assert "expires tomorrow, on Jul 15, 2025" in _rows()[f"expiry:signoff:{world.sign_off.id}:14"].body_text
    world.reg.settings = {"time_zone": "UTC"}
    reminders.plan(moment)
    assert "expires today, on Jul 15, 2025" in _rows()[f"expiry:signoff:{world.sign_off.id}:0"].body_text


def test_no_address_opt_out_and_tenant_switch(world, make):
    preferences.update(world.manager.person, reminders=True, review_updates=True, digest="off")
    world.tech.person.email = None
    reminders.plan(BEFORE_14)
    assert _rows() == {}
    # Without an address the home page still says it.
    found = notices.technician_notices(world.tech.person, world.course, BEFORE_14)
    assert [(n.kind, n.title) for n in found] == [("expiring", "Garbing and gloved-fingertip testing")]

    world.tech.person.email = "tess@example.org"
    preferences.update(world.tech.person, reminders=False, review_updates=True, digest="weekly")
    reminders.plan(BEFORE_14)
    assert _rows() == {}

    db.session.delete(db.session.get(NotificationPreference, world.tech.person.id))
    db.session.flush()
    tenant_settings.update(make.actor(world.course, "admin", make.person(world.reg, is_admin=True)),
                           {"email_enabled": False})
    reminders.plan(BEFORE_14)
    assert _rows() == {}


def test_returned_evidence_and_sign_off_are_sent_for_a_week(world):
    now = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)
    request = world.submitted(world.tech2, [world.cart], now=now)[0]
    reviews.return_for_revision(world.manager, request.id, "Add the <b>checklist</b> photo", now=now)
    signed = world.signed(world.audit_comp, actor=world.tech2, now=now)
    reminders.plan(now + timedelta(hours=1))
    rows = _rows()
    returned, recorded = rows[f"returned:{request.id}"], rows[f"signed:{signed.id}"]
    assert returned.subject == "Evidence returned for revision: Cart fill"
    assert "returned for revision on Mar 3, 2025: Add the <b>checklist</b> photo" in returned.body_text
    assert "Add the &lt;b&gt;checklist&lt;/b&gt; photo" in returned.body_html, "free text is escaped in HTML"
    assert recorded.subject == "Signed off: Controlled-substance audit"
    assert "Competent, signed off by" in recorded.body_text and "due for revalidation by Mar 3, 2026" in \
        recorded.body_text
    later = len(_rows())
    reminders.plan(now + timedelta(days=8))
    assert not [k for k in set(_rows()) - set(rows) if k.startswith(("returned", "signed"))], later


def test_digest_waits_for_the_morning_and_follows_the_choice(world):
    reminders.plan(datetime(2025, 7, 1, 10, 0, tzinfo=UTC))  # 6 a.m. in New York
    assert not [k for k in _rows() if k.startswith("digest:")]
    preferences.update(world.manager.person, reminders=True, review_updates=True, digest="daily")
    world.submitted(world.tech2, [world.cart], now=BEFORE_14)
    reminders.plan(BEFORE_14)
    row = _rows()[f"digest:{world.manager.person.id}:{world.course.id}:2025-07-01"]
    assert row.subject == f"Daily summary for {world.course.title}"
    assert "1 review request waiting: the oldest since Jul 1, 2025" in row.body_text


def test_stale_claims_are_handed_out_again(world):
    reminders.plan(BEFORE_14)
    row = db.session.scalars(select(SentMessage)).first()
    row.status, row.claimed_at = "sending", BEFORE_14
    db.session.flush()
    assert row.id not in mailer.due(BEFORE_14 + timedelta(minutes=5))
    assert row.id in mailer.due(BEFORE_14 + mailer.CLAIM_TIMEOUT + timedelta(minutes=1))
