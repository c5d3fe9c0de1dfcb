"""The manager's pages over real HTTP, after real launches from the test LTI platform: review queue and its
filters, the review page (sign off, return, the race, own evidence), bulk sign-off, the team matrix (filters,
pagination, flat query counts), a technician's detail (revoke, correct), preceptors, attachments, and a
technician refused everywhere (403)."""
import io
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from lti_tool import web
from lti_tool.extensions import db
from lti_tool.models import (
    Attachment,
    Course,
    CourseFramework,
    Evidence,
    EvidenceCompetency,
    Membership,
    Person,
    Preceptor,
    ReviewRequest,
    SignOff,
    SignOffRevocation,
)
from lti_tool.services import attachments, reviews
from lti_tool.services.actors import Actor
from lti_tool.tool_session import PARAM
from tests.support.competency_world import GARB_STEPS, count_queries, make_framework
from tests.support.platform import CANVAS_ROLES

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
       b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
NOW = datetime.now(UTC)


def launch(platform, http, live_server, role="teacher", sub="mgr-1", name="Maria Manager"):
    resp, _, _ = platform.launch(http, live_server, roles=CANVAS_ROLES[role], sub=sub, name=name,
                                 given_name=name.split()[0], family_name=name.split()[-1])
    assert resp.status_code == 303, resp.text
    return parse_qs(urlsplit(resp.headers["Location"]).query)["lt"][0]


def form_fields(html):
    return dict(re.findall(r'name="([^"]+)" value="([^"]*)"', html))


class Team:
    """A course launched by a manager, using a small framework, with technicians on the roster."""

    def __init__(self, app, platform, http, live_server):
        self.app, self.http, self.base = app, http, live_server
        self.token = launch(platform, http, live_server)
        with app.app_context():
            course = db.session.scalars(select(Course)).one()
            self.course_id, self.reg_id = course.id, course.registration_id
            self.manager_id = db.session.scalars(select(Person.id).where(Person.sub == "mgr-1")).one()
            framework, comps = make_framework(course.registration, competencies=[
                {"code": "IV", "title": "IV room"},
                {"code": "CEN", "title": "Central pharmacy"},
            ])
            iv, cen = comps
            from lti_tool.models import Competency

            extra = [
                Competency(framework_id=framework.id, parent_id=iv.id, code="IV-GARB", title="Garbing",
                           departments=["iv_room"], checklist=GARB_STEPS, revalidation_months=6, position=0),
                Competency(framework_id=framework.id, parent_id=iv.id, code="IV-ASEP", title="Aseptic technique",
                           departments=["iv_room"], revalidation_months=12, position=1),
                Competency(framework_id=framework.id, parent_id=cen.id, code="CEN-CART", title="Cart fill",
                           departments=["central"], position=0),
            ]
            db.session.add_all(extra)
            db.session.add(CourseFramework(course_id=course.id, framework_id=framework.id))
            db.session.flush()
            self.iv_area, self.cen_area = iv.id, cen.id
            self.garb, self.asep, self.cart = (c.id for c in extra)
            db.session.commit()

    def url(self, path, **params):
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"{self.base}{path}?lt={self.token}" + (f"&{query}" if query else "")

    def get(self, path, **params):
        return self.http.get(self.url(path, **params))

    def post(self, path, data, token=None):
        page_token = token or self.token
        return self.http.post(f"{self.base}{path}?lt={page_token}", data=data, allow_redirects=False)

    def csrf(self, path="/team/preceptors"):
        return form_fields(self.get(path).text)["csrf_token"]

    # -- data --------------------------------------------------------------------------------------
    def technicians(self, n, prefix="Tech", launched=False, active=True):
        with self.app.app_context():
            ids = []
            for i in range(n):
                person = Person(registration_id=self.reg_id, sub=f"{prefix}-{i}", name=f"{prefix} {i:03d}",
                                family_name=f"{prefix}{i:03d}", given_name=prefix,
                                last_launch_at=NOW if launched else None)
                db.session.add(person)
                db.session.flush()
                db.session.add(Membership(person_id=person.id, course_id=self.course_id, role="technician",
                                          lti_roles=[], active=active, source="roster"))
                ids.append(person.id)
            db.session.commit()
            return ids

    def actor(self, person_id):
        person = db.session.get(Person, person_id)
        membership = db.session.scalars(select(Membership).where(Membership.person_id == person_id,
                                                                 Membership.course_id == self.course_id)).one()
        return Actor(person=person, course=membership.course, membership=membership)

    def request(self, person_id, competency_ids, title="Evidence", kind="cross_training", at=None):
        """Evidence of a technician sent for review; returns the request ids."""
        with self.app.app_context():
            ev = Evidence(person_id=person_id, course_id=self.course_id, kind=kind, title=title, revision=1,
                          status="draft", created_at=(at or NOW) - timedelta(days=1),
                          data={"department": "iv_room", "hours": 8, "trainer_name": "Pat Lee",
                                "start_date": "2026-11-02", "skills": ["Garbing order", "Hand hygiene"]})
            ev.competency_links = [EvidenceCompetency(competency_id=c) for c in competency_ids]
            db.session.add(ev)
            db.session.flush()
            made = reviews.request_review(self.actor(person_id), ev.id, now=at or NOW)
            db.session.commit()
            return [r.id for r in made]

    def sign(self, request_id, at=None, rating="competent"):
        with self.app.app_context():
            made = reviews.sign_off(self.actor(self.manager_id), request_id, rating, "observed", [], now=at or NOW)
            db.session.commit()
            return made.id


