"""The technician's pages over real HTTP, through a real LTI launch from the test platform: the dashboard, the
evidence forms (good and bad input for every kind), review requests, revising after a return, attachments, the
evidence list and who may open these pages."""
import html
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from lti_tool.extensions import db
from lti_tool.models import (
    Attachment,
    AuditEntry,
    Competency,
    Course,
    CourseFramework,
    Evidence,
    Membership,
    Person,
    ReviewRequest,
)
from lti_tool.services import evidence as evidence_service
from lti_tool.services import frameworks, reviews
from lti_tool.services.actors import Actor
from tests.support.competency_world import count_queries
from tests.support.platform import CANVAS_ROLES

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
GIF = b"GIF89a" + bytes(64)
TODAY = date.today()


def days_ago(n: int) -> str:
    return (TODAY - timedelta(days=n)).isoformat()


class Portal:
    """One launched person: GET and POST pages of the tool with their session token."""

    def __init__(self, app, live_server, http, token):
        self.app, self.base, self.http, self.token = app, live_server, http, token

    def url(self, path):
        return self.base + path

    def get(self, path, **params):
        return self.http.get(self.url(path), params={"lt": self.token, **params}, allow_redirects=False)

    def csrf(self, path="/me/evidence/new/cross_training"):
        page = self.get(path)
        return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)

    def post(self, path, data=None, files=None, csrf=True):
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", self.csrf())
        return self.http.post(self.url(path), params={"lt": self.token}, data=data, files=files,
                              allow_redirects=False)

    def follow(self, resp):
        assert resp.status_code == 303, resp.text[:2000]
        return self.http.get(self.url(resp.headers["Location"]) if resp.headers["Location"].startswith("/")
                             else resp.headers["Location"], allow_redirects=False)


def launch(app, live_server, platform, http, sub, roles=None):
    resp, _, _ = platform.launch(http, live_server, sub=sub, roles=roles or CANVAS_ROLES["student"])
    assert resp.status_code == 303, resp.text
    token = parse_qs(urlsplit(resp.headers["Location"]).query)["lt"][0]
    return Portal(app, live_server, http, token)


@pytest.fixture
def tech(app, live_server, platform, registered, http):
    """A technician launched into a course that uses the shipped Pharmacy Technician framework."""
    portal = launch(app, live_server, platform, http, "tech-1")
    with app.app_context():
        framework = frameworks.ensure_default_framework()
        course = db.session.scalars(select(Course)).one()
        db.session.add(CourseFramework(course_id=course.id, framework_id=framework.id))
        db.session.commit()
    return portal


@pytest.fixture
def manager(app, live_server, platform, http, tech):
    return launch(app, live_server, platform, http, "manager-1", CANVAS_ROLES["teacher"])


def comp(app, code) -> int:
    with app.app_context():
        return db.session.scalars(select(Competency.id).where(Competency.code == code)).one()


def actor_for(sub) -> Actor:
    person = db.session.scalars(select(Person).where(Person.sub == sub)).one()
    membership = db.session.scalars(select(Membership).where(Membership.person_id == person.id)).one()
    return Actor(person=person, course=membership.course, membership=membership)


def counts(app) -> dict:
    with app.app_context():
        return {model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
                for model in (Evidence, AuditEntry, ReviewRequest, Attachment)}


def good_form(app, kind) -> dict:
    """A complete, valid form of each kind, as the browser posts it."""
    if kind == "cross_training":
        return {"title": "IV room garbing", "department": "iv_room", "skills": "Garbing order\nHand hygiene",
                "trainer_name": "Dana Ruiz", "hours": "7.5", "start_date": days_ago(10), "end_date": days_ago(9),
                "competency_ids": [str(comp(app, "USP797-02"))],
                "checklist_steps": [], "notes": "Two shifts with Dana."}
    if kind == "responsibility":
        return {"title": "Inventory lead", "role": "inventory_lead", "scope": "Weekly orders and returns.",
                "start_date": days_ago(200), "end_date": "", "supervisor": "Pat Kim",
                "competency_ids": [str(comp(app, "A3-05"))]}
    if kind == "qi_project":
        return {"title": "Fewer missing doses", "problem": "Missing doses on 3 West.", "aim": "Halve them by June.",
                "measures": "Missing-dose calls per week", "results": "Down by 40%.", "role": "Led the audit.",
                "team": "Pat Kim\nLee Wong", "cycle_count": "2",
                "pdsa-0-plan": "Audit", "pdsa-0-do": "Audited 2 weeks", "pdsa-0-study": "Cart timing",
                "pdsa-0-act": "Moved cart fill", "pdsa-0-date": days_ago(60),
                "competency_ids": [str(comp(app, "A1-07"))]}
    if kind == "certification":
        return {"title": "My CPhT", "credential": "ptcb_cpht", "number": "123456", "issued_date": days_ago(400),
                "expiry_date": (TODAY + timedelta(days=330)).isoformat(), "state": "",
                "competency_ids": [str(comp(app, "CRED-CPHT"))]}
    return {"title": "Pharmacy law update", "uan": "0197-0000-23-001-L03-T", "hours": "1.5",
            "completion_date": days_ago(5), "provider_name": "State board", "competency_ids": [str(comp(app, "A2-01"))]}


