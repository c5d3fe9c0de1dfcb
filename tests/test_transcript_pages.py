"""Transcript pages over real HTTP after a real LTI launch: downloads in every format, who may see whose
transcript, the manager's matrix and ZIP export with its progress JSON, and the public verification endpoints."""
import base64
import io
import json
import re
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from pypdf import PdfReader
from sqlalchemy import select

from lti_tool.blueprints import transcripts as transcripts_blueprint
from lti_tool.extensions import db
from lti_tool.lti import keys
from lti_tool.models import (
    Course,
    CourseFramework,
    Evidence,
    EvidenceCompetency,
    IssuedCredential,
    Membership,
    Person,
    SignOff,
)
from lti_tool.services import reviews
from lti_tool.services.actors import Actor
from tests.support.competency_world import make_framework
from tests.support.platform import CANVAS_ROLES


class Portal:
    def __init__(self, base, http, token, person_id):
        self.base, self.http, self.token, self.person_id = base, http, token, person_id

    def get(self, path, **params):
        return self.http.get(self.base + path, params={"lt": self.token, **params}, allow_redirects=False)

    def post(self, path, data):
        return self.http.post(self.base + path, params={"lt": self.token}, data=data, allow_redirects=False)

    def csrf(self, path="/verify"):
        return re.search(r'name="csrf_token" value="([^"]+)"', self.get(path).text).group(1)


def launch(app, live_server, platform, sub, roles=None, name="Tess Nguyen", email="tess@example.org"):
    http = requests.Session()
    resp, _, _ = platform.launch(http, live_server, sub=sub, roles=roles or CANVAS_ROLES["student"], name=name,
                                 email=email)
    assert resp.status_code == 303, resp.text
    token = parse_qs(urlsplit(resp.headers["Location"]).query)["lt"][0]
    with app.app_context():
        person_id = db.session.scalars(select(Person.id).where(Person.sub == sub)).one()
    return Portal(live_server, http, token, person_id)


@pytest.fixture
def site(app, live_server, platform, registered):
    """A technician with a signed-off competency, a second technician and a manager, all launched."""
    tech = launch(app, live_server, platform, "tech-1")
    other = launch(app, live_server, platform, "tech-2", name="Omar Other", email="omar@example.org")
    manager = launch(app, live_server, platform, "manager-1", CANVAS_ROLES["teacher"], name="Mina Manager",
                     email="mina@example.org")
    with app.app_context():
        keys.ensure_published()
        course = db.session.scalars(select(Course)).one()
        framework, (garb,) = make_framework(course.registration, competencies=[
            {"code": "IV-GARB", "title": "Garbing and gloved-fingertip testing", "departments": ["iv_room"],
             "revalidation_months": 120}])
        db.session.add(CourseFramework(course_id=course.id, framework_id=framework.id))
        db.session.flush()

        def actor(person_id):
            membership = db.session.scalars(select(Membership).where(Membership.person_id == person_id)).one()
            return Actor(person=membership.person, course=course, membership=membership)

        for person_id in (tech.person_id, other.person_id):
            ev = Evidence(person_id=person_id, course_id=course.id, kind="cross_training",
                          title="Gloved-fingertip test", data={"department": "iv_room", "hours": 8}, status="draft",
                          revision=1)
            ev.competency_links = [EvidenceCompetency(competency_id=garb.id)]
            db.session.add(ev)
            db.session.flush()
            request = reviews.request_review(actor(person_id), ev.id)[0]
            sign_off = reviews.sign_off(actor(manager.person_id), request.id, "competent", "observed", [])
        db.session.commit()
        site_data = {"course_id": course.id, "sign_off_id": sign_off.id}
    return {"tech": tech, "other": other, "manager": manager, **site_data}


def pdf_text(content: bytes) -> str:
    return " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages).split())


