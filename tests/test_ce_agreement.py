"""One CE answer: for random CE histories and certifications, the technician's dashboard, the transcript page,
the PDF's text and the JSON export give the same cycle and the same recorded and verified hours, and those
match what the history says (hypothesis). Records go through the evidence and review services; pages through a
real launch and HTTP."""
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import unescape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from sqlalchemy import delete, select

from lti_tool import formatting
from lti_tool.extensions import db
from lti_tool.models import (
    AuditEntry,
    Evidence,
    EvidenceCompetency,
    Membership,
    Person,
    ReviewRequest,
    ScoreOutbox,
    SignOff,
    SignOffRevocation,
    StoredStatus,
)
from lti_tool.services import ce, evidence, frameworks, reviews
from lti_tool.services.actors import Actor
from tests.support.platform import CANVAS_ROLES

TODAY = date.today()
STATES = ("draft", "submitted", "signed", "revoked")

activity = st.fixed_dictionaries({
    "topic": st.sampled_from(["01", "03", "05"]),
    "audience": st.sampled_from(["T", "T", "P"]),
    "quarters": st.integers(min_value=1, max_value=24),  # 0.25 to 6 hours
    "days_ago": st.integers(min_value=0, max_value=900),
    "state": st.sampled_from(STATES),
})
certification = st.one_of(st.none(), st.fixed_dictionaries({
    "expires_in": st.integers(min_value=-60, max_value=760),
    "verified": st.booleans(),
}))


def _launch(platform, http, base, role, sub, name):
    resp, _, _ = platform.launch(http, base, roles=CANVAS_ROLES[role], sub=sub, name=name)
    assert resp.status_code == 303, resp.text
    return re.search(r"lt=([^&]+)", resp.headers["Location"]).group(1)


class Setting:
    def __init__(self, app, platform, http, base):
        self.app, self.http, self.base = app, http, base
        with app.app_context():
            frameworks.ensure_default_framework()
            db.session.commit()
        self.manager_token = _launch(platform, http, base, "teacher", "ce-mgr", "Mona Manager")
        self.token = _launch(platform, http, base, "student", "ce-tech", "Theo Tech")
        with app.app_context():
            self.tech_id = db.session.scalars(select(Person.id).where(Person.sub == "ce-tech")).one()
            self.manager_id = db.session.scalars(select(Person.id).where(Person.sub == "ce-mgr")).one()

    def actor(self, person_id):
        membership = db.session.scalars(select(Membership).where(Membership.person_id == person_id)).one()
        return Actor(person=membership.person, course=membership.course, membership=membership)

    def reset(self):
        with self.app.app_context():
            mine = select(Evidence.id).where(Evidence.person_id == self.tech_id)
            for model, column in ((StoredStatus, StoredStatus.person_id == self.tech_id),
                                  (SignOffRevocation, SignOffRevocation.sign_off_id.in_(
                    select(SignOff.id).where(SignOff.person_id == self.tech_id))),
                    (ScoreOutbox, ScoreOutbox.id.is_not(None)),
                    (SignOff, SignOff.person_id == self.tech_id),
                    (ReviewRequest, ReviewRequest.person_id == self.tech_id),
                    (EvidenceCompetency, EvidenceCompetency.evidence_id.in_(mine)),
                    (AuditEntry, AuditEntry.id.is_not(None))):
                db.session.execute(delete(model).where(column))
            db.session.execute(delete(Evidence).where(Evidence.person_id == self.tech_id))
            db.session.commit()

    def record(self, kind, payload, state):
        tech, manager = self.actor(self.tech_id), self.actor(self.manager_id)
        item = evidence.create_draft(tech, kind, payload)
        if state != "draft":
            requests = reviews.request_review(tech, item.id)
        if state in ("signed", "revoked"):
            made = [reviews.sign_off(manager, r.id, "competent", "verified_document") for r in requests]
            if state == "revoked":
                reviews.revoke(manager, made[0].id, "Certificate could not be confirmed")

    def get(self, path):
        resp = self.http.get(f"{self.base}{path}?lt={self.token}")
        assert resp.status_code == 200, (path, resp.status_code)
        return resp


@pytest.fixture
def setting(app, live_server, platform, registered, http):
    return Setting(app, platform, http, live_server)


def _hours(text: str) -> Decimal:
    return Decimal(re.match(r"([\d.]+)", text.strip()).group(1))


def _spans(html: str, rule: str) -> dict:
    """The data-ce values of one rule's block of a page."""
    block = html.split(f'data-ce-rule="{rule}"', 1)[1]
    return {key: unescape(value) for key, value in re.findall(r'data-ce="([a-z-]+)">([^<]+)<', block)[:4]}


def _pdf_text(content: bytes) -> str:
    return " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages).split())