@pytest.fixture
def team(app, live_server, platform, registered, http):
    return Team(app, platform, http, live_server)


# --- Review queue -------------------------------------------------------------------------------------------

def test_queue_lists_open_requests_oldest_first_and_filters_them(team):
    ana, ben = team.technicians(2)
    r_new = team.request(ana, [team.cart], title="Cart fill week", at=NOW - timedelta(hours=2))
    r_old = team.request(ben, [team.garb], title="Garbing observed", at=NOW - timedelta(days=3))
    r_mid = team.request(ana, [team.asep], title="Aseptic practice", at=NOW - timedelta(days=1))

    page = team.get("/team/queue")
    assert page.status_code == 200
    text = page.text
    assert "3 open requests" in text
    # Oldest first: Garbing (3 days), Aseptic (1 day), Cart (2 hours).
    assert text.index("Garbing observed") < text.index("Aseptic practice") < text.index("Cart fill week")
    assert "3 days ago" in text and "2 hours ago" in text
    assert f"/team/review/{r_old[0]}" in text and "Cross-training" in text
    # absolute time next to the relative one, US style in the tenant's zone (default Eastern)
    assert re.search(r"[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d\d [AP]M E[SD]T", text)

    by_competency = team.get("/team/queue", competency=team.garb).text
    assert "Garbing observed" in by_competency and "Cart fill week" not in by_competency
    by_department = team.get("/team/queue", department="central").text
    assert "Cart fill week" in by_department and "Garbing observed" not in by_department
    assert "Aseptic practice" not in by_department
    by_person = team.get("/team/queue", technician=ana).text
    assert "Cart fill week" in by_person and "Aseptic practice" in by_person and "Garbing observed" not in by_person
    assert f'value="{r_mid[0]}"' in by_person and f'value="{r_new[0]}"' in by_person
    assert team.get("/team/queue", department="moon").status_code == 400


# --- Review page --------------------------------------------------------------------------------------------

