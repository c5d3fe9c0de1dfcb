"""Launch benchmark: complete LTI 1.3 login + launch round trips per second, and server time per launch.

Each round trip is what a browser does: GET /lti/login (302 to the platform), the platform signs an RS256
id_token, POST /lti/launch (303), GET the tool's page. The test platform from tests/support/ serves the JWKS.

    .venv/bin/python bench/launch.py                         # 500 launches, SQLite and PostgreSQL, gunicorn -w 4
    .venv/bin/python bench/launch.py --launches 200 --concurrency 4 --server werkzeug
    .venv/bin/python bench/launch.py --databases postgresql --postgres-url postgresql://postgres@127.0.0.1/lti_bench

The PostgreSQL database (default lti_bench, created when missing) and the SQLite file are emptied and
recreated: never point --postgres-url at a database you care about.
"""
import argparse
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from sqlalchemy import text  # noqa: E402

import config  # noqa: E402
from bench.seed import ensure_postgres_database  # noqa: E402,F401 - compare.py imports it from here
from lti_tool import create_app  # noqa: E402
from lti_tool.extensions import db  # noqa: E402
from tests.support.platform import CANVAS_ROLES, TestPlatform  # noqa: E402

DEFAULT_PG = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/lti_bench")
TIMED_PATHS = ("/lti/login", "/lti/launch", "/app/")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_database(url: str, platform: TestPlatform) -> None:
    """Fresh schema, the test platform registered, the tool's key created."""
    app = create_app(dict(config.load({"LTI_TOOL_ENV": "testing", "DATABASE_URL": url}), PROXY_FIX_HOPS=0))
    with app.app_context():
        if url.startswith("postgresql"):
            db.session.execute(text("DROP TABLE IF EXISTS alembic_version"))
            db.session.commit()
        db.drop_all()
        db.create_all()
        platform.register_in(db)
        db.session.remove()
        db.engine.dispose()


class TimingMiddleware:
    """Server time per request for the in-process werkzeug server (gunicorn's access log gives it otherwise)."""

    def __init__(self, app):
        self.app = app
        self.times = {p: [] for p in TIMED_PATHS}
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        try:
            return list(self.app(environ, start_response))
        finally:
            path = environ.get("PATH_INFO", "")
            if path in self.times:
                with self.lock:
                    self.times[path].append(time.perf_counter() - started)


class Gunicorn:
    """gunicorn -w N serving the tool (or, for bench/compare.py, another app: `app` run from `chdir`)."""

    def __init__(self, url: str, workers: int, app: str = "lti_tool:create_app()", env: dict | None = None,
                 chdir: Path = ROOT):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkstemp(prefix="bench-gunicorn-", suffix=".log")[1])
        env = dict(os.environ, LTI_TOOL_ENV="testing", DATABASE_URL=url, SECRET_KEY="bench-secret",
                   PROXY_FIX_HOPS="0", **(env or {}))
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{self.port}",
                 "--access-logfile", "-", "--access-logformat", "%(U)s %(s)s %(D)s", app],
                cwd=chdir, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.label = f"gunicorn -w {workers}"
        # Four workers importing the app on a busy 2-CPU machine took more than 30 s.
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None:
                raise SystemExit("gunicorn exited:\n" + self.log.read_text())
            try:
                requests.get(self.base + "/", timeout=10)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    log = self.log.read_text()
                    self.stop()  # not left running behind the benchmark
                    raise SystemExit("gunicorn did not start:\n" + log) from None
                time.sleep(0.2)

    def mark(self):
        self._offset = self.log.stat().st_size

    def server_times(self) -> dict:
        times = {p: [] for p in TIMED_PATHS}
        with open(self.log) as f:
            f.seek(self._offset)
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[0] in times and parts[2].isdigit():
                    times[parts[0]].append(int(parts[2]) / 1e6)
        return times

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.unlink(missing_ok=True)


