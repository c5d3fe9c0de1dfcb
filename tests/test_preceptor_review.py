"""Named preceptors review through real launches: a technician named preceptor for a competency gets a review
queue of other technicians' cross-training for it, the same review page, signs off in the role "preceptor"
(shown on the transcript), and is refused everything else (access matrix)."""
import io
import re
from html import unescape

import pytest
from sqlalchemy import select

from lti_tool import web
from lti_tool.extensions import db
from lti_tool.models import Attachment, Person, ReviewRequest, SignOff
from lti_tool.services import attachments, reviews
from tests.support.competency_world import GARB_STEPS
from tests.test_manager_pages import PNG, Team, form_fields, launch


@pytest.fixture
def team(app, live_server, platform, registered, http):
    return Team(app, platform, http, live_server)


class Preceptor:
    """A technician launched from the LMS (a learner, like Moodle's non-editing teachers) and named preceptor
    for IV-GARB by the course's manager."""

    def __init__(self, team, platform, http, app, competencies):
        self.team = team
        self.token = launch(platform, http, team.base, role="student", sub="prec-1", name="Paula Preceptor")
        with app.app_context():
            self.id = db.session.scalars(select(Person.id).where(Person.sub == "prec-1")).one()
            reviews.name_preceptor(team.actor(team.manager_id), team.course_id, self.id, competencies)
            db.session.commit()

    def get(self, path, **params):
        url = f"{self.team.base}{path}?lt={self.token}" + "".join(f"&{k}={v}" for k, v in params.items())
        return self.team.http.get(url, allow_redirects=False)

    def post(self, path, data):
        return self.team.http.post(f"{self.team.base}{path}?lt={self.token}", data=data, allow_redirects=False)


def _attach(app, request_id, uploader):
    with app.app_context():
        key = attachments.storage().save(io.BytesIO(PNG))
        att = Attachment(evidence_id=db.session.get(ReviewRequest, request_id).evidence_id, filename="a.png",
                         content_type="image/png", size=len(PNG), sha256="2" * 64, storage_key=key,
                         uploaded_by_id=uploader)
        db.session.add(att)
        db.session.commit()
        return att.id


def test_preceptor_queue_review_and_sign_off_recorded_as_preceptor(team, app, platform, http):
    ana, ben = team.technicians(2)
    prec = Preceptor(team, platform, http, app, [team.garb])
    (garb_ana,) = team.request(ana, [team.garb], title="Garbing with Ana")
    (cart_ben,) = team.request(ben, [team.cart], title="Cart fill with Ben")
    (resp_ben,) = team.request(ben, [team.garb], title="Garbing rota lead", kind="responsibility")
    (own,) = team.request(prec.id, [team.garb], title="My own garbing")

    home = prec.get("/me/").text  # a technician preceptor lands on the portfolio; the nav shows the queue
    assert "Review queue" in home and "Team matrix" not in home

    queue = prec.get("/team/queue")
    assert queue.status_code == 200
    text = unescape(queue.text)
    assert "1 open request" in text and "Garbing with Ana" in text
    for hidden in ("Cart fill with Ben", "Garbing rota lead", "My own garbing"):
        assert hidden not in text
    assert "As a preceptor you review" in text
    assert "/team/technicians/" not in text and "Sign off selected" not in text  # managers' tools stay hidden
    assert 'href="/team/"' not in text and "Team matrix" not in text
    # The filters list only what the preceptor reviews.
    assert re.findall(r'<option value="(\d+)"[^>]*>IV-GARB', queue.text) == [str(team.garb)]
    assert "CEN-CART" not in queue.text

    page = prec.get(f"/team/review/{garb_ana}")
    assert page.status_code == 200 and "Garbing with Ana" in page.text
    done = prec.post(f"/team/review/{garb_ana}", {
        "csrf_token": form_fields(page.text)["csrf_token"], "decision": "sign_off", "rating": "competent",
        "method": "observed", "checklist_seen": GARB_STEPS})
    assert done.status_code == 303, done.text
    after = team.http.get(team.base + done.headers["Location"]).text
    assert "Signed off IV-GARB for Tech 000: Competent." in after
    with app.app_context():
        row = db.session.scalars(select(SignOff)).one()
        assert (row.signer_id, row.signer_role, row.signer_name) == (prec.id, "preceptor", "Paula Preceptor")
        assert row.review_request_id == garb_ana

    # The technician's transcript (page and JSON) names the preceptor and the role.
    tech_token = launch(platform, http, team.base, role="student", sub="Tech-0", name="Tech 000")
    transcript = http.get(f"{team.base}/transcripts/people/{ana}?lt={tech_token}")
    assert transcript.status_code == 200
    assert "<td>Paula Preceptor</td><td>Preceptor</td>" in transcript.text
    data = http.get(f"{team.base}/transcripts/people/{ana}/download/json?lt={tech_token}").json()
    (att,) = data["competencies"][0]["attestations"]
    assert (att["signer_name"], att["signer_role"], att["signer_role_label"]) == (
        "Paula Preceptor", "preceptor", "Preceptor")

    # Everything else is refused: another competency's, another kind's and their own requests are not found.
    for request_id in (cart_ben, resp_ben, own):
        assert prec.get(f"/team/review/{request_id}").status_code == 404, request_id
        refused = prec.post(f"/team/review/{request_id}", {
            "csrf_token": form_fields(page.text)["csrf_token"], "decision": "sign_off", "rating": "competent",
            "method": "observed"})
        assert refused.status_code in (403, 404)
    with app.app_context():
        assert db.session.scalar(select(SignOff.id).where(SignOff.review_request_id.in_(
            [cart_ben, resp_ben, own]))) is None