def test_technician_downloads_every_format(site):
    tech = site["tech"]
    index = tech.get("/transcripts/")
    assert index.status_code == 200 and "Open my transcript" in index.text
    page = tech.get(f"/transcripts/people/{tech.person_id}")
    assert page.status_code == 200
    assert "Transcript of Tess Nguyen" in page.text and "IV-GARB Garbing and gloved-fingertip testing" in page.text
    assert "<script>" not in page.text  # no inline script (CSP)

    pdf = tech.get(f"/transcripts/people/{tech.person_id}/download/pdf-a4")
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert "attachment" in pdf.headers["Content-Disposition"]
    assert int(pdf.headers["Content-Length"]) == len(pdf.content)  # sent from its spooled file, whole
    text = pdf_text(pdf.content)
    assert "Tess Nguyen" in text and "Mina Manager" in text and "Observed" in text
    verify_url = re.search(r"(http://\S+/verify/[0-9a-f-]{36})", text).group(1)

    csv_resp = tech.get(f"/transcripts/people/{tech.person_id}/download/csv")
    assert csv_resp.status_code == 200 and csv_resp.text.startswith("section,")
    data = tech.get(f"/transcripts/people/{tech.person_id}/download/json").json()
    assert data["person"]["name"] == "Tess Nguyen" and data["competencies"][0]["code"] == "IV-GARB"
    bundle = tech.get(f"/transcripts/people/{tech.person_id}/download/ob3").json()
    assert [c["name"] for c in bundle["credentials"]] == ["IV-GARB Garbing and gloved-fingertip testing"]
    clr = tech.get(f"/transcripts/people/{tech.person_id}/download/clr")
    assert clr.status_code == 200 and clr.headers["Content-Type"].startswith("application/vc+jwt")

    # The printed transcript's link answers, publicly (no session).
    public = requests.get(verify_url + ".json", timeout=10).json()
    assert public["status"] == "valid" and public["credential"]["holder"] == "Tess Nguyen"
    assert "Valid" in requests.get(verify_url, timeout=10).text

    # The published keys verify the OB credential; POST /verify agrees.
    token = bundle["credentials"][0]["jwt"]
    result = requests.post(tech.base + "/verify", json={"credential": token}, timeout=10)
    assert result.status_code == 200 and result.json()["status"] == "valid"
    jwks = requests.get(tech.base + "/credentials/jwks", timeout=10).json()
    assert jwks == requests.get(tech.base + "/lti/jwks", timeout=10).json()
    profile = requests.get(tech.base + "/credentials/issuer", timeout=10).json()
    assert profile["id"] == tech.base + "/credentials/issuer" and profile["type"] == ["Profile"]
    status_list = requests.get(tech.base + "/credentials/status/0", timeout=10)
    assert status_list.status_code == 200 and status_list.text.count(".") == 2


def test_someone_elses_transcript_is_not_found(site):
    tech, other = site["tech"], site["other"]
    for path in (f"/transcripts/people/{other.person_id}", f"/transcripts/people/{other.person_id}/download/pdf-a4",
                 f"/transcripts/people/{other.person_id}/download/ob3", "/transcripts/people/999999"):
        resp = tech.get(path)
        assert resp.status_code == 404, path
        assert "Omar" not in resp.text and "%PDF" not in resp.text
    assert tech.get(f"/transcripts/people/{tech.person_id}/download/docx").status_code == 404
    assert tech.get(f"/transcripts/courses/{site['course_id']}/matrix.csv").status_code == 403
    assert tech.post(f"/transcripts/courses/{site['course_id']}/exports",
                     {"csrf_token": tech.csrf()}).status_code == 403
    anonymous = requests.get(tech.base + "/transcripts/", timeout=10)
    assert anonymous.status_code == 401


def test_a_large_pdf_goes_out_from_a_temporary_file_not_from_memory(site, monkeypatch):
    spools = []

    class Spy(tempfile.SpooledTemporaryFile):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            spools.append(self)

    monkeypatch.setattr(transcripts_blueprint, "PDF_SPOOL_BYTES", 1024)
    monkeypatch.setattr(transcripts_blueprint.tempfile, "SpooledTemporaryFile", Spy)
    tech = site["tech"]
    pdf = tech.get(f"/transcripts/people/{tech.person_id}/download/pdf-letter")
    assert pdf.status_code == 200 and int(pdf.headers["Content-Length"]) == len(pdf.content) > 1024
    assert "Tess Nguyen" in pdf_text(pdf.content)
    assert len(spools) == 1 and spools[0]._rolled  # past the limit: on disk, not in a bytes object
    deadline = time.monotonic() + 5  # the server closes it after the last block, maybe after the client read it
    while not spools[0].closed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert spools[0].closed