KINDS = ["cross_training", "responsibility", "qi_project", "certification", "continuing_education"]


# --- Dashboard ---------------------------------------------------------------------------------------------

def test_dashboard_shows_where_the_technician_stands(app, tech, manager):
    now = datetime.now(UTC)
    with app.app_context():
        me, boss = actor_for("tech-1"), actor_for("manager-1")

        def signed(code, months_ago, kind="cross_training"):
            cid = db.session.scalars(select(Competency.id).where(Competency.code == code)).one()
            form = {"cross_training": {"title": f"{code} training", "department": "iv_room", "skills": ["Garbing"],
                                       "trainer_name": "Dana", "hours": 4, "start_date": days_ago(250),
                                       "end_date": days_ago(249)}}[kind]
            ev = evidence_service.create_draft(me, kind, {**form, "competency_ids": [cid]})
            at = now - timedelta(days=months_ago * 30)
            request = reviews.request_review(me, ev.id, now=at)[0]
            reviews.sign_off(boss, request.id, "competent", "observed", [], now=at)

        signed("USP797-02", 5.5)  # 6-month revalidation: due within the 30-day warning
        signed("USP797-03", 4)  # 3-month revalidation: expired
        signed("XT-IV-01", 1)  # no revalidation: achieved
        returned = evidence_service.create_draft(me, "cross_training", {
            "title": "Cart fill", "department": "central", "skills": ["Cart fill"], "trainer_name": "Sam",
            "hours": 3, "start_date": days_ago(3), "end_date": days_ago(3),
            "competency_ids": [db.session.scalars(select(Competency.id).where(Competency.code == "XT-CEN-01")).one()]})
        request = reviews.request_review(me, returned.id)[0]
        reviews.return_for_revision(boss, request.id, "Add the cart number and the ward.")
        cert = evidence_service.create_draft(me, "certification", {
            "title": "CPhT", "credential": "ptcb_cpht", "number": "9", "issued_date": days_ago(500),
            "expiry_date": (TODAY + timedelta(days=100)).isoformat(),
            "competency_ids": [db.session.scalars(select(Competency.id).where(Competency.code == "CRED-CPHT")).one()]})
        # The verified certification sets the CE cycle.
        reviews.sign_off(boss, reviews.request_review(me, cert.id)[0].id, "competent", "verified_document")
        for uan, hours, verify in (("0197-0000-23-001-L03-T", 1.5, True), ("0197-0000-23-002-H01-T", 6, False),
                                   ("0197-0000-23-003-H05-T", 2, None)):
            item = evidence_service.create_draft(me, "continuing_education", {
                "title": f"CE {uan}", "uan": uan, "hours": hours, "completion_date": days_ago(20),
                "provider_name": "ACPE provider",
                "competency_ids": [db.session.scalars(select(Competency.id).where(Competency.code == "A2-01")).one()]})
            if verify is not None:  # None: left a draft, which counts nowhere
                request = reviews.request_review(me, item.id)[0]
                if verify:
                    reviews.sign_off(boss, request.id, "competent", "verified_document")
        db.session.commit()

    page = tech.get("/me/")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "<h1>My portfolio</h1>" in text
    # Counts per status, each with its words.
    for label in ("Not started", "In progress", "Awaiting review", "Achieved", "Due for revalidation", "Expired"):
        assert label in text
    tile = re.search(r'tile-achieved" href="[^"]*status=achieved[^"]*#areas">\s*<span class="tile-count">(\d+)<',
                     text)
    assert tile and tile.group(1) == "3"  # XT-IV-01, CRED-CPHT (the certification), A2-01 (the law CE)
    # What needs attention: due with its date, expired, returned with the manager's words.
    due = re.search(r"<h3>Due for revalidation</h3>(.*?)</ul>", text, re.S).group(1)
    assert "USP797-02" in due and "expires on" in due
    expired = re.search(r"<h3>Expired</h3>(.*?)</ul>", text, re.S).group(1)
    assert "USP797-03" in expired and "expired on" in expired
    returned_block = re.search(r"<h3>Returned for revision</h3>(.*?)</ul>", text, re.S).group(1)
    assert "Cart fill" in returned_block and "Add the cart number and the ward." in returned_block
    assert "Tess Nguyen" in returned_block  # the manager who returned it (the platform's name)
    # CE against CPhT: 7.5 hours recorded (sent for review or signed off), 1.5 verified of 20; law met (verified),
    # patient safety not (its 2 hours are a draft); days left from the verified certification's expiry.
    assert "PTCB CPhT recertification" in text
    assert "1.5 hours verified of 20 hours; 7.5 hours recorded" in text
    assert re.search(r'data-ce="recorded">7.5 hours<.*?data-ce="verified">1.5 hours<', text, re.S)
    assert re.search(r"Pharmacy law \(ACPE topic 03\)</span>.*?1.5 hours verified of 1 hour.*?Met", text, re.S)
    assert re.search(r"Patient safety \(ACPE topic 05\)</span>.*?0 hours verified of 1 hour.*?Not yet", text, re.S)
    assert "2 hours more in drafts or returned items" in text
    assert "100 days left" in text
    # Areas and departments, with text equivalents of the bars.
    assert '<span class="area-name">USP compounding competency assessments</span>' in text
    assert "A1 Personal and interpersonal knowledge and skills" in text
    assert re.search(r"IV room / sterile compounding</h3>.*?held", text, re.S)
    assert "Career pathways" in text and "CPhT-Adv" in text
    # Every competency is listed, inside closed areas whose summaries count them by status.
    areas = re.findall(r'<details class="area" id="area-\d+"( open)?>', text)
    assert areas and not any(areas)
    assert text.count('<li id="competency-') == int(re.search(r"(\d+) competencies in this course", text).group(1))
    usp = re.search(r'<span class="area-name">USP compounding competency assessments</span>(.*?)</summary>', text,
                    re.S).group(1)
    assert "Due for revalidation: 1" in usp and "Expired: 1" in usp

    # A tile lists its status only: the areas that have some, open; the counts stay; "All" undoes it.
    expired_page = html.unescape(tech.get("/me/", status="expired").text)
    listed = re.findall(r'<li id="competency-\d+">\s*<span class="competency-name"><span class="code">([^<]+)',
                        expired_page)
    assert listed == ["USP797-03"]
    assert re.findall(r'<details class="area" id="area-\d+"( open)?>', expired_page) == [" open"]
    assert 'tile-expired" href="' in expired_page and re.search(r'status=expired[^"]*#areas" aria-current="true"',
                                                                expired_page)
    assert re.search(r'tile-achieved" href="[^"]*">\s*<span class="tile-count">3</span>', expired_page)
    assert "Showing the 1 competencies “Expired”." in expired_page and "Show all competencies" in expired_page
    none_page = html.unescape(tech.get("/me/", status="needs_reassessment").text)
    assert "None of your competencies is “Needs re-assessment”." in none_page
    bad = tech.get("/me/", status="sleepy")
    assert bad.status_code == 400 and "Not a known status: choose one of the tiles" in html.unescape(bad.text)


