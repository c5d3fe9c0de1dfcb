"""The queue and mail for real: a local SMTP server (aiosmtpd) that keeps what it receives, and `flask lti worker`
processes on the test database with a broker of their own (Redis on PostgreSQL runs, a SQLite file otherwise)."""
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from email import message_from_bytes, policy
from pathlib import Path

from aiosmtpd.controller import Controller

from tests.conftest import DATABASE_URL, IS_POSTGRES

ROOT = Path(__file__).resolve().parent.parent.parent
FLASK = ROOT / ".venv" / "bin" / "flask"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpSink:
    """A real SMTP server on a free port; `messages` holds every message received (parsed)."""

    def __init__(self):
        self.messages, self.envelopes, self._lock = [], [], threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            self.envelopes.append(envelope)
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def stop(self):
        self.controller.stop()


def broker_url(tmp_path) -> str:
    """Redis (a queue name of this run's own, so parallel runs never collide) on PostgreSQL, else a SQLite file."""
    if IS_POSTGRES:
        return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    return f"sqlite:///{tmp_path}/tasks.sqlite3"


def queue_settings(tmp_path, **extra) -> dict:
    return {"TASK_QUEUE_URL": broker_url(tmp_path), "TASK_QUEUE_NAME": f"test-{uuid.uuid4().hex[:12]}", **extra}


def process_env(settings: dict) -> dict:
    env = dict(os.environ, LTI_TOOL_ENV="testing", DATABASE_URL=DATABASE_URL, PROXY_FIX_HOPS="0")
    env.update({k: str(v) for k, v in settings.items()})
    return env


class Worker:
    """`flask --app lti_tool lti worker` in a process of its own."""

    def __init__(self, settings: dict, log: Path, *args):
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen([str(FLASK), "--app", "lti_tool", "lti", "worker", *args], cwd=ROOT,
                                         env=process_env(settings), stdout=out, stderr=subprocess.STDOUT)
        wait_for(lambda: "Huey consumer started" in log.read_text(), 30, self.output, self.proc)

    def output(self) -> str:
        return self.log.read_text()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_for(condition, seconds: float, describe=lambda: "", proc=None):
    """Poll `condition` until true (bounded); fails with `describe()` on timeout or when `proc` exits."""
    deadline = time.monotonic() + seconds
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}:\n{describe()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s:\n{describe()}")
        time.sleep(0.1)
