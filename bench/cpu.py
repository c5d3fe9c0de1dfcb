"""CPU seconds used by groups of processes, read from /proc (Linux): where a benchmark's CPU goes.

bench/compare.py charges each server's rounds to its gunicorn workers, the database, the cache and the load
generator, so a throughput ratio comes with its cause: on a 2-CPU machine every process shares the same CPUs, and
a server that costs its database more CPU per pair serves fewer pairs even when its own workers cost the same.
Elsewhere (no /proc) every figure is None and the caller prints nothing.
"""
import os
import time
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def available() -> bool:
    return (PROC / "self" / "stat").exists()


def _stat(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:  # gone, or not ours to read
        return None
    return text.rsplit(")", 1)[1].split()  # the command name, in parentheses, may hold spaces


def seconds(pid: int) -> float:
    """utime + stime of one process (0 when it is gone)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS if fields else 0.0


def tree(root: int) -> list[int]:
    """root and its children (gunicorn's arbiter and workers)."""
    children = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and int(fields[1]) == root:
                children.append(int(entry.name))
    return [root, *children]


def named(*names: str) -> list[int]:
    """Processes whose command (/proc/<pid>/comm) is one of names: "postgres", "redis-server"."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


class Meter:
    """CPU seconds per group between start() and stop(): {"server", "database", "cache", "generator"}; the
    generator is this process. Groups are listed again at stop(), so a database backend or worker started during
    the measurement counts in full; one that exited during it is lost (pooled connections make that rare)."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid

    def _groups(self) -> dict:
        return {"server": tree(self.server_pid), "database": named("postgres"), "cache": named("redis-server")}

    def _now(self) -> dict:
        return {name: {pid: seconds(pid) for pid in pids} for name, pids in self._groups().items()}

    def start(self) -> None:
        self._started, self._cpu = self._now(), time.process_time()

    def stop(self) -> dict:
        used = {name: sum(value - self._started[name].get(pid, 0.0) for pid, value in per_pid.items())
                for name, per_pid in self._now().items()}
        return {**used, "generator": time.process_time() - self._cpu}