class Werkzeug:
    def __init__(self, url: str):
        from werkzeug.serving import make_server

        app = create_app(dict(config.load({"LTI_TOOL_ENV": "testing", "DATABASE_URL": url}), PROXY_FIX_HOPS=0))
        app.logger.disabled = True
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.app = app
        self.timing = TimingMiddleware(app.wsgi_app)
        app.wsgi_app = self.timing
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.label = "werkzeug threaded (in-process)"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def mark(self):
        for v in self.timing.times.values():
            v.clear()

    def server_times(self) -> dict:
        return {k: list(v) for k, v in self.timing.times.items()}

    def stop(self):
        self.server.shutdown()
        with self.app.app_context():
            db.engine.dispose()


def one_launch(platform: TestPlatform, http: requests.Session, base: str, n: int) -> None:
    resp, _, _ = platform.launch(http, base, sub=f"tech-{n % 50}", roles=CANVAS_ROLES["student"])
    if resp.status_code != 303:
        raise RuntimeError(f"launch {n} refused: {resp.status_code} {resp.text[:200]}")
    page = http.get(base + resp.headers["Location"], timeout=10)
    if page.status_code != 200:
        raise RuntimeError(f"launch {n}: tool page answered {page.status_code}")


def run(platform, server, launches: int, concurrency: int) -> dict:
    sessions = threading.local()

    def task(n):
        if not hasattr(sessions, "http"):
            sessions.http = requests.Session()
        one_launch(platform, sessions.http, server.base, n)

    for n in range(5):  # warm up: JWKS cache, connection pools, imports in every worker
        task(n)
    server.mark()
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(task, range(launches)))
    wall = time.perf_counter() - started
    time.sleep(0.3)
    times = server.server_times()
    median_ms = {p: statistics.median(v) * 1000 if v else float("nan") for p, v in times.items()}
    return {"launches": launches, "wall": wall, "per_second": launches / wall,
            "login_ms": median_ms["/lti/login"], "launch_ms": median_ms["/lti/launch"],
            "page_ms": median_ms["/app/"], "counted": min(len(v) for v in times.values())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--launches", type=int, default=500, help="complete launches per database (default 500)")
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--postgres-url", default=DEFAULT_PG, help=f"emptied and recreated (default {DEFAULT_PG})")
    parser.add_argument("--server", choices=("gunicorn", "werkzeug"), default="gunicorn")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--concurrency", type=int, default=1, help="launches in flight at once (default 1)")
    args = parser.parse_args(argv)

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the test platform's request log
    platform = TestPlatform()
    rows = []
    tmp = tempfile.mkdtemp(prefix="lti-bench-")
    try:
        for name in [d.strip() for d in args.databases.split(",") if d.strip()]:
            if name == "sqlite":
                url = f"sqlite:///{tmp}/bench.sqlite3"
            elif name == "postgresql":
                url = config.normalise_database_url(args.postgres_url)
                ensure_postgres_database(url)
            else:
                parser.error(f"unknown database {name!r}")
            prepare_database(url, platform)
            server = Gunicorn(url, args.workers) if args.server == "gunicorn" else Werkzeug(url)
            try:
                result = run(platform, server, args.launches, args.concurrency)
            finally:
                server.stop()
            rows.append((name, server.label, result))
    finally:
        platform.close()

    cpus = os.cpu_count()
    print(f"\nLTI 1.3 login + launch + tool page, {args.launches} launches per database, concurrency "
          f"{args.concurrency}, {cpus} CPU(s); server times are medians measured in the server\n")
    header = (f"{'database':<11} {'server':<31} {'launches/s':>10} {'server ms/launch':>17} "
              f"{'login ms':>9} {'launch ms':>10} {'page ms':>8}")
    print(header)
    print("-" * len(header))
    for name, label, r in rows:
        print(f"{name:<11} {label:<31} {r['per_second']:>10.1f} {r['login_ms'] + r['launch_ms']:>17.1f} "
              f"{r['login_ms']:>9.1f} {r['launch_ms']:>10.1f} {r['page_ms']:>8.1f}")
    print("\nserver ms/launch = login + launch requests (the LTI part); page = the tool's first page after it.")


if __name__ == "__main__":
    main()
