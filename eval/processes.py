"""Child processes of benchmarks and tests: a free loopback port, and a clean stop.

>>> port = free_port(); 1024 <= port <= 65535
True
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, timeout_s: float = 20) -> int | None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout_s``; its exit code.

    A server gets the chance to finish its shutdown (uvicorn's graceful stop) but can
    never hang the caller.
    """
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout_s)
    return proc.returncode


@dataclass(frozen=True)
class Finished:
    """How a measured child process ended."""

    wall_s: float
    peak_rss_mb: float  # the child's own ru_maxrss
    exit_code: int
    stderr_tail: str
    timed_out: bool


def run_measured(cmd: list[str], timeout_s: float, env: dict | None = None) -> Finished:
    """Run ``cmd`` to its end (killed after ``timeout_s``), with its wall time and peak RSS.

    stderr goes to a file, not a pipe: a chatty child could otherwise fill the pipe
    and stall.
    """
    t = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + timeout_s
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                timed_out = True
                break
            time.sleep(0.1)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode("utf-8", "replace")[-400:]
    return Finished(time.perf_counter() - t, usage.ru_maxrss / 1024, proc.returncode, tail, timed_out)
