"""Background work on a Huey task queue.

Huey (https://huey.readthedocs.io) was chosen because one maintained library covers every mode the tool runs in:
Redis in production (any number of `flask lti worker` processes on any number of machines), a SQLite file for a
single machine with no broker (`make run`), in-memory "immediate" mode for tests, and periodic schedules
(crontab) from the same consumer. Tasks retry with exponential back-off.

The database stays the source of truth: score outbox rows, export-job rows and the sent-messages table say what
is unfinished, and a periodic sweep queues it again. A task lost with its worker (Redis hands a task to one
worker; if that process dies the task is gone) is therefore picked up by the next sweep; every task is
idempotent, so a task delivered twice does its work once.

The rest of the code names tasks by their registered name (`enqueue("deliver_scores")`), so services never
import the queue and the queue is bound per app (create_app builds one Huey instance for its settings).
"""
import functools
import logging
from pathlib import Path

from flask import current_app, g, has_request_context
from huey import MemoryHuey, RedisHuey, SqliteHuey, crontab

from ..extensions import db

log = logging.getLogger(__name__)
JOBS: dict = {}  # name -> (function, huey task options)
PERIODIC: dict = {}  # name -> (function, crontab kwargs)
RETRIES = {"retries": 5, "retry_delay": 30, "retry_backoff": 2}  # 30 s, 1, 2, 4, 8 min


def job(name: str, **options):
    """Register a function as a task (run inside an app context, committed when it returns)."""
    def decorate(fn):
        JOBS[name] = (fn, {**RETRIES, **options})
        return fn
    return decorate


def periodic(name: str, **cron):
    """Register a function as a periodic task (crontab fields in UTC, e.g. minute="*/5")."""
    def decorate(fn):
        PERIODIC[name] = (fn, cron)
        return fn
    return decorate


def make_huey(url: str, name: str):
    if url.startswith("memory://"):
        return MemoryHuey(name, immediate=True, results=False)
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(name, filename=str(path), results=False)
    return RedisHuey(name, url=url, results=False)


def _in_app(app, fn):
    """Each task gets its own app context (so its own database session), commits on success, rolls back on
    failure and never leaves a session behind in a worker thread."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        with app.app_context():
            try:
                result = fn(*args, **kwargs)
                db.session.commit()
                return result
            except Exception:
                db.session.rollback()
                raise
            finally:
                db.session.remove()
    return run


def init_app(app):
    from . import jobs  # noqa: F401  (registers the tasks)

    huey = make_huey(app.config["TASK_QUEUE_URL"], app.config["TASK_QUEUE_NAME"])
    tasks = {}
    for name, (fn, options) in JOBS.items():
        tasks[name] = huey.task(name=name, **options)(_in_app(app, fn))
    for name, (fn, cron) in PERIODIC.items():
        tasks[name] = huey.periodic_task(crontab(**cron), name=name)(_in_app(app, fn))
    app.extensions["huey"] = huey
    app.extensions["huey_tasks"] = tasks

    # Registered before the request boundary's commit (after_request runs in reverse order), so this runs after
    # it: a task queued by a request only reaches the queue once what it reads is committed.
    @app.after_request
    def enqueue_after_commit(response):
        pending = g.pop("tasks_after_commit", None)
        if pending and response.status_code < 400 and not g.get("rollback_only"):
            for name, args in pending:
                enqueue(name, *args)
        return response


def huey():
    return current_app.extensions["huey"]


def enqueue(name: str, *args):
    """Queue a task now. What it reads must already be committed. A broker that is down is logged, not raised:
    the sweep queues the work again from the database."""
    try:
        current_app.extensions["huey_tasks"][name](*args)
    except Exception:  # noqa: BLE001 - the database row is the record; the sweep retries
        log.exception("Could not queue task %s; the sweep will pick the work up", name)


def enqueue_after_commit(name: str, *args):
    """From a request: queue once the request's transaction is committed (nothing if it rolls back)."""
    if has_request_context():
        g.setdefault("tasks_after_commit", []).append((name, args))
    else:
        enqueue(name, *args)
