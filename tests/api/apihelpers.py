"""Helpers shared by the HTTP API tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import json
import subprocess
import threading
import time

from qa.eval.processes import free_port
from contextlib import contextmanager
from typing import Iterator

import requests


def sse_events(raw: str) -> list[tuple[str | None, str]]:
    """(event, data) pairs of a text/event-stream body; multi-line data joined by newlines."""
    events = []
    for block in raw.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        events.append((event, "\n".join(data)))
    return events


def sse_json(raw: str) -> list[tuple[str | None, object]]:
    return [(e, d if d == "[DONE]" else json.loads(d)) for e, d in sse_events(raw)]


def wait_ready(base: str, proc: subprocess.Popen | None = None, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {proc.stderr.read().decode()[-3000:]}")
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base} not ready after {timeout} s")


@contextmanager
def uvicorn_thread(app) -> Iterator[str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, timeout=60)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)