def test_links_built_around_a_marker_are_app_urls(app):
    """The dashboard's "Record evidence" links (web.app_urls_by_id) are the URLs app_url would build, session
    token and all; a marker that would appear twice falls back to app_url for each link."""
    from flask import g

    from lti_tool.web import app_url, app_urls_by_id

    with app.test_request_context("/"):
        g.session_token = "eyJwIjo1fQ.aw4zww.rV--abY0x_TZ"
        link = app_urls_by_id("technician.record", "competency", kind="cross_training")
        for ident in (1, 42, 2_000_000_000):
            assert link(ident) == app_url("technician.record", kind="cross_training", competency=ident)
        assert link(7) == "/me/evidence/new/cross_training?competency=7&lt=eyJwIjo1fQ.aw4zww.rV--abY0x_TZ"
        twice = app_urls_by_id("technician.new_evidence", "competency", note="~id~")
        assert twice(7) == app_url("technician.new_evidence", note="~id~", competency=7)
        assert "competency=7" in twice(7) and "note=~id~" in twice(7)


def test_dashboard_without_a_framework_says_so(app, live_server, platform, registered, http):
    portal = launch(app, live_server, platform, http, "tech-lonely")
    page = portal.get("/me/")
    assert page.status_code == 200
    assert "no competency framework yet" in page.text
    assert "Nothing needs your attention right now." in page.text


