"""The cross-check's process (crosscheck.Worker) against what a kernel goes through: an
interrupt (SIGINT to the kernel's whole process group) and being killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

# A kernel's stand-in: it survives an interrupt as a kernel does (its handler, not SIG_IGN,
# which a spawned process would inherit), spawns the worker, waits until it is up (imports
# done), says the worker's pid, and waits to be killed.
PARENT = """
import os, signal, sys, time
signal.signal(signal.SIGINT, lambda *_: None)
from pipelines.analysis import crosscheck
worker = crosscheck.Worker()
print(worker._pool.submit(os.getpid).result(timeout=120), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purpose
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_worker_ignores_an_interrupt_and_ends_with_a_killed_kernel() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
        os.killpg(parent.pid, signal.SIGINT)  # what interrupting a kernel sends
        time.sleep(1.0)
        assert _alive(child), "the worker died of the kernel's interrupt"
        parent.kill()  # SIGKILL: no exit handler runs in the kernel
        parent.wait()
        assert _gone_within(child, 15), "the worker outlived its killed kernel"
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.wait()
    err = parent.stderr.read()
    assert "Traceback" not in err, err  # the child shares the kernel's stderr (the notebook's)
