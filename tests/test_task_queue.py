"""The task queue for real: a ZIP export started under a web server process that is then killed is finished by a
worker process; the sweep hands out again what the database says is unfinished; the worker command."""
import os
import signal
import subprocess
import time
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import select

from lti_tool.extensions import db
from lti_tool.models import ExportJob
from lti_tool.services import transcript_exports
from lti_tool.tasks import jobs
from tests.support.competency_world import World
from tests.support.queue import ROOT, Worker, free_port, process_env, queue_settings, wait_for
from tests.test_transcript_pages import site  # noqa: F401  (fixture: two technicians and a manager, launched)

GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"


def _serve(settings, log):
    """gunicorn in a session of its own (so the whole server can be killed at once); returns (process, url)."""
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([str(GUNICORN), "-w", "1", "-b", f"127.0.0.1:{port}", "lti_tool:create_app()"],
                                cwd=ROOT, env=process_env(settings), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return requests.get(url + "/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_for(up, 60, log.read_text, proc)
    return proc, url


def test_an_export_survives_the_web_process_being_killed(app, site, tmp_path):  # noqa: F811
    manager = site["manager"]
    settings = queue_settings(tmp_path, EXPORT_DIR=str(tmp_path / "exports"))
    server, url = _serve(settings, tmp_path / "web.log")
    worker = None
    try:
        started = requests.post(f"{url}/transcripts/courses/{site['course_id']}/exports",
                                params={"lt": manager.token}, allow_redirects=False, timeout=30,
                                data={"csrf_token": manager.csrf(), "page_size": "letter"})
        assert started.status_code == 303, started.text
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        with app.app_context():
            job = db.session.scalars(select(ExportJob)).one()
            assert job.status == "queued" and job.options["base"] == url
            job_id = job.id
        worker = Worker(settings, tmp_path / "worker.log", "--no-periodic", "--max-delay", "0.5")

        def done():
            with app.app_context():
                return db.session.get(ExportJob, job_id).status in ("done", "failed")

        wait_for(done, 120, worker.output)
        with app.app_context():
            job = db.session.get(ExportJob, job_id)
            assert job.status == "done" and job.done_count == job.total == 2 and job.attempts == 1
            with zipfile.ZipFile(job.file_path) as archive:
                assert len(archive.namelist()) == 2
            assert job.file_path.startswith(str(tmp_path / "exports"))
        progress = manager.get(f"/transcripts/exports/{job.public_id}.json").json()
        assert progress["status"] == "done" and "download_url" in progress
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        if worker is not None:
            worker.stop()
        from huey import RedisHuey

        if settings["TASK_QUEUE_URL"].startswith("redis"):
            RedisHuey(settings["TASK_QUEUE_NAME"], url=settings["TASK_QUEUE_URL"]).storage.flush_all()


@pytest.fixture
def world(make):
    return World(make)


def test_the_sweep_restarts_an_export_whose_worker_died(app, world):
    job = transcript_exports.create_zip_job(world.manager, world.course.id, base="https://tool.example.org")
    job.status, job.attempts = "running", 1
    job.heartbeat_at = datetime.now(UTC) - timedelta(seconds=app.config["EXPORT_STALE_SECONDS"] + 60)
    db.session.commit()
    assert transcript_exports.progress(job)["status"] == "resuming"
    assert not transcript_exports.claim(job.id, now=job.heartbeat_at + timedelta(seconds=1)), "still alive then"
    jobs.sweep()  # memory:// runs what it queues at once
    db.session.expire_all()
    job = db.session.get(ExportJob, job.id)
    assert job.status == "done" and job.attempts == 2 and job.done_count == 2
    assert job.file_path.endswith("-2.zip")
    # Delivered again (the broker redelivers, or a second sweep): nothing is built twice.
    assert transcript_exports.build_zip(job.id) is False
    assert db.session.get(ExportJob, job.id).attempts == 2


def test_an_export_that_keeps_dying_is_reported_failed(app, world):
    job = transcript_exports.create_zip_job(world.manager, world.course.id)
    job.status, job.attempts = "running", transcript_exports.MAX_ATTEMPTS
    job.heartbeat_at = datetime.now(UTC) - timedelta(hours=1)
    db.session.commit()
    assert transcript_exports.unfinished() == []
    assert job.status == "failed" and "stopped several times" in job.error


def test_worker_once_and_refusals(app, world):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["lti", "worker", "--once"])
    assert result.exit_code == 0 and "Periodic jobs done." in result.output, result.output
    result = runner.invoke(args=["lti", "worker"])
    assert result.exit_code == 1 and "memory://" in result.output


def test_a_broker_that_is_down_loses_nothing(app, world, monkeypatch):
    """Queueing fails (Redis unreachable): the request still succeeds, the job row waits for the sweep."""
    from huey import RedisHuey

    broken = RedisHuey("down", url=f"redis://127.0.0.1:{free_port()}/0", results=False)
    tasks = {"build_export": broken.task(name="build_export")(lambda job_id: None)}
    monkeypatch.setitem(app.extensions, "huey_tasks", tasks)
    job = transcript_exports.create_zip_job(world.manager, world.course.id)
    db.session.commit()
    from lti_tool.tasks import enqueue

    started = time.monotonic()
    enqueue("build_export", job.id)
    assert time.monotonic() - started < 30
    assert transcript_exports.unfinished() == [job.id]
