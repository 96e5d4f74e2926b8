"""qa.eval.processes: free ports and stopping child processes that may not want to stop."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

from qa.eval.processes import free_port, stop


def test_free_port_can_be_bound():
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_stop_terminates_a_willing_child():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert stop(proc, timeout_s=10) == -signal.SIGTERM


def test_stop_kills_a_child_that_ignores_sigterm():
    code = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"  # the handler is in place
    assert stop(proc, timeout_s=0.5) == -signal.SIGKILL
    proc.stdout.close()


def test_stop_of_an_exited_child_returns_its_code():
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait(10)
    assert stop(proc) == 3
