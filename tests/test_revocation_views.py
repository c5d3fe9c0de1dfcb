"""A revoked or corrected sign-off reads as such in every view, through real launches: the technician's evidence
page and list, "What needs attention", the manager's technician page and review page, and the transcript page,
JSON, CSV and PDF. All of them ask attestation.evidence_states."""
import csv
import io
import re
from datetime import UTC, datetime
from html import unescape

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from lti_tool import formatting
from lti_tool.extensions import db
from lti_tool.models import ReviewRequest, SignOff
from tests.test_manager_pages import Team, form_fields, launch


@pytest.fixture
def team(app, live_server, platform, registered, http):
    return Team(app, platform, http, live_server)


def _text(resp) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", resp.text)).split())


def _pdf_text(content: bytes) -> str:
    return " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages).split())


def test_a_revoked_sign_off_reads_as_revoked_everywhere(team, app, platform, http):
    (ana,) = team.technicians(1)
    (garb_request,) = team.request(ana, [team.garb], title="Garbing in the IV room")
    sign_off_id = team.sign(garb_request)
    with app.app_context():
        evidence_id = db.session.get(ReviewRequest, garb_request).evidence_id

    page = team.get(f"/team/sign-offs/{sign_off_id}")
    revoked = team.post(f"/team/sign-offs/{sign_off_id}", {
        "csrf_token": form_fields(page.text)["csrf_token"], "action": "revoke",
        "reason": "Observed technique was not aseptic"})
    assert revoked.status_code == 303
    today = formatting.us_date(datetime.now(UTC))
    label = f"Sign-off revoked on {today} by Maria Manager"

    tech = launch(platform, http, team.base, role="student", sub="Tech-0", name="Tech 000")

    def tech_get(path):
        resp = http.get(f"{team.base}{path}?lt={tech}")
        assert resp.status_code == 200, path
        return resp

    detail = _text(tech_get(f"/me/evidence/{evidence_id}"))
    assert label in detail and "no longer counts toward IV-GARB" in detail
    assert "Signed-off evidence is never changed" not in detail
    assert label in _text(tech_get("/me/evidence"))
    dashboard = _text(tech_get("/me/"))
    assert "Needs re-assessment" in dashboard and f"IV-GARB Garbing — {label}" in dashboard
    assert "Nothing needs your attention" not in dashboard

    manager_view = _text(team.get(f"/team/technicians/{ana}"))
    assert "Garbing in the IV room" in manager_view and label in manager_view

    shown = _text(tech_get(f"/transcripts/people/{ana}"))
    assert label in shown
    data = tech_get(f"/transcripts/people/{ana}/download/json").json()
    (item,) = data["cross_training"][0]["items"]
    assert (item["sign_off_state"], item["verified"], item["status_label"]) == ("revoked", False, label)
    (att,) = data["competencies"][0]["attestations"]
    assert att["state"] == "revoked" and att["revocation_reason"] == "Observed technique was not aseptic"
    rows = list(csv.DictReader(io.StringIO(tech_get(f"/transcripts/people/{ana}/download/csv").text)))
    assert [r["status"] for r in rows if r["section"] == "cross_training"] == [label]
    assert [r["state"] for r in rows if r["section"] == "competency"] == ["Revoked"]
    pdf = _pdf_text(tech_get(f"/transcripts/people/{ana}/download/pdf-letter").content)
    assert label in pdf and "Revoked" in pdf
    assert "Signed off" not in pdf.split("Cross-training by department")[1].split("Responsibilities")[0]


def test_a_correction_to_not_yet_proficient_needs_re_assessment(team, app, platform, http):
    (ana,) = team.technicians(1)
    (request_id,) = team.request(ana, [team.asep], title="Aseptic practice")
    sign_off_id = team.sign(request_id)
    page = team.get(f"/team/sign-offs/{sign_off_id}")
    corrected = team.post(f"/team/sign-offs/{sign_off_id}", {
        "csrf_token": form_fields(page.text)["csrf_token"], "action": "correct", "reason": "Rated too high",
        "rating": "supervised", "method": "observed"})
    assert corrected.status_code == 303
    with app.app_context():
        evidence_id = db.session.get(ReviewRequest, request_id).evidence_id
        assert db.session.scalars(select(SignOff.corrects_id).where(SignOff.corrects_id.is_not(None))).all() == [
            sign_off_id]
    label = (f"Sign-off corrected to “Competent with supervision” on {formatting.us_date(datetime.now(UTC))} "
             "by Maria Manager")
    tech = launch(platform, http, team.base, role="student", sub="Tech-0", name="Tech 000")
    detail = _text(http.get(f"{team.base}/me/evidence/{evidence_id}?lt={tech}"))
    assert label in detail and "no longer counts toward IV-ASEP" in detail
    assert "Needs re-assessment" in _text(http.get(f"{team.base}/me/?lt={tech}"))
    review = _text(team.get(f"/team/review/{request_id}"))
    assert label in review
    data = http.get(f"{team.base}/transcripts/people/{ana}/download/json?lt={tech}").json()
    (item,) = data["cross_training"][0]["items"]
    assert (item["sign_off_state"], item["verified"]) == ("corrected", False)


def test_a_standing_sign_off_reads_signed_off(team, app, platform, http):
    (ana,) = team.technicians(1)
    team.sign(team.request(ana, [team.garb], title="Garbing")[0])
    tech = launch(platform, http, team.base, role="student", sub="Tech-0", name="Tech 000")
    data = http.get(f"{team.base}/transcripts/people/{ana}/download/json?lt={tech}").json()
    (item,) = data["cross_training"][0]["items"]
    assert (item["sign_off_state"], item["verified"], item["status_label"]) == ("signed_off", True, "Signed off")
    dashboard = http.get(f"{team.base}/me/?lt={tech}").text
    # The status tiles count every state (0 need re-assessment); nothing is flagged under "What needs attention".
    assert 'data-testid="reassess"' not in dashboard and "Nothing needs your attention right now." in _text(
        http.get(f"{team.base}/me/?lt={tech}"))
