"""Deep linking round trip: an instructor's LtiDeepLinkingRequest, the picker, the signed response, and a launch
of the placed link that lands on its target with its gradebook column."""
import json
import re

import jwt
import requests
from jwcrypto.jwk import JWK
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.models import Competency, Course, CourseFramework, Framework, ResourceLink
from tests.support.platform import CANVAS_ROLES, CLAIM

DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
SCALE = [{"code": "not_yet", "label": "Not yet competent", "proficient": False},
         {"code": "supervised", "label": "Competent with supervision", "proficient": False},
         {"code": "competent", "label": "Competent", "proficient": True},
         {"code": "trainer", "label": "Can train others", "proficient": True}]


def _deep_link_request(platform, multiple=True, accept=("ltiResourceLink",)):
    def claims(body):
        body[CLAIM + "message_type"] = "LtiDeepLinkingRequest"
        body.pop(CLAIM + "resource_link", None)
        body[DL + "deep_linking_settings"] = {
            "deep_link_return_url": platform.base + "/deep-link-return", "accept_types": list(accept),
            "accept_presentation_document_targets": ["iframe", "window"], "accept_multiple": multiple,
            "accept_lineitem": True, "data": "opaque-platform-data", "title": "Add content"}
        return body
    return claims


def _framework(app):
    with app.app_context():
        fw = Framework(code="PT", name="Pharmacy Technician", version="1", scale=SCALE)
        db.session.add(fw)
        db.session.flush()
        area = Competency(framework_id=fw.id, code="XT-IV", title="IV room", position=0)
        db.session.add(area)
        db.session.flush()
        leaf = Competency(framework_id=fw.id, parent_id=area.id, code="XT-IV-01", title="Garbing and hand hygiene",
                          departments=["iv_room"], position=1)
        db.session.add(leaf)
        db.session.commit()
        return leaf.id


def _form_fields(html):
    return dict(re.findall(r'name="([^"]+)" value="([^"]*)"', html))


def test_round_trip_places_a_graded_competency_link(app, live_server, platform, registered, http):
    competency_id = _framework(app)
    resp, _, _ = platform.launch(http, live_server, roles=CANVAS_ROLES["teacher"], sub="teacher-1",
                                 claims=_deep_link_request(platform))
    assert resp.status_code == 303 and "/deep-link/" in resp.headers["Location"]
    picker = http.get(live_server + resp.headers["Location"])
    assert picker.status_code == 200
    assert "Technician portfolio" in picker.text and "XT-IV-01 Garbing and hand hygiene" in picker.text
    assert "IV room / sterile compounding cross-training checklist" in picker.text
    assert "Technician I" in picker.text and 'value="pathway:cspt"' in picker.text, "career pathways are offered"
    assert 'type="checkbox" name="target"' in picker.text

    action = re.search(r'<form method="post" action="([^"]+)"', picker.text).group(1).replace("&amp;", "&")
    csrf = _form_fields(picker.text)["csrf_token"]
    target = f"competency:{competency_id}"
    done = http.post(live_server + action, data={"csrf_token": csrf, "target": [target, "portfolio"],
                                                 "graded": [target]})
    assert done.status_code == 200
    assert f'action="{platform.base}/deep-link-return"' in done.text
    token = _form_fields(done.text)["JWT"]

    header = jwt.get_unverified_header(token)
    keys = requests.get(live_server + "/lti/jwks", timeout=5).json()["keys"]
    pem = JWK.from_json(json.dumps(next(k for k in keys if k["kid"] == header["kid"]))).export_to_pem()
    message = jwt.decode(token, pem, algorithms=["RS256"], audience=platform.issuer)
    assert message["iss"] == platform.client_id
    assert message[CLAIM + "message_type"] == "LtiDeepLinkingResponse"
    assert message[CLAIM + "deployment_id"] == platform.deployment_id
    assert message[DL + "data"] == "opaque-platform-data"
    items = message[DL + "content_items"]
    assert [i["type"] for i in items] == ["ltiResourceLink", "ltiResourceLink"]
    graded = next(i for i in items if i["custom"]["target"] == target)
    assert graded["lineItem"] == {"scoreMaximum": 4, "label": "XT-IV-01 Garbing and hand hygiene",
                                  "resourceId": target, "tag": "competency"}
    assert graded["url"] == live_server + "/lti/launch"
    assert "lineItem" not in next(i for i in items if i["custom"]["target"] == "portfolio")

    # The LMS creates the link and its column, then launches it with the custom target and AGS claim.
    lineitem = platform.base + "/lineitems/77"
    launched, _, _ = platform.launch(
        http, live_server, sub="tech-9",
        claims=lambda b: {**b, CLAIM + "custom": {"target": target}, CLAIM + "resource_link": {"id": "rl-placed"},
                          AGS: {"scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/score"],
                                "lineitems": platform.base + "/lineitems", "lineitem": lineitem}})
    assert launched.status_code == 303
    with app.app_context():
        link = db.session.scalars(select(ResourceLink).where(ResourceLink.resource_link_id == "rl-placed")).one()
        assert link.target == {"type": "competency", "id": competency_id}
        assert link.lineitem_url == lineitem
        course = db.session.get(Course, link.course_id)
        assert course.ags_lineitems_url == platform.base + "/lineitems"