def test_review_page_shows_the_evidence_and_signs_off(team, app):
    (tech,) = team.technicians(1)
    (request_id,) = team.request(tech, [team.garb], title="Garbing observed")
    page = team.get(f"/team/review/{request_id}")
    assert page.status_code == 200
    html = page.text
    assert "Garbing observed" in html and "Pat Lee" in html and "IV room / sterile compounding" in html
    assert "Nov 2, 2026" in html and "2026-11-02" not in html  # the evidence's dates as US dates
    for step in GARB_STEPS:
        assert f'value="{step}"' in html
    assert 'type="radio" name="rating" value="competent"' in html
    assert html.count('class="proficient"') == 2  # Competent and Can train others
    for method in ("observed", "demonstrated", "verified_document", "attested"):
        assert f'name="method" value="{method}"' in html

    # Missing rating and method: the form comes back with an error summary, keeping what was typed.
    bad = team.post(f"/team/review/{request_id}", {"csrf_token": form_fields(html)["csrf_token"],
                                                     "decision": "sign_off", "comment": "Nice work",
                                                     "checklist_seen": GARB_STEPS[:2]})
    assert bad.status_code == 400
    assert 'id="error-summary"' in bad.text and 'href="#rating"' in bad.text and "Nice work" in bad.text
    assert f'value="{GARB_STEPS[0]}" id="step-1" checked' in bad.text

    done = team.post(f"/team/review/{request_id}", {
        "csrf_token": form_fields(html)["csrf_token"], "decision": "sign_off", "rating": "competent",
        "method": "observed", "checklist_seen": GARB_STEPS[:2], "comment": "Clean technique"})
    assert done.status_code == 303
    queue = team.http.get(team.base + done.headers["Location"])
    assert "Signed off IV-GARB for Tech 000: Competent." in queue.text
    assert "Garbing observed" not in queue.text
    with app.app_context():
        row = db.session.scalars(select(SignOff)).one()
        assert (row.rating_code, row.method, row.checklist_seen, row.comment) == (
            "competent", "observed", GARB_STEPS[:2], "Clean technique")
        assert row.signer_id == team.manager_id
    # The closed request's page says so and offers no form.
    closed = team.get(f"/team/review/{request_id}").text
    assert "no longer open" in closed and 'name="decision"' not in closed


def test_return_needs_a_comment_and_sends_the_evidence_back(team, app):
    (tech,) = team.technicians(1)
    (request_id,) = team.request(tech, [team.garb])
    csrf = team.csrf(f"/team/review/{request_id}")
    empty = team.post(f"/team/review/{request_id}", {"csrf_token": csrf, "decision": "return", "comment": "  "})
    assert empty.status_code == 400
    assert "a comment is required to return" in empty.text and 'aria-describedby="comment-error"' in empty.text
    done = team.post(f"/team/review/{request_id}", {"csrf_token": csrf, "decision": "return",
                                                     "comment": "Add the fingertip sample result"})
    assert done.status_code == 303
    assert "Returned to Tech 000 with your comments" in team.http.get(team.base + done.headers["Location"]).text
    with app.app_context():
        row = db.session.get(ReviewRequest, request_id)
        assert (row.status, row.return_comment) == ("returned", "Add the fingertip sample result")
        assert row.evidence.status == "returned"


def test_someone_else_signing_first_shows_the_services_message(team, app):
    (tech,) = team.technicians(1)
    (request_id,) = team.request(tech, [team.garb])
    csrf = team.csrf(f"/team/review/{request_id}")  # the page is open...
    with app.app_context():  # ...while another manager signs off
        other = Person(registration_id=team.reg_id, sub="mgr-2", name="Other Manager")
        db.session.add(other)
        db.session.flush()
        db.session.add(Membership(person_id=other.id, course_id=team.course_id, role="manager", lti_roles=[]))
        db.session.commit()
        reviews.sign_off(team.actor(other.id), request_id, "competent", "observed", [])
        db.session.commit()
    late = team.post(f"/team/review/{request_id}", {"csrf_token": csrf, "decision": "sign_off",
                                                     "rating": "trainer", "method": "observed"})
    assert late.status_code == 409
    assert "already been signed off by someone else" in late.text
    assert "no longer open" in late.text and "by Other Manager" in late.text
    with app.app_context():
        assert db.session.scalars(select(SignOff.rating_code)).all() == ["competent"]


def test_nobody_signs_off_their_own_evidence(team, app):
    (request_id,) = team.request(team.manager_id, [team.garb], title="My own garbing")
    page = team.get(f"/team/review/{request_id}")
    assert page.status_code == 200 and "This is your own evidence" in page.text
    assert 'name="decision"' not in page.text
    refused = team.post(f"/team/review/{request_id}", {"csrf_token": team.csrf(),
                                                        "decision": "sign_off", "rating": "competent",
                                                        "method": "observed"})
    assert refused.status_code == 403
    assert "Nobody can sign off their own evidence." in refused.text
    with app.app_context():
        assert db.session.scalars(select(SignOff)).all() == []
    # The queue never offers one's own requests.
    assert "My own garbing" not in team.get("/team/queue").text