# --- Recording: good and bad input for every kind -----------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_saves_a_draft(app, tech, kind):
    form = good_form(app, kind)
    resp = tech.post(f"/me/evidence/new/{kind}", form)
    assert resp.status_code == 303, resp.text[:3000]
    detail = tech.follow(resp)
    assert detail.status_code == 200
    assert "was saved as a draft" in html.unescape(detail.text)
    assert form["title"] in html.unescape(detail.text)
    with app.app_context():
        ev = db.session.scalars(select(Evidence)).one()
        assert (ev.kind, ev.status, ev.title) == (kind, "draft", form["title"])
        assert [link.competency_id for link in ev.competency_links] == [int(form["competency_ids"][0])]
        actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.entity_type != "frameworks")).all()
        assert actions == ["evidence.create"]
        if kind == "cross_training":
            assert ev.data["hours"] == 7.5 and ev.data["skills"] == ["Garbing order", "Hand hygiene"]
        if kind == "qi_project":
            assert len(ev.data["pdsa_cycles"]) == 1 and ev.data["team"] == ["Pat Kim", "Lee Wong"]
        if kind == "certification":
            assert ev.data["issuer"].startswith("Pharmacy Technician Certification Board")
        if kind == "continuing_education":
            assert ev.data["uan_parts"]["topic"] == "03"


BAD = {
    "cross_training": ({"hours": "0.3", "title": "", "competency_ids": []},
                       {"f-hours": "Hours go in steps of 0.25", "f-title": "This field is required.",
                        "f-competencies": "Link at least one competency."}),
    "responsibility": ({"role": "other", "end_date": "2000-01-01"},
                       {"f-role-other": "Describe the role when you choose 'other'.",
                        "f-end-date": "The end date is before the start date."}),
    "qi_project": ({"pdsa-0-plan": "", "pdsa-0-do": "", "pdsa-0-study": "", "pdsa-0-act": "", "pdsa-0-date": "",
                    "measures": "  "},
                   {"f-pdsa": "This field is required.", "f-measures": "This field is required."}),
    "certification": ({"credential": "state_registration", "expiry_date": days_ago(800)},
                      {"f-issuing-body": "Name the body that issued this credential.",
                       "f-state": "Give the state that issued the registration or license.",
                       "f-expiry-date": "The expiration date must be after the issue date."}),
    "continuing_education": ({"uan": "0197-0000-17-001-B05-T", "hours": "150"},
                             {"f-uan": "must be L (live) or H (home study)", "f-hours": "At most 100 hours."}),
}


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_refuses_bad_input_and_writes_nothing(app, tech, kind):
    form = {**good_form(app, kind), **BAD[kind][0]}
    form["title"] = form["title"] if kind == "cross_training" else "Kept <as typed>"
    before = counts(app)
    resp = tech.post(f"/me/evidence/new/{kind}", form)
    assert resp.status_code == 400
    text = html.unescape(resp.text)
    summary = re.search(r'<div class="error-summary" role="alert".*?</div>', text, re.S).group(0)
    assert "There is a problem" in summary
    for field_id, message in BAD[kind][1].items():
        assert f'href="#{field_id}"' in summary, field_id
        next_to_field = re.search(rf'id="{field_id}-error">(.*?)</p>', text, re.S)
        assert next_to_field and message in next_to_field.group(1), (field_id, message)
        assert re.search(rf'id="{field_id}"', text), f"the summary links to a missing element {field_id}"
    if kind != "cross_training":
        assert 'value="Kept &lt;as typed&gt;"' in resp.text  # what was typed is kept, and escaped
    assert counts(app) == before


def test_competency_of_the_wrong_kind_is_refused(app, tech):
    form = {**good_form(app, "continuing_education"), "competency_ids": [str(comp(app, "XT-IV-01"))]}
    resp = tech.post("/me/evidence/new/continuing_education", form)
    assert resp.status_code == 400
    assert "does not accept continuing education evidence" in html.unescape(resp.text)
    assert counts(app)["evidence"] == 0


