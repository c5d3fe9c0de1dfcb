"""The tool's LTI launch next to a plain pylti1p3 tool and a bare Flask app, in one run, on PostgreSQL.

All three are served by gunicorn with the same settings (-w 4, sync workers) and driven by the same load generator:
the test platform (tests/support/platform.py) logs in (GET /lti/login, 302), signs an RS256 id_token and posts it
(POST /lti/launch), with 4 login+launch pairs in flight. Each server gets --runs runs of --pairs pairs, interleaved
(tool, plain, bare, tool, plain, ...) so that a busy moment of the machine hits all three alike; the table shows the
medians and the ratios. Statements per login+launch are counted on the engine for a returning user's pair, served
in-process. Then, when bench/pages.py exists, its main() runs with the arguments given after `--`.

    make bench                                   # = .venv/bin/python bench/compare.py
    .venv/bin/python bench/compare.py --pairs 300 --runs 3 --postgres-url postgresql://postgres@127.0.0.1/bench_me
    .venv/bin/python bench/compare.py -- --help  # arguments for bench/pages.py

The plain pylti1p3 tool (bench/plain_pylti1p3.py) keeps state, nonces and the platform's keys in Redis
(--redis-url); when Redis does not answer it falls back to flask-caching's file-system cache, and says so.
The PostgreSQL database is emptied and recreated: never point --postgres-url at a database you care about.
"""
import argparse
import importlib.util
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import requests  # noqa: E402
from launch import DEFAULT_PG, Gunicorn, Werkzeug, ensure_postgres_database, prepare_database  # noqa: E402

import config  # noqa: E402
from lti_tool.extensions import db  # noqa: E402
from tests.support.platform import CANVAS_ROLES, TestPlatform, new_rsa_key  # noqa: E402
from tests.support.statements import recorded_statements  # noqa: E402

USERS = 50  # distinct technicians; every counted pair is a returning user's


def redis_or_files(redis_url: str) -> tuple[str, str]:
    """(cache URL for the plain tool, label): Redis when it answers, else a file-system cache directory."""
    try:
        import redis

        redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
        return redis_url, f"Redis {redis_url}"
    except Exception:  # noqa: BLE001 - any failure means: use files
        path = tempfile.mkdtemp(prefix="bench-plain-cache-")
        return path, "file-system cache (Redis did not answer)"


def plain_tool_env(platform: TestPlatform, cache_url: str) -> dict:

    conf = {platform.issuer: [{
        "default": True, "client_id": platform.client_id, "auth_login_url": platform.base + "/auth",
        "auth_token_url": platform.base + "/token", "key_set_url": platform.base + "/jwks", "key_set": None,
        "deployment_ids": [platform.deployment_id],
    }]}
    return {"PLAIN_LTI_CONFIG": json.dumps(conf), "PLAIN_PRIVATE_KEY": new_rsa_key("plain-tool")["pem"],
            "PLAIN_CACHE_URL": cache_url, "BARE_AUTH_URL": platform.base + "/auth"}


def one_pair(platform: TestPlatform, http: requests.Session, base: str, n: int) -> None:
    # A fresh cookie jar per pair, for every server alike: pylti1p3 never deletes its state cookies, and a jar
    # kept across hundreds of launches would outgrow the 8 KB header limit.
    http.cookies.clear()
    resp, _, _ = platform.launch(http, base, sub=f"tech-{n % USERS}", name=f"Technician {n % USERS}",
                                 roles=CANVAS_ROLES["student"])
    if resp.status_code not in (200, 303):
        raise RuntimeError(f"{base}: pair {n} refused: {resp.status_code} {resp.text[:300]}")


def pairs_per_second(platform, base: str, pairs: int, concurrency: int) -> float:
    local = threading.local()

    def task(n):
        if not hasattr(local, "http"):
            local.http = requests.Session()
            # No proxy or .netrc lookups from the environment on every request: loopback needs none, and the
            # lookups made the load generator (on the same CPUs as the servers) the busiest process of the run.
            local.http.trust_env = False
        one_pair(platform, local.http, base, n)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(task, range(pairs)))
    return pairs / (time.perf_counter() - started)