def test_single_choice_when_platform_accepts_one_item(app, live_server, platform, registered, http):
    _framework(app)
    resp, _, _ = platform.launch(http, live_server, roles=CANVAS_ROLES["teacher"],
                                 claims=_deep_link_request(platform, multiple=False))
    picker = http.get(live_server + resp.headers["Location"])
    assert 'type="radio" name="target"' in picker.text
    action = re.search(r'<form method="post" action="([^"]+)"', picker.text).group(1).replace("&amp;", "&")
    csrf = _form_fields(picker.text)["csrf_token"]
    again = http.post(live_server + action, data={"csrf_token": csrf, "target": ["portfolio", "matrix"]})
    assert again.status_code == 200 and "accepts one item at a time" in again.text
    assert "JWT" not in _form_fields(again.text)


def test_learner_cannot_open_the_picker(app, live_server, platform, registered, http, count_rows):
    resp, _, _ = platform.launch(http, live_server, roles=CANVAS_ROLES["student"],
                                 claims=_deep_link_request(platform))
    assert resp.status_code == 403
    assert "Only course managers can add" in resp.text
    assert count_rows() == {"people": 0, "courses": 0, "memberships": 0}


def test_picker_refuses_a_post_without_csrf_token(app, live_server, platform, registered, http):
    resp, _, _ = platform.launch(http, live_server, roles=CANVAS_ROLES["teacher"],
                                 claims=_deep_link_request(platform))
    picker = http.get(live_server + resp.headers["Location"])
    action = re.search(r'<form method="post" action="([^"]+)"', picker.text).group(1).replace("&amp;", "&")
    refused = http.post(live_server + action, data={"target": "portfolio"})
    assert refused.status_code == 400
    assert "did not come from this tool" in refused.text


def test_course_frameworks_limit_the_offer(app, live_server, platform, registered, http):
    competency_id = _framework(app)
    with app.app_context():
        other = Framework(code="OTHER", name="Other framework", version="1", scale=SCALE)
        db.session.add(other)
        db.session.flush()
        db.session.add(Competency(framework_id=other.id, code="OT-1", title="Unrelated skill"))
        db.session.commit()
    resp, _, _ = platform.launch(http, live_server, roles=CANVAS_ROLES["teacher"],
                                 claims=_deep_link_request(platform))
    picker = http.get(live_server + resp.headers["Location"])
    assert "OT-1 Unrelated skill" in picker.text, "no framework chosen yet: every visible framework is offered"
    with app.app_context():
        course = db.session.scalars(select(Course)).one()
        fw_id = db.session.get(Competency, competency_id).framework_id
        db.session.add(CourseFramework(course_id=course.id, framework_id=fw_id))
        db.session.commit()
    picker = http.get(live_server + resp.headers["Location"])
    assert "OT-1 Unrelated skill" not in picker.text and "XT-IV-01" in picker.text


def test_a_placed_link_opens_its_item_for_each_role(app, live_server, platform, registered, http):
    competency_id = _framework(app)
    target = f"competency:{competency_id}"

    def opened(roles, sub):
        resp, _, _ = platform.launch(http, live_server, roles=roles, sub=sub,
                                     claims=lambda b: {**b, CLAIM + "custom": {"target": target}})
        assert resp.status_code == 303 and "to=competency" in resp.headers["Location"]
        forward = http.get(live_server + resp.headers["Location"], allow_redirects=False)
        assert forward.status_code == 303
        return forward.headers["Location"]

    tech = opened(CANVAS_ROLES["student"], "tech-open")
    assert tech.startswith("/me/evidence/new") and f"competency={competency_id}" in tech
    boss = opened(CANVAS_ROLES["teacher"], "boss-open")
    assert boss.startswith("/team/queue") and f"competency={competency_id}" in boss
    assert http.get(live_server + boss).status_code == 200

    plain, _, _ = platform.launch(http, live_server, sub="plain")
    assert "to=" not in plain.headers["Location"], "an ordinary link lands on the home page"