def test_form_lists_only_competencies_accepting_the_kind_grouped_by_area(app, tech):
    page = html.unescape(tech.get("/me/evidence/new/continuing_education").text)
    assert "<h1>Record continuing education (CE)</h1>" in page
    assert "<title>Record continuing education (CE) · " in page
    assert "A2-01</strong> Maintain competency through continuing education" in page
    assert "XT-IV-01" not in page
    assert "Foundational professional knowledge and skills" in page  # the group heading
    cross = html.unescape(tech.get("/me/evidence/new/cross_training").text)
    assert "Cross-training by department › IV room / sterile compounding" in cross
    groups = re.findall(r"<summary>([^<]+?) <span", cross)
    assert groups[:3] == ["Personal and interpersonal knowledge and skills",
                          "Foundational professional knowledge and skills",
                          "Processing and handling of medications and medication orders"], "framework order"
    assert 'step="0.25"' in cross and 'type="date"' in cross and 'enctype="multipart/form-data"' in cross
    assert "PDF, PNG, JPEG, WebP, HEIC files, up to 10 MB each" in cross


def test_cross_training_with_checklist_saved_and_sent_for_review_in_one_go(app, tech):
    garb = comp(app, "USP797-02")
    with app.app_context():
        steps = db.session.get(Competency, garb).checklist[:2]
    form = {**good_form(app, "cross_training"), "checklist_steps": steps, "action": "submit"}
    page = html.unescape(tech.get("/me/evidence/new/cross_training", competency=garb).text)
    assert f'value="{garb}" id="f-competencies" checked' in page or re.search(
        rf'value="{garb}" id="[^"]+" checked', page), "the competency from the link is preselected"
    assert steps[0] in page
    resp = tech.post("/me/evidence/new/cross_training", form)
    detail = tech.follow(resp)
    assert "was saved and sent for review" in html.unescape(detail.text)
    with app.app_context():
        ev = db.session.scalars(select(Evidence)).one()
        assert ev.status == "submitted" and ev.data["checklist_steps"] == steps
        request = db.session.scalars(select(ReviewRequest)).one()
        assert (request.status, request.competency_id) == ("open", garb)
    # One status, one name: the item and its request both read "Awaiting review".
    assert "Waiting for review" not in detail.text
    assert detail.text.count("Awaiting review") >= 2


def test_checklist_step_of_another_competency_is_refused(app, tech):
    form = {**good_form(app, "cross_training"), "checklist_steps": ["Juggle three vials"]}
    resp = tech.post("/me/evidence/new/cross_training", form)
    assert resp.status_code == 400
    assert "Not a step of the linked competencies" in html.unescape(resp.text)
    assert counts(app)["evidence"] == 0


def test_add_another_pdsa_cycle_saves_nothing(app, tech):
    form = {**good_form(app, "qi_project"), "action": "add_cycle"}
    resp = tech.post("/me/evidence/new/qi_project", form)
    assert resp.status_code == 200
    assert 'id="f-pdsa-2-plan"' in resp.text and 'value="3"' in resp.text
    assert "Audited 2 weeks" in resp.text
    assert counts(app)["evidence"] == 0


def test_post_without_csrf_token_is_refused(app, tech):
    resp = tech.post("/me/evidence/new/cross_training", good_form(app, "cross_training"), csrf=False)
    assert resp.status_code == 400
    assert "did not come from this tool" in resp.text
    assert counts(app)["evidence"] == 0


# --- Review requests, return and revision -------------------------------------------------------------------

def _draft(app, tech, kind="cross_training", **extra):
    resp = tech.post(f"/me/evidence/new/{kind}", {**good_form(app, kind), **extra})
    assert resp.status_code == 303, resp.text[:2000]
    return int(re.search(r"/me/evidence/(\d+)", resp.headers["Location"]).group(1))


