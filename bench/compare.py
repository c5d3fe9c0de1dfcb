"""The tool's LTI launch next to a plain pylti1p3 tool and a bare Flask app, in one run, on PostgreSQL.

All three are served by gunicorn with the same settings (-w 4, sync workers) and driven by the same load generator:
the test platform (tests/support/platform.py) logs in (GET /lti/login, 302), signs an RS256 id_token and posts it
(POST /lti/launch), with 4 login+launch pairs in flight. The servers take turns in rounds: each round runs --pairs
pairs on every server, one after the other (the order alternates between rounds), so that a busy moment of the
machine hits all of them alike. The table shows each server's median pairs/s and the median of the per-round
ratios to plain pylti1p3 with their interquartile range: on a shared virtual machine throughput drifts by 20 % within
a minute, and a ratio taken within one round cancels that drift where a ratio of two medians does not. Statements per
login+launch are counted on the engine for a returning user's pair, served in-process. Under the table, each
server's CPU per pair by process (its gunicorn workers, PostgreSQL, Redis, the generator: bench/cpu.py) shows
where a ratio comes from. Then, when bench/pages.py exists, its main() runs with the arguments given after `--`.

The load generator follows no redirect, and does not let requests prepare the request a redirect leads to either
(requests does that even with allow_redirects=False, for Response.next): that cost ~0.2 ms of the shared CPUs per
302/303, which charged a server for answering with a redirect. `--prepare-redirects` measures the old way.

    make bench                                   # = .venv/bin/python bench/compare.py
    .venv/bin/python bench/compare.py --pairs 150 --rounds 15 --postgres-url postgresql://postgres@127.0.0.1/bench_me
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

import cpu  # noqa: E402
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


class LoadSession(requests.Session):
    """The load generator's HTTP session: no proxy or .netrc lookups from the environment on every request
    (loopback needs none, and they made the generator, on the same CPUs as the servers, the busiest process of
    the run), and no preparation of the request a redirect leads to, which the generator never sends."""

    prepare_redirects = False

    def __init__(self):
        super().__init__()
        self.trust_env = False

    def resolve_redirects(self, resp, req, *args, yield_requests=False, **kwargs):
        if yield_requests and not self.prepare_redirects:
            return iter(())  # Session.send asks only for Response.next, and takes "none" for an answer
        return super().resolve_redirects(resp, req, *args, yield_requests=yield_requests, **kwargs)


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
            local.http = LoadSession()
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


def print_cpu(used: dict) -> None:
    """Where each server's CPU went (bench/cpu.py): medians over the rounds of CPU ms per login+launch pair."""
    if not all(used.values()):
        return  # no /proc: nothing was measured
    groups = ("server", "database", "cache", "generator")
    print("\nCPU ms per login+launch pair, by process (median of rounds): the servers share the machine's CPUs with "
          "PostgreSQL, Redis and the load generator")
    header = (f"{'server':<16} {'gunicorn workers':>17} {'PostgreSQL':>11} {'Redis':>7} {'generator':>10} "
              f"{'all':>7}")
    print(header)
    print("-" * len(header))
    for name, rounds in used.items():
        medians = [statistics.median(r[group] for r in rounds) for group in groups]
        total = statistics.median(sum(r.values()) for r in rounds)
        print(f"{name:<16} {medians[0]:>17.2f} {medians[1]:>11.2f} {medians[2]:>7.2f} {medians[3]:>10.2f} "
              f"{total:>7.2f}")


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
    parser.add_argument("--pairs", type=int, default=150, help="login+launch pairs per server and round (default 150)")
    parser.add_argument("--rounds", type=int, default=15, help="rounds; medians are shown (default 15)")
    parser.add_argument("--concurrency", type=int, default=4, help="pairs in flight (default 4)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers for every server (default 4)")
    parser.add_argument("--postgres-url", default=DEFAULT_PG, help=f"emptied and recreated (default {DEFAULT_PG})")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4"),
                        help="the plain pylti1p3 tool's cache (default redis://127.0.0.1:6379/4)")
    parser.add_argument("--no-pages", action="store_true", help="skip bench/pages.py")
    parser.add_argument("--prepare-redirects", action="store_true",
                        help="let requests prepare each redirect's request, as before (see above)")
    args = parser.parse_args(argv)
    LoadSession.prepare_redirects = args.prepare_redirects

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
        used = {name: [] for name in servers}  # per round: CPU ms per pair by process group
        for round_number in range(args.rounds):
            order = list(servers.items())
            for name, server in order if round_number % 2 == 0 else order[::-1]:
                meter = cpu.Meter(server.proc.pid) if cpu.available() else None
                if meter:
                    meter.start()
                results[name].append(pairs_per_second(platform, server.base, args.pairs, args.concurrency))
                if meter:
                    used[name].append({group: 1000 * spent / args.pairs for group, spent in meter.stop().items()})
    finally:
        for server in servers.values():
            server.stop()
    try:
        statements = statements_per_pair(platform, url)
    finally:
        platform.close()

    print(f"\nLTI 1.3 login+launch pairs per second: PostgreSQL, gunicorn -w {args.workers} (sync) for each server, "
          f"{args.concurrency} pairs in flight, {args.rounds} rounds of {args.pairs} pairs per server, "
          f"{os.cpu_count()} CPU(s).")
    print(f"Plain pylti1p3 cache: {cache_label}. Redirects prepared by the generator: "
          f"{'yes' if args.prepare_redirects else 'no'}.\n")
    header = (f"{'server':<16} {'pairs/s (median)':>16} {'range':>13}   "
              f"{'ratio to plain pylti1p3: median of rounds':>41} {'(quartiles)':>13}")
    print(header)
    print("-" * len(header))
    plain = results["plain pylti1p3"]
    for name, runs in results.items():
        ratios = [mine / theirs for mine, theirs in zip(runs, plain, strict=True)]
        low, _, high = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
        print(f"{name:<16} {statistics.median(runs):>16.1f} {min(runs):>6.1f}-{max(runs):<6.1f}   "
              f"{statistics.median(ratios):>41.2f} {f'({low:.2f}-{high:.2f})':>13}")
    print_cpu(used)
    print(f"\nSQL statements for a returning technician's login+launch (this tool): {statements}")
    if not args.no_pages:
        # One database for the whole run unless told otherwise (pages.py empties it too).
        if not any(a.startswith("--database-url") for a in pages_argv):
            pages_argv = ["--database-url", url, *pages_argv]
        run_pages(pages_argv)


if __name__ == "__main__":
    main()