def test_attachments_can_be_viewed_and_downloaded(team, app):
    (tech,) = team.technicians(1)
    (request_id,) = team.request(tech, [team.garb])
    with app.app_context():
        key = attachments.storage().save(io.BytesIO(PNG))
        ev_id = db.session.get(ReviewRequest, request_id).evidence_id
        att = Attachment(evidence_id=ev_id, filename="fingertip.png", content_type="image/png", size=len(PNG),
                         sha256="0" * 64, storage_key=key, uploaded_by_id=tech, description="Plate photo")
        db.session.add(att)
        db.session.commit()
        att_id = att.id
    page = team.get(f"/team/review/{request_id}").text
    assert "fingertip.png" in page and f"/team/attachments/{att_id}" in page and 'alt="Plate photo"' in page
    view = team.get(f"/team/attachments/{att_id}")
    assert view.status_code == 200 and view.content == PNG and view.headers["Content-Type"] == "image/png"
    assert "attachment" not in view.headers.get("Content-Disposition", "inline")
    download = team.get(f"/team/attachments/{att_id}", download=1)
    assert download.headers["Content-Disposition"].startswith("attachment") and "fingertip.png" in \
        download.headers["Content-Disposition"]


# --- Bulk sign-off ------------------------------------------------------------------------------------------

def test_bulk_sign_off_of_several_requests_for_one_competency(team, app):
    techs = team.technicians(3)
    ids = [team.request(t, [team.garb])[0] for t in techs]
    params = "&".join(f"request={i}" for i in ids)
    page = team.http.get(team.url("/team/bulk") + "&" + params)
    assert page.status_code == 200
    assert "Sign off 3 requests together" in page.text and "IV-GARB" in page.text
    csrf = form_fields(page.text)["csrf_token"]
    unconfirmed = team.post("/team/bulk", {"csrf_token": csrf, "request": ids, "rating": "competent",
                                           "method": "observed"})
    assert unconfirmed.status_code == 400 and "Confirm that you assessed each technician" in unconfirmed.text
    done = team.post("/team/bulk", {"csrf_token": csrf, "request": ids, "rating": "competent", "method": "observed",
                                    "checklist_seen": GARB_STEPS, "comment": "Annual check", "confirm": "yes"})
    assert done.status_code == 303 and "/team/bulk/done" in done.headers["Location"]
    result = team.http.get(team.base + done.headers["Location"])
    assert "3 of 3 review requests signed off." in result.text
    assert "3 sign-offs recorded" in result.text and result.text.count("Tech 00") == 3
    with app.app_context():
        rows = db.session.scalars(select(SignOff)).all()
        assert len(rows) == 3 and {r.comment for r in rows} == {"Annual check"}
        assert {r.review_request_id for r in rows} == set(ids)


def test_bulk_refuses_mixed_competencies_and_reports_each_failing_item(team, app):
    a, b, c = team.technicians(3)
    garb_a, garb_b = team.request(a, [team.garb])[0], team.request(b, [team.garb])[0]
    cart_c = team.request(c, [team.cart])[0]
    mixed = team.http.get(team.url("/team/bulk") + f"&request={garb_a}&request={cart_c}")
    assert "A bulk sign-off covers one competency" in mixed.text and 'name="rating"' not in mixed.text

    csrf = form_fields(team.http.get(team.url("/team/bulk") + f"&request={garb_a}&request={garb_b}").text)[
        "csrf_token"]
    team.sign(garb_b)  # someone signs one of them first
    refused = team.post("/team/bulk", {"csrf_token": csrf, "request": [garb_a, garb_b], "rating": "competent",
                                       "method": "observed", "confirm": "yes"})
    assert refused.status_code == 400
    assert "Nothing was signed off" in refused.text
    assert "Tech 001" in refused.text and "already been signed off by someone else" in refused.text
    with app.app_context():
        assert db.session.get(ReviewRequest, garb_a).status == "open"
        assert db.session.scalars(select(SignOff.review_request_id)).all() == [garb_b]
    assert team.get("/team/bulk").status_code == 200  # nothing chosen: back to the queue with a message
    assert "Choose at least one review request" in team.get("/team/bulk").text