def test_request_review_then_withdraw_the_request(app, tech):
    ev_id = _draft(app, tech)
    detail = tech.get(f"/me/evidence/{ev_id}")
    assert "Request review" in detail.text and "Not sent for review yet." in detail.text
    done = tech.follow(tech.post(f"/me/evidence/{ev_id}/request-review"))
    assert "Sent for review" in done.text and "Awaiting review" in done.text
    assert "cannot be changed" in done.text
    with app.app_context():
        request = db.session.scalars(select(ReviewRequest)).one()
    # Sending again is refused in words, and writes nothing.
    again = tech.follow(tech.post(f"/me/evidence/{ev_id}/request-review"))
    assert "only a draft or returned item can be sent for review" in html.unescape(again.text)
    assert counts(app)["review_requests"] == 1
    withdrawn = tech.follow(tech.post(f"/me/requests/{request.id}/withdraw", {"evidence_id": str(ev_id)}))
    assert "The review request was withdrawn" in withdrawn.text
    with app.app_context():
        assert db.session.get(ReviewRequest, request.id).status == "withdrawn"
        assert db.session.get(Evidence, ev_id).status == "draft"
    history = html.unescape(withdrawn.text)
    assert "You recorded this evidence as a draft." in history
    assert "You asked for review of USP797-02" in history
    assert "You withdrew the review request for USP797-02" in history


def test_revise_after_return(app, tech, manager):
    ev_id = _draft(app, tech, action="submit")
    with app.app_context():
        request = db.session.scalars(select(ReviewRequest)).one()
        reviews.return_for_revision(actor_for("manager-1"), request.id, "Say which hood you used.")
        db.session.commit()

    dashboard = html.unescape(tech.get("/me/").text)
    assert "Say which hood you used." in dashboard
    assert f"/me/evidence/{ev_id}/edit" in dashboard
    detail = html.unescape(tech.get(f"/me/evidence/{ev_id}").text)
    assert "Returned for revision" in detail and "Say which hood you used." in detail
    assert re.search(r"Tess Nguyen \(Manager\) returned the request for USP797-02 .*? with comments: “Say which hood",
                     detail)

    edit = tech.get(f"/me/evidence/{ev_id}/edit")
    assert edit.status_code == 200 and 'value="7.5"' in edit.text and 'name="revision" value="1"' in edit.text
    form = {**good_form(app, "cross_training"), "notes": "Hood 2 in the cleanroom.", "revision": "1",
            "action": "submit"}
    resp = tech.post(f"/me/evidence/{ev_id}/edit", form)
    page = tech.follow(resp)
    assert "was saved and sent for review" in html.unescape(page.text)
    with app.app_context():
        ev = db.session.get(Evidence, ev_id)
        assert (ev.status, ev.revision, ev.data["notes"]) == ("submitted", 2, "Hood 2 in the cleanroom.")
        statuses = db.session.scalars(select(ReviewRequest.status).order_by(ReviewRequest.id)).all()
        assert statuses == ["returned", "open"]
    assert "You edited it (revision 2)." in html.unescape(page.text)


def test_edit_with_a_stale_revision_is_refused(app, tech):
    ev_id = _draft(app, tech)
    form = {**good_form(app, "cross_training"), "notes": "First", "revision": "1"}
    assert tech.post(f"/me/evidence/{ev_id}/edit", form).status_code == 303
    stale = tech.post(f"/me/evidence/{ev_id}/edit", {**form, "notes": "Second"})
    assert stale.status_code == 400
    assert "changed since you opened it" in stale.text
    with app.app_context():
        assert db.session.get(Evidence, ev_id).data["notes"] == "First"


def test_withdraw_evidence(app, tech):
    ev_id = _draft(app, tech)
    page = tech.follow(tech.post(f"/me/evidence/{ev_id}/withdraw", {"reason": "Recorded twice"}))
    assert "The evidence was withdrawn" in page.text
    assert "You withdrew it. Reason: Recorded twice" in page.text
    with app.app_context():
        assert db.session.get(Evidence, ev_id).status == "withdrawn"
    assert "Edit" not in re.search(r'id="actions-title".*?</section>', page.text, re.S).group(0)


# --- Attachments --------------------------------------------------------------------------------------------

