"""gunicorn serving the tool on the test database, configured by the shipped gunicorn.conf.py."""
import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path

import requests

from tests.conftest import DATABASE_URL

ROOT = Path(__file__).resolve().parent.parent.parent
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(log: Path, workers: int = 4):
    """Yield the base URL of gunicorn -c gunicorn.conf.py (its access log goes to `log`)."""
    port = free_port()
    env = dict(os.environ, LTI_TOOL_ENV="testing", DATABASE_URL=DATABASE_URL, SECRET_KEY="gunicorn-test-secret",
               PROXY_FIX_HOPS="0", WEB_CONCURRENCY=str(workers), GUNICORN_BIND=f"127.0.0.1:{port}")
    with open(log, "w") as out:
        proc = subprocess.Popen([str(GUNICORN), "-c", str(ROOT / "gunicorn.conf.py"), "lti_tool:create_app()"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # 4 workers importing the app on a busy 2-CPU machine
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if requests.get(url + "/", timeout=10).status_code == 200:
                    break
            except requests.RequestException:  # bound but workers still booting
                pass
            assert time.monotonic() < deadline, "gunicorn did not start:\n" + log.read_text()
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
