"""bench/cpu.py: the CPU that bench/compare.py charges to a server is the CPU its processes used."""
import os
import subprocess
import sys

import pytest

from bench import cpu

pytestmark = pytest.mark.skipif(not cpu.available(), reason="no /proc on this system")

SPIN = """
import sys, time
sys.stdin.readline()            # wait for the go
end = time.process_time() + 0.3
while time.process_time() < end:
    pass
print("done", flush=True)
sys.stdin.readline()            # stay alive until told
"""


def test_meter_charges_a_busy_child_to_the_server_group_and_not_to_the_generator():
    child = subprocess.Popen([sys.executable, "-c", SPIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        meter = cpu.Meter(child.pid)
        meter.start()
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "done"
        used = meter.stop()
    finally:
        child.communicate("bye\n", timeout=10)  # closes both pipes
    assert set(used) == {"server", "database", "cache", "generator"}
    assert 0.25 <= used["server"] <= 1.0  # the child's 0.3 s, at the kernel's tick resolution
    assert used["generator"] < 0.2  # this process only waited


def test_tree_lists_a_process_and_its_children():
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.readline()"], stdin=subprocess.PIPE)
    try:
        assert child.pid in cpu.tree(os.getpid())
        assert cpu.seconds(child.pid) >= 0
    finally:
        child.communicate(b"\n", timeout=10)
    assert cpu.seconds(child.pid) == 0.0  # gone: counts for nothing