def _expected_cycle(cert) -> tuple[date, date]:
    if cert is not None and cert["verified"]:
        end = TODAY + timedelta(days=cert["expires_in"])
        return ce.add_months(end + timedelta(days=1), -24), end
    return ce.add_months(TODAY, -24) + timedelta(days=1), TODAY


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.lists(activity, max_size=6), cert=certification)
def test_dashboard_transcript_pdf_and_json_agree(setting, history, cert):
    setting.reset()
    with setting.app.app_context():
        if cert is not None:
            expires = TODAY + timedelta(days=cert["expires_in"])
            setting.record("certification", {
                "title": "PTCB CPhT", "credential": "ptcb_cpht", "number": "CPHT-1",
                "issued_date": min(expires - timedelta(days=730), TODAY).isoformat(),
                "expiry_date": expires.isoformat()}, "signed" if cert["verified"] else "submitted")
        for n, item in enumerate(history):
            done = TODAY - timedelta(days=item["days_ago"])
            setting.record("continuing_education", {
                "title": f"CE {n}", "uan": f"0197-0000-{done.year % 100:02d}-{n + 1:03d}-H{item['topic']}-"
                                          f"{item['audience']}",
                "hours": item["quarters"] / 4, "completion_date": done.isoformat(), "provider_name": "Provider"},
                item["state"])
        db.session.commit()

    start, end = _expected_cycle(cert)
    in_cycle = [i for i in history if start <= TODAY - timedelta(days=i["days_ago"]) <= min(end, TODAY)]
    sent = sum((Decimal(i["quarters"]) / 4 for i in in_cycle if i["state"] != "draft"), Decimal(0))
    verified = sum((Decimal(i["quarters"]) / 4 for i in in_cycle if i["state"] == "signed"), Decimal(0))

    data = setting.get(f"/transcripts/people/{setting.tech_id}/download/json").json()
    status = data["continuing_education"]["status"]
    assert (status["cycle_start"], status["cycle_end"]) == (start.isoformat(), end.isoformat())
    assert status["known"] is bool(cert and cert["verified"])
    assert Decimal(str(status["recorded"]["recorded_hours"])) == sent
    assert Decimal(str(status["verified"]["recorded_hours"])) == verified
    recorded_h, verified_h = Decimal(str(status["recorded"]["hours"])), Decimal(str(status["verified"]["hours"]))
    if cert is not None and not cert["verified"]:
        assert any("pending verification" in w for w in data["continuing_education"]["warnings"])

    us_start, us_end = formatting.us_date(start), formatting.us_date(end)
    for page in (setting.get("/me/").text, setting.get(f"/transcripts/people/{setting.tech_id}").text):
        shown = _spans(page, "ptcb_cpht")
        assert (shown["cycle-start"], shown["cycle-end"]) == (us_start, us_end)
        assert (_hours(shown["recorded"]), _hours(shown["verified"])) == (recorded_h, verified_h)

    pdf = _pdf_text(setting.get(f"/transcripts/people/{setting.tech_id}/download/pdf-letter").content)
    assert f"cycle {us_start} to {us_end}" in pdf
    found = re.search(r"Recorded: ([\d.]+) of 20 hours\. Verified: ([\d.]+) of 20 hours\.", pdf)
    assert found and (Decimal(found.group(1)), Decimal(found.group(2))) == (recorded_h, verified_h)


def test_an_unverified_certification_is_pending_and_does_not_move_the_cycle(setting):
    expires = TODAY + timedelta(days=20)
    with setting.app.app_context():
        setting.record("certification", {
            "title": "PTCB CPhT", "credential": "ptcb_cpht", "number": "CPHT-9",
            "issued_date": (expires - timedelta(days=730)).isoformat(), "expiry_date": expires.isoformat()},
            "submitted")
        db.session.commit()
    dashboard = unescape(setting.get("/me/").text)
    assert "PTCB Certified Pharmacy Technician (CPhT) is pending verification" in dashboard
    assert "(assumed)" in dashboard and "20 days" not in dashboard
    # Signed off, it sets the cycle: 20 days left, and both warnings show.
    with setting.app.app_context():
        request_id = db.session.scalars(select(ReviewRequest.id)).one()
        reviews.sign_off(setting.actor(setting.manager_id), request_id, "competent", "verified_document")
        db.session.commit()
    dashboard = " ".join(unescape(re.sub(r"<[^>]+>", " ", setting.get("/me/").text)).split())
    assert "20 days left in the cycle" in dashboard
    assert (f"Your PTCB Certified Pharmacy Technician (CPhT) expires on {formatting.us_date(expires)} "
            "(in 20 days).") in dashboard
    assert "cycle ends on" in dashboard and "verified CE falls short" in dashboard
    assert datetime.now(UTC)  # the page is computed for today
