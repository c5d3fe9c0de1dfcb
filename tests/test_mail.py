"""Reminder e-mails through a real SMTP server (aiosmtpd): content, headers, retries when the server is down,
the once-only rule across two worker processes, and unsubscribing through the link without logging in."""
import re
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import select

from lti_tool import create_app
from lti_tool.extensions import db
from lti_tool.models import SentMessage
from lti_tool.services import mailer, preferences, reminders
from tests.conftest import settings_for_tests
from tests.support.competency_world import World
from tests.support.queue import SmtpSink, Worker, free_port, queue_settings, wait_for

BEFORE_14 = datetime(2025, 7, 1, 13, 0, tzinfo=UTC)


@pytest.fixture
def smtp():
    sink = SmtpSink()
    yield sink
    sink.stop()


def smtp_settings(port) -> dict:
    return {"MAIL_BACKEND": "smtp", "MAIL_HOST": "127.0.0.1", "MAIL_PORT": port, "MAIL_TLS": "none",
            "MAIL_SENDER": "pathways@hospital.example.org"}


@pytest.fixture
def world(make):
    w = World(make)
    w.tech.person.given_name = "Tess"
    w.reg.settings = {"email_sender_name": "St. Luke's Pharmacy"}
    w.sign_off = w.signed()
    return w


def test_messages_reach_the_smtp_server_with_both_parts_and_headers(app, world, smtp, monkeypatch):
    for key, value in smtp_settings(smtp.port).items():
        monkeypatch.setitem(app.config, key, value)
    ids = reminders.plan(BEFORE_14)
    db.session.commit()
    assert mailer.send_batch(ids) == {"sent": 2, "retrying": 0, "failed": 0}
    assert mailer.send_batch(ids) == {"sent": 0, "retrying": 0, "failed": 0}, "sent rows are never sent again"
    assert len(smtp.messages) == 2
    message = next(m for m in smtp.messages if m["To"] == world.tech.person.email)
    assert message["From"] == '"St. Luke\'s Pharmacy" <pathways@hospital.example.org>'
    assert message["Subject"] == "Garbing and gloved-fingertip testing is due for renewal"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = re.fullmatch(r"<(.+)>", message["List-Unsubscribe"]).group(1)
    assert re.fullmatch(r"<[0-9a-f]{32}@hospital\.example\.org>", message["Message-ID"])
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "expires in 14 days, on Jul 15, 2025" in text and unsubscribe in text
    assert "<strong>Garbing and gloved-fingertip testing</strong>" in html and f'href="{unsubscribe}"' in html
    assert smtp.envelopes[0].mail_from == "pathways@hospital.example.org"
    rows = db.session.scalars(select(SentMessage)).all()
    assert {r.status for r in rows} == {"sent"} and all(r.attempts == 1 for r in rows)


def test_an_unreachable_server_means_a_retry_later(app, world, monkeypatch):
    for key, value in smtp_settings(free_port()).items():
        monkeypatch.setitem(app.config, key, value)
    ids = reminders.plan(BEFORE_14)
    db.session.commit()
    now = datetime.now(UTC)
    assert mailer.send_batch(ids, now=now) == {"sent": 0, "retrying": 2, "failed": 0}
    row = db.session.get(SentMessage, ids[0])
    assert row.status == "pending" and row.attempts == 1 and "unavailable" in row.last_error
    assert row.next_attempt_at == now + mailer.BASE_DELAY
    assert mailer.due(now) == [] and set(mailer.due(now + mailer.BASE_DELAY)) == set(ids)


def test_unsubscribe_through_the_link_without_logging_in(app, world, live_server):
    ids = reminders.plan(BEFORE_14)
    db.session.commit()
    row = db.session.get(SentMessage, ids[0])
    person_id = row.person_id
    link = row.unsubscribe_url.replace("http://127.0.0.1:5000", live_server)
    page = requests.get(link, timeout=10)
    assert page.status_code == 200 and "Stop reminders before a competency or certification expires?" in page.text
    assert preferences.get(person_id).reminders, "opening the link (a mail scanner might) changes nothing"
    done = requests.post(link, data={"category": "reminders"}, timeout=10)
    assert done.status_code == 200 and "You will no longer receive reminders" in done.text
    db.session.expire_all()
    pref = preferences.get(person_id)
    assert not pref.reminders and pref.review_updates and pref.digest == "weekly"
    # One-click unsubscribe from the mail app (RFC 8058) posts the header's body.
    requests.post(link, data={"List-Unsubscribe": "One-Click"}, timeout=10)
    forged = link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb")
    assert requests.get(forged, timeout=10).status_code == 404
    assert requests.post(live_server + "/notifications/unsubscribe/nonsense", timeout=10).status_code == 404
    # Later plans leave this person's reminders out.
    db.session.query(SentMessage).delete()
    db.session.commit()
    assert all(k.split(":")[0] != "expiry" for k in db.session.scalars(select(SentMessage.event_key)))
    reminders.plan(BEFORE_14)
    assert not db.session.scalars(select(SentMessage).where(SentMessage.person_id == person_id)).all()


def test_two_workers_send_each_message_once(app, make, smtp, tmp_path):
    """Two worker processes plan and send at the same time, several times over: one message per event."""
    world = World(make)
    preferences.update(world.manager.person, reminders=True, review_updates=True, digest="off")
    emails = []
    for _ in range(6):
        extra = make.actor(world.course, "technician")
        world.signed(actor=extra, now=datetime.now(UTC) - timedelta(days=186))  # 6-month expiry: days ago
        emails.append(extra.person.email)
    db.session.commit()
    settings = queue_settings(tmp_path, **smtp_settings(smtp.port))
    producer = create_app(settings_for_tests(**settings))
    workers = [Worker(settings, tmp_path / f"worker-{n}.log", "--no-periodic", "--workers", "2", "--max-delay", "0.5")
               for n in range(2)]
    try:
        with producer.app_context():
            for _ in range(4):
                producer.extensions["huey_tasks"]["plan_reminders"]()

            def finished():
                db.session.expire_all()
                rows = db.session.scalars(select(SentMessage)).all()
                return len(rows) == 6 and all(r.status == "sent" for r in rows)

            wait_for(finished, 60, lambda: str([(r.event_key, r.status, r.last_error) for r in db.session.scalars(
                select(SentMessage))]) + "\n".join(w.output()[-3000:] for w in workers))
            ids = list(db.session.scalars(select(SentMessage.id)))
            for _ in range(3):  # redelivered send tasks find nothing left to send
                producer.extensions["huey_tasks"]["send_messages"](ids)
            wait_for(lambda: producer.extensions["huey"].pending_count() == 0, 30)
        for worker in workers:
            worker.stop()
        logs = "\n".join(w.output() for w in workers)
        executed = [w.output().count(" executed in ") for w in workers]
        assert sum(executed) >= 7, logs  # 4 plans, 3 sends at least, shared by the two processes
        assert len(smtp.messages) == 6, logs
        assert len({m["Message-ID"] for m in smtp.messages}) == 6
        assert sorted(m["To"] for m in smtp.messages) == sorted(emails)
        assert {m["Subject"] for m in smtp.messages} == {"Garbing and gloved-fingertip testing expired"}
    finally:
        for worker in workers:
            worker.stop()
        producer.extensions["huey"].storage.flush_all()
        with producer.app_context():
            db.engine.dispose()

