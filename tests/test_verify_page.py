"""The public verification page, through real launches and HTTP: what a credential certifies (competencies, dates,
signers' names and roles, the pharmacy's name as the tenant set it), the downloaded Open Badges and CLR files
accepted as they are (uploaded or pasted), and a revocation shown by its date only, never its reason."""
import re
from datetime import UTC, datetime
from html import unescape

import requests
from sqlalchemy import select

from lti_tool import formatting
from lti_tool.extensions import db
from lti_tool.models import IssuedCredential, Membership, Person, SignOff
from lti_tool.services import reviews
from lti_tool.services.actors import Actor
from tests.support.platform import CANVAS_ROLES
from tests.test_transcript_pages import launch, pdf_text, site  # noqa: F401 (the site fixture)


def _text(resp) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", resp.text)).split())


def _name_the_pharmacy(app, live_server, platform):
    admin = launch(app, live_server, platform, "admin-1", CANVAS_ROLES["account_admin"], name="Ada Admin")
    saved = admin.post("/admin/settings/organization", {"csrf_token": admin.csrf("/admin/settings"),
                                                       "organization_name": "Riverside Health Pharmacy"})
    assert saved.status_code == 303
    bad = admin.post("/admin/settings/organization", {"csrf_token": admin.csrf("/admin/settings"),
                                                     "organization_name": "x" * 201})
    assert bad.status_code == 400 and "at most 200 characters" in bad.text


def test_verify_shows_what_a_transcript_certifies_and_the_pharmacys_name(site, app, live_server, platform):  # noqa: F811
    _name_the_pharmacy(app, live_server, platform)
    tech = site["tech"]
    pdf = pdf_text(tech.get(f"/transcripts/people/{tech.person_id}/download/pdf-letter").content)
    assert "Riverside Health Pharmacy" in pdf
    link = re.search(r"(http://\S+/verify/[0-9a-f-]{36})", pdf).group(1)
    page = requests.get(link, timeout=10)
    text = _text(page)
    today = formatting.us_date(datetime.now(UTC))
    assert page.status_code == 200 and "Valid" in text
    assert "Organization Riverside Health Pharmacy" in text and "Holder Tess Nguyen" in text
    assert f"IV-GARB Garbing and gloved-fingertip testing Competent {today} Mina Manager Manager" in text
    data = requests.get(link + ".json", timeout=10).json()
    assert data["credential"]["organization"] == "Riverside Health Pharmacy"
    assert [(c["code"], c["signer"], c["role"], c["signed"]) for c in data["certifies"]] == [
        ("IV-GARB", "Mina Manager", "Manager", today)]


def test_downloaded_open_badges_and_clr_files_verify_as_they_are(site, app):  # noqa: F811
    tech = site["tech"]
    bundle = tech.get(f"/transcripts/people/{tech.person_id}/download/ob3")
    clr = tech.get(f"/transcripts/people/{tech.person_id}/download/clr")
    assert bundle.status_code == clr.status_code == 200
    for files, data in (({"file": ("open-badges.json", bundle.content, "application/json")}, {}),
                        ({"file": ("clr.jwt", clr.content, "application/vc+jwt")}, {}),
                        ({}, {"credential": bundle.text}),
                        ({}, {"credential": clr.text})):
        resp = requests.post(tech.base + "/verify", files=files or None, data=data, timeout=10)
        text = _text(resp)
        assert resp.status_code == 200, text[:300]
        assert "Valid" in text and "IV-GARB Garbing and gloved-fingertip testing" in text and "Mina Manager" in text
    # The bundle as JSON: one answer per credential in it.
    api = requests.post(tech.base + "/verify", data=bundle.content, headers={"Content-Type": "text/plain"},
                        timeout=10).json()
    assert api["status"] == "valid" and [c["status"] for c in api["credentials"]] == ["valid"]
    refused = requests.post(tech.base + "/verify", files={"file": ("x.json", b'{"credentials": []}')}, timeout=10)
    assert refused.status_code == 400 and "lists no credentials" in refused.text


def test_a_revocation_shows_that_and_when_never_why(site, app):  # noqa: F811
    tech = site["tech"]
    clr = tech.get(f"/transcripts/people/{tech.person_id}/download/clr").text
    with app.app_context():
        public_id = db.session.scalars(select(IssuedCredential.public_id).where(
            IssuedCredential.kind == "clr")).one()
        manager = db.session.get(Person, site["manager"].person_id)
        membership = db.session.scalars(select(Membership).where(Membership.person_id == manager.id)).one()
        sign_off = db.session.scalars(select(SignOff.id).where(SignOff.person_id == tech.person_id)).one()
        reviews.revoke(Actor(person=manager, course=membership.course, membership=membership), sign_off,
                       "Private: failed the media fill twice")
        db.session.commit()
    today = formatting.us_date(datetime.now(UTC))
    for resp in (requests.get(f"{tech.base}/verify/{public_id}", timeout=10),
                 requests.get(f"{tech.base}/verify/{public_id}.json", timeout=10),
                 requests.post(tech.base + "/verify", data={"credential": clr}, timeout=10)):
        assert resp.status_code == 200
        assert "Private" not in resp.text and "media fill" not in resp.text
        assert "Revoked" in resp.text and f"revoked on {today}" in unescape(resp.text)