def test_attachment_upload_and_download(app, tech):
    resp = tech.post("/me/evidence/new/certification", good_form(app, "certification"),
                     files={"files": ("cpht card.png", PNG, "image/png")})
    detail = tech.follow(resp)
    link = re.search(r'href="(/me/evidence/\d+/attachments/\d+)[^"]*"', detail.text).group(1)
    assert "cpht card.png" in detail.text and "(PNG, 1 KB)" in detail.text
    got = tech.get(link)
    assert got.status_code == 200
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["Content-Disposition"].startswith("attachment;")
    assert "cpht" in got.headers["Content-Disposition"]
    assert got.content == PNG
    # Removing it through the edit form.
    ev_id = int(re.search(r"/me/evidence/(\d+)/", link).group(1))
    with app.app_context():
        attachment_id = db.session.scalars(select(Attachment.id)).one()
        assert db.session.get(Evidence, ev_id).revision == 1, "one save, fields and file together: one revision"
    assert "(revision 1)" in detail.text
    form = {**good_form(app, "certification"), "revision": "1", "remove_attachment": str(attachment_id)}
    page = tech.follow(tech.post(f"/me/evidence/{ev_id}/edit", form))
    assert "No attachments." in page.text and "You removed the attachment “cpht card.png”." in page.text
    assert counts(app)["attachments"] == 0
    with app.app_context():
        assert db.session.get(Evidence, ev_id).revision == 2


def test_attachment_of_a_refused_type_writes_nothing(app, tech):
    folder = Path(app.config["ATTACHMENT_DIR"])
    before = counts(app)
    files_before = sorted(folder.rglob("*")) if folder.exists() else []
    resp = tech.post("/me/evidence/new/certification", good_form(app, "certification"),
                     files={"files": ("card.gif", GIF, "image/gif")})
    assert resp.status_code == 400
    text = html.unescape(resp.text)
    assert 'href="#f-files"' in text
    assert re.search(r'id="f-files-error">.*card.gif: Only PDF, PNG, JPEG, WebP, HEIC files can be attached',
                     text, re.S)
    assert "Choose them again" in text
    assert counts(app) == before and before["evidence"] == 0
    files_after = sorted(folder.rglob("*")) if folder.exists() else []
    assert [p for p in files_after if p.is_file()] == [p for p in files_before if p.is_file()]


# --- The list -----------------------------------------------------------------------------------------------

def test_list_filters_by_kind_and_status_with_flat_queries(app, tech):
    first = _draft(app, tech, "continuing_education")
    _draft(app, tech, "responsibility")
    tech.post(f"/me/evidence/{first}/request-review")
    listing = html.unescape(tech.get("/me/evidence").text)
    assert "2 items." in listing and "Pharmacy law update" in listing and "Inventory lead" in listing
    only_ce = html.unescape(tech.get("/me/evidence", kind="continuing_education").text)
    assert "Pharmacy law update" in only_ce and "Inventory lead" not in only_ce
    drafts = html.unescape(tech.get("/me/evidence", status="draft").text)
    assert "Inventory lead" in drafts and "Pharmacy law update" not in drafts
    assert 'name="lt" value="' in drafts  # the GET filter form keeps the session

    def queries():
        with app.app_context(), count_queries() as n:
            assert tech.get("/me/evidence").status_code == 200
        return n[0]

    few = queries()
    for n in range(4):
        _draft(app, tech, "responsibility", title=f"Role {n}")
    assert queries() == few


# --- Who may open these pages -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/me/", "/me/evidence", "/me/evidence/new", "/me/evidence/new/cross_training"])
def test_manager_gets_a_readable_403(app, tech, manager, path):
    resp = manager.get(path)
    assert resp.status_code == 403
    assert "You do not have access to this page" in resp.text
    assert "technician&#39;s own portfolio" in resp.text or "technician's own portfolio" in resp.text


def test_observer_and_no_session_are_refused(app, live_server, platform, registered, http):
    observer = launch(app, live_server, platform, http, "observer-1", CANVAS_ROLES["observer"])
    assert observer.get("/me/").status_code == 403
    refused = observer.http.post(observer.url("/me/evidence/new/cross_training"), params={"lt": observer.token},
                                 data={"title": "x"})
    assert refused.status_code in (400, 403)
    assert http.get(live_server + "/me/").status_code == 401


def test_another_technicians_evidence_is_not_found(app, live_server, platform, http, tech):
    ev_id = _draft(app, tech, "certification")
    tech.post(f"/me/evidence/{ev_id}/edit", {**good_form(app, "certification"), "revision": "1"},
              files={"files": ("card.png", PNG, "image/png")})
    with app.app_context():
        attachment_id = db.session.scalars(select(Attachment.id)).one()
    other = launch(app, live_server, platform, http, "tech-2")
    assert other.get(f"/me/evidence/{ev_id}").status_code == 404
    assert other.get(f"/me/evidence/{ev_id}/attachments/{attachment_id}").status_code == 404
    assert other.post(f"/me/evidence/{ev_id}/withdraw", {"csrf_token": other.csrf()}).status_code == 404
    with app.app_context():
        assert db.session.get(Evidence, ev_id).status == "draft"



