"""A scripted OpenAI-compatible chat-completions server on a loopback port, for tests.

Each request is answered by the script: a function of the request's JSON body that
returns a :class:`Reply` (the completion text, or an HTTP status, or raw bytes, with
an optional delay). Streamed requests get the text as Server-Sent Events chunks of
``chunk`` characters each, so a reply arrives in pieces as from a real model.
Requests (body and headers) are recorded for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


@dataclass(frozen=True)
class Reply:
    text: str = ""
    status: int = 200
    raw: bytes | None = None  # sent as is instead of a completion (garbage)
    delay_s: float = 0.0  # before the first byte
    chunk: int = 7  # characters per streamed piece
    # Streaming only: after ``pause_at`` characters, wait until ``gate`` is set (a test
    # proves the client acted on the first part before the rest was even sent).
    pause_at: int | None = None
    gate: threading.Event | None = None
    garbage_after: int | None = None  # streaming only: a broken chunk after this many characters


class ScriptedLLM:
    """``with ScriptedLLM(script) as llm: ... llm.url ...``"""

    def __init__(self, script: Callable[[dict], Reply] | str):
        self.script = script if callable(script) else (lambda _body, text=script: Reply(text))
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                try:
                    self._answer()
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                outer.requests.append(body)
                outer.headers.append(dict(self.headers))
                if not self.path.endswith("/chat/completions"):
                    self._send(404, b'{"error": "no route"}')
                    return
                reply = outer.script(body)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.raw is not None:
                    self._send(reply.status, reply.raw, "text/html")
                elif reply.status != 200:
                    self._send(reply.status, json.dumps({"error": {"message": "scripted failure"}}).encode())
                elif body.get("stream"):
                    self._stream(reply)
                else:
                    payload = {"id": "x", "object": "chat.completion", "created": 0, "model": body.get("model"),
                               "choices": [{"index": 0, "finish_reason": "stop",
                                            "message": {"role": "assistant", "content": reply.text}}]}
                    self._send(200, json.dumps(payload, ensure_ascii=False).encode())

            def _send(self, status: int, data: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, reply: Reply) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()

                def event(delta: dict, finish: str | None = None) -> None:
                    chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0,
                             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                    self.wfile.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
                    self.wfile.flush()

                event({"role": "assistant"})
                cuts = sorted({*range(0, len(reply.text), reply.chunk), *(
                    [x for x in (reply.pause_at, reply.garbage_after) if x is not None])})
                for a, b in zip(cuts, [*cuts[1:], len(reply.text)]):
                    if a == reply.pause_at and reply.gate is not None:
                        reply.gate.wait(timeout=60)
                    if a == reply.garbage_after:
                        self.wfile.write(b"data: {not json\n\n")
                        self.wfile.flush()
                        return
                    event({"content": reply.text[a:b]})
                event({}, "stop")
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "ScriptedLLM":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def prompt(self, i: int = -1) -> str:
        """All message texts of request ``i``, joined (for assertions on the prompt)."""
        return "\n".join(m["content"] for m in self.requests[i]["messages"])


def passage_number(body: dict, needle: str) -> int:
    """The number of the first prompt passage whose text holds ``needle`` (0: none),
    read from the last user message the way a model reads it."""
    import re

    user = body["messages"][-1]["content"]
    for m in re.finditer(r"^\[(\d+)\] 《[^\n]*\n([^\n]*)", user, re.M):
        if needle in m.group(2):
            return int(m.group(1))
    return 0