def test_manager_sees_team_and_exports(site):
    manager, tech = site["manager"], site["tech"]
    index = manager.get("/transcripts/")
    assert "Omar Other" in index.text and "Tess Nguyen" in index.text and "course matrix" in index.text
    page = manager.get(f"/transcripts/people/{tech.person_id}")
    assert page.status_code == 200 and "courses managed by the requester" in page.text
    letter = manager.get(f"/transcripts/people/{tech.person_id}/download/pdf-letter")
    assert letter.status_code == 200
    assert round(float(PdfReader(io.BytesIO(letter.content)).pages[0].mediabox.width)) == 612

    matrix = manager.get(f"/transcripts/courses/{site['course_id']}/matrix.csv")
    assert matrix.status_code == 200 and "IV-GARB Garbing and gloved-fingertip testing" in matrix.text
    assert "Omar Other" in matrix.text and "Achieved" in matrix.text

    # Without the form token the export is refused.
    assert manager.post(f"/transcripts/courses/{site['course_id']}/exports", {}).status_code == 400
    started = manager.post(f"/transcripts/courses/{site['course_id']}/exports",
                           {"csrf_token": manager.csrf(), "page_size": "letter"})
    assert started.status_code == 303
    page = manager.http.get(manager.base + started.headers["Location"], allow_redirects=False)
    assert page.status_code == 200 and 'src="/static/js/export_progress.js"' in page.text
    progress_url = re.search(r'data-progress-url="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    deadline = time.monotonic() + 60
    while True:
        progress = manager.http.get(manager.base + progress_url).json()
        if progress["status"] in ("done", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert progress["status"] == "done" and progress["done"] == progress["total"] == 2
    archive = manager.http.get(manager.base + progress["download_url"])
    assert archive.status_code == 200 and archive.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zf:
        names = zf.namelist()
        assert len(names) == 2
        assert any("Omar Other" in pdf_text(zf.read(n)) for n in names)
    # Another person's session cannot read the job.
    job_path = urlsplit(progress_url).path
    assert tech.get(job_path).status_code == 404


def test_verification_reports_revoked_and_refuses_bad_input(site, app):
    tech = site["tech"]
    bundle = tech.get(f"/transcripts/people/{tech.person_id}/download/ob3").json()
    token = bundle["credentials"][0]["jwt"]
    with app.app_context():
        public_id = db.session.scalars(select(IssuedCredential.public_id)).one()
        manager = db.session.get(Person, site["manager"].person_id)
        membership = db.session.scalars(select(Membership).where(Membership.person_id == manager.id)).one()
        reviews.revoke(Actor(person=manager, course=membership.course, membership=membership),
                       _tech_sign_off(tech.person_id), "Wrong technician",
                       now=datetime.now(UTC))
        db.session.commit()
    result = requests.post(tech.base + "/verify", data=token, headers={"Content-Type": "text/plain"}, timeout=10)
    assert result.status_code == 200 and result.json()["status"] == "revoked"
    # Only that and when: the reason is the organization's internal record (issue 11).
    assert result.json()["reasons"][0].startswith("The sign-off of IV-GARB was revoked on ")
    assert "Wrong technician" not in result.text
    assert requests.get(f"{tech.base}/verify/{public_id}.json", timeout=10).json()["status"] == "revoked"
    html = requests.get(f"{tech.base}/verify/{public_id}", timeout=10)
    assert html.status_code == 200 and "Revoked" in html.text and "Wrong technician" not in html.text

    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["name"] = "Something else"
    forged = ".".join([head, base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("="), sig])
    tampered = requests.post(tech.base + "/verify", json={"credential": forged}, timeout=10)
    assert tampered.status_code == 422 and tampered.json()["status"] == "invalid"
    assert "Tess" not in tampered.text

    for bad in ("nonsense", "{broken json", ""):
        resp = requests.post(tech.base + "/verify", data=bad.encode(), headers={"Content-Type": "text/plain"},
                             timeout=10)
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "malformed_credential", bad
    form = requests.post(tech.base + "/verify", data={"credential": "not-a-jwt"}, timeout=10)
    assert form.status_code == 400 and "not a compact JWT" in form.text
    assert requests.get(tech.base + "/verify/00000000-0000-4000-8000-000000000000.json", timeout=10).status_code \
        == 404
    assert requests.get(tech.base + "/verify/not-an-id", timeout=10).status_code == 404
    assert requests.get(tech.base + "/verify", timeout=10).status_code == 200


def _tech_sign_off(person_id):
    return db.session.scalars(select(SignOff.id).where(SignOff.person_id == person_id)).one()
