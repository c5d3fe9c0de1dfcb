"""200 consecutive complete launches through gunicorn with 4 worker processes on PostgreSQL.

State, nonces, launch data and the platform's key set live in the database, so a login served by one worker and
the launch served by another agree. The access log records which worker served each request.
"""
import os
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.conftest import DATABASE_URL

pytestmark = pytest.mark.postgres_only

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
LAUNCHES = 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gunicorn(app, tmp_path):
    """gunicorn -w 4 serving the tool on the test database (whose schema the session `app` created)."""
    port = free_port()
    log = tmp_path / "gunicorn.log"
    env = dict(os.environ, LTI_TOOL_ENV="testing", DATABASE_URL=DATABASE_URL, SECRET_KEY="gunicorn-test-secret",
               PROXY_FIX_HOPS="0")
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(GUNICORN), "-w", "4", "-b", f"127.0.0.1:{port}", "--access-logfile", "-",
             "--access-logformat", "%(p)s %(m)s %(U)s %(s)s", "lti_tool:create_app()"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if requests.get(url + "/", timeout=2).status_code == 200:
                    break
            except requests.RequestException:  # bound but workers still booting
                pass
            assert time.monotonic() < deadline, "gunicorn did not start:\n" + log.read_text()
            time.sleep(0.2)
        yield url, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _access_log(log: Path):
    """[(pid, method, path, status)] for each request, in order (workers write whole lines)."""
    rows = []
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0].startswith("<") and parts[3].isdigit():
            rows.append((parts[0], parts[1], parts[2], int(parts[3])))
    return rows


def test_200_consecutive_launches_through_gunicorn_with_4_workers(gunicorn, platform, registered, count_rows):
    url, log = gunicorn
    jwks_before = platform.jwks_requests
    failures = []
    started = time.monotonic()
    with requests.Session() as http:
        for i in range(LAUNCHES):
            resp, _, _ = platform.launch(http, url, sub=f"tech-{i % 20}", name=f"Technician {i % 20}")
            if resp.status_code != 303:
                failures.append((i, resp.status_code, resp.text[:300]))
                continue
            page = http.get(url + resp.headers["Location"], timeout=10)
            if page.status_code != 200 or f"Technician {i % 20}" not in page.text:
                failures.append((i, "home", page.status_code))
    elapsed = time.monotonic() - started
    assert not failures, failures[:5]
    assert count_rows() == {"people": 20, "courses": 1, "memberships": 20}
    # The platform's key set was fetched once, by one worker, and then read from the shared cache by all.
    assert platform.jwks_requests == jwks_before + 1

    time.sleep(0.3)  # let the last access-log lines reach the file
    requests_seen = [r for r in _access_log(log) if r[2] in ("/lti/login", "/lti/launch")]
    logins = [r for r in requests_seen if r[2] == "/lti/login"]
    launches = [r for r in requests_seen if r[2] == "/lti/launch"]
    assert len(logins) == len(launches) == LAUNCHES, log.read_text()[-2000:]
    workers = Counter(pid for pid, *_ in requests_seen)
    assert len(workers) >= 2, f"one worker served everything: {workers}"
    crossed = sum(1 for login, launch in zip(logins, launches, strict=True) if login[0] != launch[0])
    print(f"\n{LAUNCHES} launches in {elapsed:.1f}s; requests per worker {dict(workers)}; "
          f"{crossed} launches finished on another worker than their login")
    assert crossed > 0


def test_parallel_first_launches_into_a_new_course_create_each_row_once(gunicorn, platform, registered, app):
    """A shift change: new technicians open the tool in a course nobody has opened yet, all at once, some in two
    tabs. Every launch lands (no 5xx), and the course, each person and each membership exist exactly once."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import text

    from lti_tool.extensions import db

    url, log = gunicorn
    people, tabs = 8, 2
    logged_in = []
    for n in range(people * tabs):  # logins first, so that the launches themselves race
        http = requests.Session()
        resp, auth = platform.login(http, url)
        assert resp.status_code == 302, resp.text
        body = platform.claims(auth["nonce"], sub=f"new-tech-{n % people}", context_id="course-opened-today")
        body["https://purl.imsglobal.org/spec/lti/claim/target_link_uri"] = url + "/lti/launch"
        logged_in.append((http, auth, platform.sign(body)))
    start = threading.Barrier(len(logged_in))

    def launch(item):
        http, auth, token = item
        start.wait(timeout=30)
        return http.post(auth["redirect_uri"], data={"id_token": token, "state": auth["state"]},
                         allow_redirects=False, timeout=30).status_code

    with ThreadPoolExecutor(len(logged_in)) as pool:
        statuses = list(pool.map(launch, logged_in))
    assert statuses == [303] * len(logged_in), statuses
    with app.app_context():
        counts = {t: db.session.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar()
                  for t in ("people", "courses", "memberships", "resource_links")}
    assert counts == {"people": people, "courses": 1, "memberships": people, "resource_links": 1}
    assert " 500" not in log.read_text()
