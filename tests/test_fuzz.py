"""Fuzzing every route of the URL map, as every role, over real HTTP: no request may answer 5xx.

Hypothesis generates, for a route chosen from the URL map: values for its path arguments (real small ids,
ids past the database's integer range, negative and unicode digits, NUL, 100,000 characters, invalid UTF-8),
query parameters and form fields under the names the tool reads (numbers huge, negative and NaN, impossible
dates, formulas, markup), sometimes a JSON body, and who sends it: nobody, or a technician, a manager, an observer
or an LMS administrator holding a real session from a real launch (with a valid CSRF token, so requests reach the
views). Runs are reproducible (a fixed seed) and bounded; for a longer run locally:

    FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/test_fuzz.py -q

(on PostgreSQL too: TEST_DATABASE_URL=postgresql://... ; FUZZ_SEED picks another seed).
"""
import json
import os
import re
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.models import Course, CourseFramework
from lti_tool.services import frameworks
from tests.support.platform import CANVAS_ROLES
from tests.test_technician_pages import good_form, launch

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "250"))
SEED = int(os.environ.get("FUZZ_SEED", "20261130"))
INVALID_UTF8 = b"\xff\xfe\xc3\x28\xed\xa0\x80"
LONG = "9" * 100_000
# The names of the query parameters and form fields the tool reads.
NAMES = [
    "competency", "technician", "department", "page", "area", "status", "expiring", "inactive", "kind", "to",
    "iss", "login_hint", "target_link_uri", "client_id", "lti_message_hint", "lti_deployment_id", "id_token",
    "state", "pending", "lti_storage_target", "registration_token", "credential", "rating", "method",
    "comment", "decision", "checklist_seen", "confirm", "request", "reason", "action", "person", "title", "hours",
    "uan", "completion_date", "start_date", "end_date", "issued_date", "expiry_date", "competency_ids",
    "checklist_steps", "trainer_person_id", "revision", "remove_attachment", "evidence_id", "framework", "course",
    "revalidation_warning_days", "kid", "score", "all", "active", "version", "page_size", "target", "graded",
    "submission_key", "download", "s", "cycle_count", "pdsa-0-date", "role-Learner", "pick", "n", "invite",
]
SPECIAL = ["", "0", "1", "2", "-1", "2147483647", "2147483648", "9223372036854775808", str(10**40), "1e308",
           "-1e308", "NaN", "inf", "²", "٣", "٣٠", "１２", "\x00", "a\x00b", LONG, "2026-02-30", "0000-00-00",
           "9999-12-31", "1900-01-01", "2026-11-30T25:61", "../../etc/passwd", "<script>alert(1)</script>",
           '=HYPERLINK("x")', "competency:2147483648", "competency:٣", "submit", "sign_off", "return", "draft",
           "revoke", "correct", "yes", "on", "0197-0000-24-001-L07-T", INVALID_UTF8]
ROLES = {"technician": CANVAS_ROLES["student"], "manager": CANVAS_ROLES["teacher"],
         "observer": CANVAS_ROLES["observer"], "admin": CANVAS_ROLES["account_admin"]}
# Pages with a form, to read each role's CSRF token from.
FORM_PAGES = {"technician": "/me/evidence/new/cross_training", "manager": "/team/preceptors",
              "admin": "/admin/settings", "observer": "/verify"}

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
value = st.one_of(st.sampled_from(SPECIAL), st.integers(-2**70, 2**70).map(str), text,
                  st.floats(allow_nan=True, allow_infinity=True).map(repr))
json_value = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | text,
                          lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                          max_leaves=12)


def _routes(app):
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("dev."):
            continue  # static files; the development LMS exists only in development and testing
        kinds = {name: type(conv).__name__ for name, conv in rule._converters.items()}
        routes.append((rule.rule, sorted(rule.methods - {"HEAD", "OPTIONS"}), kinds))
    return sorted(routes)