def test_dashboard_and_detail_queries_do_not_grow_with_the_record(app, tech, manager):
    def queries(path):
        with app.app_context(), count_queries() as n:
            assert tech.get(path).status_code == 200
        return n[0]

    def add_returned(start, n):
        for i in range(start, start + n):
            ev_id = _draft(app, tech, title=f"Garbing {i}", action="submit")
            with app.app_context():
                request = db.session.scalars(select(ReviewRequest).where(ReviewRequest.evidence_id == ev_id)).one()
                reviews.return_for_revision(actor_for("manager-1"), request.id, f"Fix {i}")
                db.session.commit()
            _draft(app, tech, "continuing_education", uan=f"0197-0000-23-{100 + i}-L05-T")
        return ev_id

    last = add_returned(0, 1)
    few = queries("/me/"), queries(f"/me/evidence/{last}")
    last = add_returned(1, 4)
    page = html.unescape(tech.get("/me/").text)
    assert all(f"Fix {i}" in page for i in range(5))
    assert (queries("/me/"), queries(f"/me/evidence/{last}")) == few


# --- Recording on a phone: fewer steps, same record ----------------------------------------------------------

def test_a_competency_link_opens_only_the_kinds_it_accepts(app, tech):
    """A competency that accepts one kind opens its form at once; one that accepts several offers only those;
    an id that is not a competency of this course changes nothing."""
    only_cross = tech.get("/me/evidence/new", competency=comp(app, "XT-IV-01"))
    assert only_cross.status_code == 303
    assert only_cross.headers["Location"].startswith("/me/evidence/new/cross_training?")
    form = html.unescape(tech.follow(only_cross).text)
    assert 'value="iv_room" selected' in form, "the competency's one department is chosen"
    assert 'value="Aseptic technique in the primary engineering control"' in form, "its title proposed"

    several = html.unescape(tech.get("/me/evidence/new", competency=comp(app, "A1-01")).text)
    assert "For <strong>A1-01</strong> Demonstrate ethical conduct" in several
    assert "/me/evidence/new/responsibility" in several and "/me/evidence/new/certification" not in several

    unknown = tech.get("/me/evidence/new", competency=999999)
    assert unknown.status_code == 200 and "/me/evidence/new/certification" in unknown.text
    blank = html.unescape(tech.get("/me/evidence/new/cross_training", competency=999999).text)
    assert 'name="competency_ids" value="999999"' not in blank and 'id="f-title" name="title" value=""' in blank


def test_cross_training_on_one_day_needs_no_end_date(app, tech):
    """Without the page's script the end date may be left empty: it is the start date."""
    form = {**good_form(app, "cross_training"), "end_date": ""}
    tech.follow(tech.post("/me/evidence/new/cross_training", form))
    with app.app_context():
        ev = db.session.scalars(select(Evidence)).one()
        assert ev.data["end_date"] == ev.data["start_date"] == days_ago(10)


def test_one_edit_with_files_is_one_revision(app, tech):
    tech.follow(tech.post("/me/evidence/new/certification", good_form(app, "certification"),
                          files=[("files", ("front.png", PNG, "image/png")),
                                 ("files", ("back.png", PNG + b"b", "image/png"))]))
    with app.app_context():
        ev = db.session.scalars(select(Evidence)).one()
        assert (ev.revision, len(ev.attachments)) == (1, 2)
        first = ev.attachments[0].id
    form = {**good_form(app, "certification"), "title": "My CPhT card", "revision": "1",
            "remove_attachment": str(first)}
    tech.follow(tech.post(f"/me/evidence/{ev.id}/edit", form, files={"files": ("third.png", PNG + b"c", "image/png")}))
    with app.app_context():
        ev = db.session.get(Evidence, ev.id)
        assert (ev.title, ev.revision, sorted(a.filename for a in ev.attachments)) == (
            "My CPhT card", 2, ["back.png", "third.png"])
    # A save that only adds a file is a new revision too.
    tech.follow(tech.post(f"/me/evidence/{ev.id}/edit", {**form, "revision": "2", "remove_attachment": ""},
                          files={"files": ("fourth.png", PNG + b"d", "image/png")}))
    with app.app_context():
        assert db.session.get(Evidence, ev.id).revision == 3