def statements_per_pair(platform, url: str) -> int:
    """A returning technician's login+launch, served in-process so the engine can count its statements."""
    server = Werkzeug(url)
    try:
        with requests.Session() as http:
            one_pair(platform, http, server.base, 0)  # this worker's caches warm, the person known
            with server.app.app_context():
                engine = db.engine
            with recorded_statements(engine) as seen:
                one_pair(platform, http, server.base, 0)
        return len(seen)
    finally:
        server.stop()


def run_pages(argv: list[str]) -> None:
    path = BENCH / "pages.py"
    if not path.exists():
        print("\nbench/pages.py is not there yet: no page figures.")
        return
    spec = importlib.util.spec_from_file_location("bench_pages", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    print("\n== bench/pages.py " + " ".join(argv))
    module.main(argv)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    pages_argv = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=300, help="login+launch pairs per run (default 300)")
    parser.add_argument("--runs", type=int, default=3, help="runs per server; the median is shown (default 3)")
    parser.add_argument("--concurrency", type=int, default=4, help="pairs in flight (default 4)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers for every server (default 4)")
    parser.add_argument("--postgres-url", default=DEFAULT_PG, help=f"emptied and recreated (default {DEFAULT_PG})")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4"),
                        help="the plain pylti1p3 tool's cache (default redis://127.0.0.1:6379/4)")
    parser.add_argument("--no-pages", action="store_true", help="skip bench/pages.py")
    args = parser.parse_args(argv)

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    url = config.normalise_database_url(args.postgres_url)
    ensure_postgres_database(url)
    platform = TestPlatform()
    cache_url, cache_label = redis_or_files(args.redis_url)
    env = plain_tool_env(platform, cache_url)
    servers = {}
    try:
        prepare_database(url, platform)
        servers["this tool"] = Gunicorn(url, args.workers)
        servers["plain pylti1p3"] = Gunicorn(url, args.workers, "plain_pylti1p3:create_app()", env, BENCH)
        servers["bare Flask"] = Gunicorn(url, args.workers, "bare_flask:create_app()", env, BENCH)
        for server in servers.values():  # warm up: every user once, JWKS caches, imports in every worker
            pairs_per_second(platform, server.base, USERS, args.concurrency)
        results = {name: [] for name in servers}
        for _ in range(args.runs):
            for name, server in servers.items():
                results[name].append(pairs_per_second(platform, server.base, args.pairs, args.concurrency))
    finally:
        for server in servers.values():
            server.stop()
    try:
        statements = statements_per_pair(platform, url)
    finally:
        platform.close()

    medians = {name: statistics.median(r) for name, r in results.items()}
    plain = medians["plain pylti1p3"]
    print(f"\nLTI 1.3 login+launch pairs per second: PostgreSQL, gunicorn -w {args.workers} (sync) for each server, "
          f"{args.concurrency} pairs in flight, {args.pairs} pairs x {args.runs} runs, {os.cpu_count()} CPU(s).")
    print(f"Plain pylti1p3 cache: {cache_label}.\n")
    header = f"{'server':<16} {'pairs/s (median)':>16} {'runs':<22} {'ratio to plain pylti1p3':>24}"
    print(header)
    print("-" * len(header))
    for name, runs in results.items():
        print(f"{name:<16} {medians[name]:>16.1f} {', '.join(f'{r:.1f}' for r in runs):<22} "
              f"{medians[name] / plain:>24.2f}")
    print(f"\nSQL statements for a returning technician's login+launch (this tool): {statements}")
    if not args.no_pages:
        # One database for the whole run unless told otherwise (pages.py empties it too).
        if not any(a.startswith("--database-url") for a in pages_argv):
            pages_argv = ["--database-url", url, *pages_argv]
        run_pages(pages_argv)


if __name__ == "__main__":
    main()