def _path_value(kind):
    if kind == "IdConverter":
        return st.one_of(st.integers(0, 6).map(str), st.sampled_from(SPECIAL).filter(lambda v: isinstance(v, str)),
                         st.integers(2**31, 2**70).map(str))
    if kind == "UUIDConverter":
        return st.one_of(st.uuids().map(str), st.sampled_from(["not-a-uuid", "%00", LONG]))
    return st.one_of(st.sampled_from(["csv", "json", "pdf-a4", "pdf-letter", "ob3", "clr", "case", "moodle-csv",
                                      "native", "cross_training", "continuing_education", "qi_project"]),
                     st.sampled_from(SPECIAL).filter(lambda v: isinstance(v, str) and v), text.filter(bool))


def _quote(raw):
    return quote(raw, safe="") if isinstance(raw, str) else quote(raw)


@st.composite
def fuzzed_request(draw, routes):
    rule, methods, kinds = draw(st.sampled_from(routes))
    path = rule
    for name, kind in kinds.items():
        path = re.sub(r"<(?:[^:<>]+:)?" + re.escape(name) + r">", _quote(draw(_path_value(kind))), path)
    fields = draw(st.dictionaries(st.sampled_from(NAMES), st.lists(value, min_size=1, max_size=3), max_size=6))
    method = draw(st.sampled_from(methods))
    body = draw(st.none() | json_value) if method == "POST" and draw(st.booleans()) else None
    role = draw(st.sampled_from([None, *ROLES]))
    return method, path, fields, body, role


@pytest.fixture
def sessions(app, live_server, platform, registered):
    """A real launch per role (each in its own browser), with some evidence to point ids at."""
    out = {}
    for role, lti_roles in ROLES.items():
        http = requests.Session()
        out[role] = (http, launch(app, live_server, platform, http, f"fuzz-{role}", lti_roles).token)
    with app.app_context():
        course = db.session.scalars(select(Course)).one()
        db.session.add(CourseFramework(course_id=course.id, framework_id=frameworks.ensure_default_framework().id))
        db.session.commit()
    tech_http, tech_token = out["technician"]
    csrf = {}
    for role, (http, token) in out.items():
        page = http.get(live_server + FORM_PAGES[role], params={"lt": token})
        found = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
        csrf[role] = found.group(1) if found else ""
    form = {**good_form(app, "cross_training"), "action": "submit", "csrf_token": csrf["technician"]}
    assert tech_http.post(live_server + "/me/evidence/new/cross_training", params={"lt": tech_token}, data=form,
                          allow_redirects=False).status_code == 303
    yield {role: (http, token, csrf[role]) for role, (http, token) in out.items()}
    for http, _ in out.values():
        http.close()


@pytest.mark.timeout(max(300, EXAMPLES // 2))  # a longer local run gets the time it needs
def test_no_request_to_any_route_answers_5xx(app, live_server, sessions):
    routes = _routes(app)
    anonymous = requests.Session()
    seen = []

    @seed(SEED)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
              phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure prints its request as sent
              suppress_health_check=list(HealthCheck))
    @given(fuzzed_request(routes))
    def one_request(req):
        method, path, fields, body, role = req
        http, token, csrf = sessions[role] if role else (anonymous, None, "")
        params = {k: v for k, v in fields.items()}
        if token and not fields.get("lt"):
            params["lt"] = token
        kwargs = {"allow_redirects": False, "timeout": 60}
        if method == "GET":
            resp = http.get(live_server + path, params=params, **kwargs)
        elif body is not None:
            resp = http.post(live_server + path, params={"lt": token} if token else {}, data=json.dumps(body),
                             headers={"Content-Type": "application/json", "X-CSRF-Token": csrf}, **kwargs)
        else:
            data = {**params, "csrf_token": csrf} if csrf else params
            resp = http.post(live_server + path, params={"lt": token} if token else {}, data=data, **kwargs)
        seen.append((method, path.split("?")[0], resp.status_code))
        assert resp.status_code < 500, (f"{method} {path} as {role or 'anonymous'} with {str(fields)[:500]} "
                                        f"body={str(body)[:200]} -> {resp.status_code}: {resp.text[:500]}")

    try:
        one_request()
    finally:
        anonymous.close()
    # The walk reached the views, not just the routing: pages answered, and refusals were the readable kind.
    statuses = {status for _, _, status in seen}
    print(f"\n{len(seen)} requests to {len({p for _, p, _ in seen})} addresses; statuses {sorted(statuses)}")
    assert len(seen) >= min(EXAMPLES, 100) and 200 in statuses and statuses & {400, 403, 404}
