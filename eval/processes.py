"""Child processes of benchmarks and tests: a free loopback port, and a clean stop.

>>> port = free_port(); 1024 <= port <= 65535
True
"""

from __future__ import annotations

import socket
import subprocess


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