# --- Team matrix --------------------------------------------------------------------------------------------

def _table(html: str) -> str:
    found = re.search(r"<table.*?</table>", html, re.S)
    assert found, "no table on the page"
    # Links carry the session token, re-issued with a new timestamp on every request.
    return re.sub(PARAM + r"=[^&\"]+", PARAM + "=TOKEN", found.group(0))


def test_matrix_shows_statuses_with_labels_paginates_and_filters(team, app):
    techs = team.technicians(55)
    team.technicians(1, prefix="Leaver", active=False)
    # Tech 000: expired garbing (signed 7 months ago, 6-month revalidation); Tech 001: achieved garbing expiring
    # in ~20 days; Tech 002: awaiting review.
    team.sign(team.request(techs[0], [team.garb], at=NOW - timedelta(days=215))[0], at=NOW - timedelta(days=215))
    team.sign(team.request(techs[1], [team.garb], at=NOW - timedelta(days=163))[0], at=NOW - timedelta(days=163))
    team.request(techs[2], [team.cart])

    first = team.get("/team/")
    assert first.status_code == 200
    html = first.text
    assert "Technicians 1–50 of 55" in html
    assert html.count('<th scope="row" class="name-col">') == 50
    assert "Leaver" not in html
    assert "Not launched yet" in html and "55 of these technicians have not opened the tool yet" in html
    assert "The course roster has not been read from the LMS yet" in html
    # A class and a code per cell; the legend spells each code out once.
    assert "<td class=exp>EXP<td" in html and "<td class=due>DUE<td" in html
    assert "<td class=ar>AR" in html
    assert "EXP = Expired" in html and "DUE = Due for revalidation" in html and "RA = Needs re-assessment" in html
    assert "position: sticky" in team.http.get(team.base + "/static/css/manager.css").text

    second = team.get("/team/", page=2).text
    assert "Technicians 51–55 of 55" in second and second.count('<th scope="row" class="name-col">') == 5
    following = re.search(r'href="([^"]*after=\d+[^"]*)" rel="next"', html)  # "Next" is a keyset link
    assert following and "page=" not in following.group(1)
    by_key = team.http.get(unescape(following.group(1)) if following.group(1).startswith("http")
                           else team.base + unescape(following.group(1))).text
    # Compare the table only: the page around it carries a session token that may be refreshed between requests.
    assert _table(by_key) == _table(second)

    expired = team.get("/team/", status="expired").text
    assert "Technicians 1–1 of 1" in expired and "Tech 000" in expired and "Tech 001" not in expired
    # One status: the table marks the matches (its expired cells), not each cell's markup (page size).
    assert 'data-hit="exp"' in expired and "<td class=exp>EXP" in expired and " hit" not in _table(expired)
    expiring = team.get("/team/", expiring=30).text
    assert "of 1" in expiring and "Tech 001" in expiring and "Tech 000" not in expiring
    assert '<td class="due hit">DUE✱<td' in expiring and "matches the filter" in expiring
    assert "Tech 001" not in team.get("/team/", expiring=30, department="central").text
    awaiting = team.get("/team/", status="awaiting_review").text
    assert "Tech 002" in awaiting and "of 1" in awaiting

    central = _table(team.get("/team/", department="central").text)  # the filter form lists every competency
    assert "CEN-CART" in central and "IV-GARB" not in central
    area = _table(team.get("/team/", area=team.iv_area).text)
    assert "IV-GARB" in area and "IV-ASEP" in area and "CEN-CART" not in area
    with_leavers = team.get("/team/", inactive=1).text  # "Leaver000" sorts first
    assert "Leaver 000" in with_leavers and "Left the course" in with_leavers

    bad = team.get("/team/", status="sleepy", expiring=45)
    assert bad.status_code == 400 and "Not a known status." in bad.text and "Choose 30, 60 or 90 days." in bad.text