def test_preceptor_access_matrix(team, app, platform, http):
    (ana,) = team.technicians(1)
    prec = Preceptor(team, platform, http, app, [team.garb])
    (garb,) = team.request(ana, [team.garb])
    (cart,) = team.request(ana, [team.cart])
    sign_off_id = team.sign(team.request(ana, [team.asep])[0])
    garb_att, cart_att = _attach(app, garb, ana), _attach(app, cart, ana)
    with app.test_request_context(f"/app/?lt={prec.token}"):
        csrf = web.csrf_token()
    expected = [
        ("GET", "/team/queue", 200), ("GET", f"/team/review/{garb}", 200), ("GET", f"/team/review/{cart}", 404),
        ("GET", f"/team/attachments/{garb_att}", 200), ("GET", f"/team/attachments/{cart_att}", 404),
        ("GET", "/team/", 403), ("GET", f"/team/bulk?request={garb}", 403), ("POST", "/team/bulk", 403),
        ("GET", f"/team/technicians/{ana}", 403), ("GET", f"/team/sign-offs/{sign_off_id}", 403),
        ("POST", f"/team/sign-offs/{sign_off_id}", 403), ("GET", "/team/preceptors", 403),
        ("POST", "/team/preceptors", 403), ("POST", "/team/preceptors/remove", 403),
    ]
    for method, path, code in expected:
        url = team.base + path + ("&" if "?" in path else "?") + f"lt={prec.token}"
        resp = http.request(method, url, data={"csrf_token": csrf} if method == "POST" else None,
                            allow_redirects=False)
        assert resp.status_code == code, (method, path, resp.status_code)

    # Removed as preceptor: the queue closes again, with the managers' message.
    with app.app_context():
        reviews.remove_preceptor(team.actor(team.manager_id), team.course_id, prec.id)
        db.session.commit()
    closed = prec.get("/team/queue")
    assert closed.status_code == 403 and "managers and named preceptors" in unescape(closed.text)
    assert "Review queue" not in prec.get("/me/").text


def test_preceptors_page_says_what_preceptors_can_do(team):
    page = unescape(team.get("/team/preceptors").text)
    assert "Review queue" in page and "“Preceptor”" in page
