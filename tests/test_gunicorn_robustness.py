"""Issue 10 against gunicorn (4 workers, the shipped gunicorn.conf.py) on PostgreSQL: a transcript download for
a name outside Latin-1, 20 parallel identical "record evidence" posts, parallel CE records of one activity from
different forms, and an access log that never shows a session token."""
import re
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import func, select

from lti_tool.extensions import db
from lti_tool.models import Course, CourseFramework, Evidence, Person, ReviewRequest
from lti_tool.services import frameworks
from tests.support.gunicorn_server import serve
from tests.test_technician_pages import good_form

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def served(app, tmp_path, registered):
    log = tmp_path / "gunicorn.log"
    with serve(log) as url:
        yield url, log


def _launch(platform, http, url, sub, **claims):
    resp, _, _ = platform.launch(http, url, sub=sub, **claims)
    assert resp.status_code == 303, resp.text[:500]
    return parse_qs(urlsplit(resp.headers["Location"]).query)["lt"][0]


def _course_uses_default_framework(app):
    with app.app_context():
        framework = frameworks.ensure_default_framework()
        course = db.session.scalars(select(Course)).one()
        db.session.add(CourseFramework(course_id=course.id, framework_id=framework.id))
        db.session.commit()


def _parallel(n, fn):
    results, threads = [], [threading.Thread(target=lambda i=i: results.append(fn(i))) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def _form_fields(http, url, path, token):
    page = http.get(url + path, params={"lt": token}, timeout=30)
    return {name: re.search(rf'name="{name}" value="([^"]+)"', page.text).group(1)
            for name in ("csrf_token", "submission_key")}


def test_robustness_under_gunicorn(served, app, platform):
    url, log = served
    with requests.Session() as http:
        token = _launch(platform, http, url, "tech-zh", name="张伟 Ελένη Иван")
        _course_uses_default_framework(app)
        with app.app_context():
            person_id = db.session.scalars(select(Person.id)).one()

        # A name outside Latin-1 downloads its transcript in every format.
        for fmt in ("csv", "json", "pdf-letter"):
            resp = http.get(f"{url}/transcripts/people/{person_id}/download/{fmt}", params={"lt": token}, timeout=60)
            assert resp.status_code == 200, (fmt, resp.status_code, resp.text[:300])
            assert "filename*=UTF-8''transcript-%E5%BC%A0%E4%BC%9F" in resp.headers["Content-Disposition"]

        # 20 parallel identical posts of one form (same key, same browser cookie): one item, one review request.
        fields = _form_fields(http, url, "/me/evidence/new/cross_training", token)
        form = {**good_form(app, "cross_training"), **fields, "action": "submit"}

        def post(_):
            with requests.Session() as s:
                s.cookies.update(http.cookies)
                return s.post(url + "/me/evidence/new/cross_training", params={"lt": token}, data=form,
                              allow_redirects=False, timeout=120)

        results = _parallel(20, post)
        assert [r.status_code for r in results] == [303] * 20, [r.text[:300] for r in results if r.status_code != 303]
        assert len({urlsplit(r.headers["Location"]).path for r in results}) == 1
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(Evidence)) == 1
            assert db.session.scalar(select(func.count()).select_from(ReviewRequest)) == 1

        # The same CE activity from 8 different forms at once: the database keeps one live record.
        ce_forms = [{**good_form(app, "continuing_education"),
                     **_form_fields(http, url, "/me/evidence/new/continuing_education", token)} for _ in range(8)]

        def post_ce(i):
            with requests.Session() as s:
                s.cookies.update(http.cookies)
                return s.post(url + "/me/evidence/new/continuing_education", params={"lt": token},
                              data=ce_forms[i], allow_redirects=False, timeout=120)

        statuses = sorted(r.status_code for r in _parallel(8, post_ce))
        assert statuses.count(303) == 1 and all(s in (400, 409) for s in statuses if s != 303), \
            (statuses, log.read_text()[-6000:])
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(Evidence).where(
                Evidence.kind == "continuing_education")) == 1

    time.sleep(0.3)  # let the last access-log lines reach the file
    lines = [line for line in log.read_text().splitlines() if '"GET ' in line or '"POST ' in line]
    assert any("/transcripts/people/" in line for line in lines), log.read_text()[-2000:]
    assert not [line for line in lines if "lt=" in line or "?" in line.split('"')[1]]