def test_matrix_shows_the_roster_error(team, app):
    with app.app_context():
        course = db.session.get(Course, team.course_id)
        course.roster_error = "The LMS refused the roster request (401)."
        db.session.commit()
    html = team.get("/team/").text
    assert "The course roster could not be updated:" in html and "refused the roster request (401)" in html
    with app.app_context():
        course = db.session.get(Course, team.course_id)
        course.roster_error, course.roster_synced_at = None, NOW - timedelta(hours=3)
        db.session.commit()
    assert "Course roster last updated 3 hours ago" in team.get("/team/").text


def _statements(team, path, **params):
    team.get(path, **params)  # warm caches (framework, settings) the same way for both sizes
    with team.app.app_context(), count_queries() as n:
        resp = team.get(path, **params)
    assert resp.status_code == 200
    return n[0]


def test_matrix_and_queue_query_counts_do_not_grow_with_the_team(team):
    few = team.technicians(3)
    for t in few:
        team.sign(team.request(t, [team.garb])[0])
        team.request(t, [team.cart])
    small = {name: _statements(team, path, **params) for name, (path, params) in {
        "matrix": ("/team/", {}), "filtered": ("/team/", {"status": "achieved"}),
        "expiring": ("/team/", {"expiring": 90}), "queue": ("/team/queue", {})}.items()}
    many = team.technicians(40, prefix="More")
    for t in many:
        team.sign(team.request(t, [team.garb])[0])
        team.request(t, [team.cart, team.asep])
    large = {name: _statements(team, path, **params) for name, (path, params) in {
        "matrix": ("/team/", {}), "filtered": ("/team/", {"status": "achieved"}),
        "expiring": ("/team/", {"expiring": 90}), "queue": ("/team/queue", {})}.items()}
    assert large == small
    assert large["matrix"] <= 20


# --- Technician detail, revoke and correct -----------------------------------------------------------------

def test_technician_detail_revoke_and_correct(team, app):
    (tech,) = team.technicians(1)
    signed = team.sign(team.request(tech, [team.garb], title="Garbing observed")[0])
    (open_request,) = team.request(tech, [team.cart], title="Cart fill week")
    page = team.get(f"/team/technicians/{tech}")
    assert page.status_code == 200
    html = page.text
    assert "Tech 000" in html and "IV room" in html and "Central pharmacy" in html
    assert '<span class="status st-achieved">Achieved</span>' in html
    assert '<span class="status st-awaiting_review">Awaiting review</span>' in html
    assert f"/team/review/{open_request}" in html and "Garbing observed" in html and "Cart fill week" in html
    assert f"/team/sign-offs/{signed}" in html

    csrf = team.csrf()
    no_reason = team.post(f"/team/sign-offs/{signed}", {"csrf_token": csrf, "action": "revoke", "reason": ""})
    assert no_reason.status_code == 400 and "Give a reason for the revocation." in no_reason.text
    corrected = team.post(f"/team/sign-offs/{signed}", {
        "csrf_token": csrf, "action": "correct", "reason": "Wrong level recorded", "rating": "trainer",
        "method": "demonstrated", "comment": "", "checklist_seen": GARB_STEPS})
    assert corrected.status_code == 303
    assert "Sign-off corrected" in team.http.get(team.base + corrected.headers["Location"]).text
    with app.app_context():
        correction = db.session.scalars(select(SignOff).where(SignOff.corrects_id == signed)).one()
        assert (correction.rating_code, correction.method) == ("trainer", "demonstrated")
        correction_id = correction.id
    # The corrected original can no longer be changed; the correction can be revoked, with a reason.
    assert 'name="action" value="revoke"' not in team.get(f"/team/sign-offs/{signed}").text
    revoked = team.post(f"/team/sign-offs/{correction_id}", {"csrf_token": csrf, "action": "revoke",
                                                             "reason": "Assessed the wrong person"})
    assert revoked.status_code == 303
    with app.app_context():
        assert db.session.scalars(select(SignOffRevocation.reason)).all() == ["Assessed the wrong person"]
    assert '<span class="status st-not_started">Not started</span>' in team.get(f"/team/technicians/{tech}").text


# --- Preceptors ---------------------------------------------------------------------------------------------

def test_naming_listing_and_removing_preceptors(team, app):
    ana, _ben = team.technicians(2)
    page = team.get("/team/preceptors")
    assert page.status_code == 200 and "No preceptors are named" in page.text and "Tech 001" in page.text
    csrf = form_fields(page.text)["csrf_token"]
    missing = team.post("/team/preceptors", {"csrf_token": csrf, "person": str(ana)})
    assert missing.status_code == 400 and "Choose at least one competency." in missing.text
    named = team.post("/team/preceptors", {"csrf_token": csrf, "person": str(ana),
                                           "competency": [team.garb, team.cart]})
    assert named.status_code == 303
    listing = team.http.get(team.base + named.headers["Location"]).text
    assert "Tech 000 is now preceptor for 2 competencies." in listing
    assert "IV-GARB" in listing and "CEN-CART" in listing
    removed = team.post("/team/preceptors/remove", {"csrf_token": csrf, "person": str(ana),
                                                    "competency": str(team.garb)})
    assert removed.status_code == 303
    with app.app_context():
        active = db.session.scalars(select(Preceptor.competency_id).where(Preceptor.active.is_(True))).all()
        assert active == [team.cart]


# --- Access ------------------------------------------------------------------------------------------------

MANAGER_ROUTES = [
    ("GET", "/team/"), ("GET", "/team/queue"), ("GET", "/team/bulk?request={request}"), ("POST", "/team/bulk"),
    ("GET", "/team/bulk/done?s={sign_off}"), ("GET", "/team/review/{request}"), ("POST", "/team/review/{request}"),
    ("GET", "/team/attachments/{attachment}"), ("GET", "/team/technicians/{tech}"),
    ("GET", "/team/sign-offs/{sign_off}"), ("POST", "/team/sign-offs/{sign_off}"), ("GET", "/team/preceptors"),
    ("POST", "/team/preceptors"), ("POST", "/team/preceptors/remove"),
]


@pytest.mark.parametrize("role", ["student", "observer"])
def test_technicians_and_observers_get_a_readable_403_on_every_manager_page(team, app, platform, http, role):
    (tech,) = team.technicians(1)
    (request_id,) = team.request(tech, [team.garb])
    sign_off_id = team.sign(team.request(tech, [team.cart])[0])
    with app.app_context():
        key = attachments.storage().save(io.BytesIO(PNG))
        att = Attachment(evidence_id=db.session.get(ReviewRequest, request_id).evidence_id, filename="a.png",
                         content_type="image/png", size=len(PNG), sha256="1" * 64, storage_key=key,
                         uploaded_by_id=tech)
        db.session.add(att)
        db.session.commit()
        att_id = att.id
    token = launch(platform, http, team.base, role=role, sub="tech-launch", name="Tina Tech")
    home = http.get(f"{team.base}/app/?lt={token}").text
    assert "Review queue" not in home and "Team matrix" not in home
    with app.test_request_context(f"/app/?lt={token}"):
        csrf = web.csrf_token()  # a valid token for this technician: the refusal must come from the role
    for method, path in MANAGER_ROUTES:
        url = team.base + path.format(request=request_id, sign_off=sign_off_id, attachment=att_id, tech=tech)
        url += ("&" if "?" in url else "?") + f"lt={token}"
        resp = http.request(method, url, data={"csrf_token": csrf} if method == "POST" else None,
                            allow_redirects=False)
        assert resp.status_code == 403, (method, path, resp.status_code)
        assert "You do not have access to this page" in resp.text, path
        assert "for this course's managers" in unescape(resp.text), path
    with app.app_context():
        assert db.session.get(ReviewRequest, request_id).status == "open"


def test_manager_pages_without_a_session_ask_to_open_the_tool(team):
    resp = team.http.get(team.base + "/team/queue")
    assert resp.status_code == 401 and "open the tool" in resp.text.lower()
