"""Real servers on loopback ports: `qa serve` as a process, and uvicorn in a thread.

Talks HTTP (requests, httpx, the openai SDK) to them; every server is stopped in a
``finally``. Uses the hash embedder so no model is loaded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import requests
from apihelpers import sse_json, uvicorn_thread, wait_ready
from conftest import API_KEY, nested_pipeline

from qa.api import create_app
from qa.embed import HashEmbedder
from qa.eval.processes import free_port, stop
from qa.pipeline import Pipeline

pytestmark = pytest.mark.server

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def qa_serve(index_dir: Path, corpus_dir: Path, **env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`qa serve` as a child process on a free loopback port; always terminated."""
    port = free_port()
    environment = {
        **os.environ,
        "QA_INDEX_DIR": str(index_dir), "QA_CORPUS_DIR": str(corpus_dir), "QA_EMBEDDER": "hash",
        "QA_CHUNK_SIZE": "60", "QA_CHUNK_OVERLAP": "10", "QA_HOST": "127.0.0.1", "QA_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", **env,
    }
    proc = subprocess.Popen([sys.executable, "-m", "qa.cli", "serve"], env=environment, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, proc)
        yield base, proc
    finally:
        stop(proc)
        proc.stderr.close()


def test_qa_serve_process_speaks_http_sse_and_openai(pipeline):
    import openai

    with qa_serve(pipeline.index_dir, pipeline.corpus_dir(), QA_API_KEY=API_KEY) as (base, proc):
        assert requests.get(f"{base}/healthz", timeout=10).json() == {"status": "ok"}
        assert requests.get(f"{base}/docs", timeout=10).status_code == 200
        home = requests.get(f"{base}/", timeout=30)  # the chat UI, mounted at /
        assert home.status_code == 200 and "gradio" in home.text.lower()
        # With the UI owning /, unknown API routes still get the API's error shape.
        missing = requests.get(f"{base}/v1/nope", timeout=10)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        wrong = requests.get(f"{base}/v1/retrieve", timeout=10)
        assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"

        hits = requests.post(f"{base}/v1/retrieve", json={"query": "宜昌急救圈", "k": 2}, timeout=30).json()["hits"]
        assert [h["doc_id"] for h in hits][0] == "yichang.txt"

        # One SSE stream, read incrementally as it arrives.
        raw = ""
        with httpx.stream("POST", f"{base}/v1/ask", json={"question": "鄂州建成了多少个红色网格驿站?", "stream": True},
                          timeout=60) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            for text in response.iter_text():
                raw += text
        events = sse_json(raw)
        assert [e for e, _ in events][-2:] == ["final", "done"]
        final = events[-2][1]
        assert "".join(d["text"] for e, d in events if e == "delta") == final["answer"]
        assert final == pipeline.ask("鄂州建成了多少个红色网格驿站?").to_json()

        # The openai SDK, unchanged, pointed at the server.
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="not-needed-for-reads", max_retries=0, timeout=60)
        question = "武汉打造几分钟医疗急救圈?"
        completion = client.chat.completions.create(
            model="qa-gov", messages=[{"role": "user", "content": question}], temperature=0)
        expected = pipeline.ask(question)
        message = completion.choices[0].message
        assert message.content == expected.answer
        assert message.model_extra["citations"] == [c.to_json() for c in expected.citations]
        pieces, last = [], None
        for chunk in client.chat.completions.create(
                model="qa-gov", messages=[{"role": "user", "content": question}], stream=True):
            pieces.append(chunk.choices[0].delta.content or "")
            last = chunk
        assert "".join(pieces) == expected.answer
        assert last.choices[0].finish_reason == "stop"
        assert last.choices[0].delta.model_extra["citations"] == [c.to_json() for c in expected.citations]

        # A write with the key; without it, 401.
        doc = "黄石市应急管理通报\n来源:东楚晚报 2022-05-06\n\n黄石建成森林消防驿站27个。\n".encode()
        refused = requests.post(f"{base}/v1/documents", files={"file": ("huangshi.txt", doc)}, timeout=30)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
        created = requests.post(f"{base}/v1/documents", files={"file": ("huangshi.txt", doc)},
                                headers={"X-API-Key": API_KEY}, timeout=60)
        assert created.status_code == 201, created.text
        hits = requests.post(f"{base}/v1/retrieve", json={"query": "黄石森林消防驿站", "k": 1}, timeout=30).json()["hits"]
        assert hits[0]["doc_id"] == "huangshi.txt"


class GatedEmbedder(HashEmbedder):
    """Passage embedding (i.e. indexing) waits for ``gate``; queries never wait."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()
        self.indexing = threading.Event()

    def embed(self, texts, kind):
        if kind == "passage":
            self.indexing.set()
            assert self.gate.wait(60), "the test never opened the gate"
        return super().embed(texts, kind)


def test_reads_are_answered_while_an_upload_is_indexed(tmp_path, tiny_corpus):
    built = nested_pipeline(tmp_path, tiny_corpus)
    embedder = GatedEmbedder()
    embedder.gate.set()
    pipeline = Pipeline(built.settings.model_copy(update={"allow_writes": True}), embedder=embedder)
    old_ids = {d.doc_id for d in built.documents()}
    with uvicorn_thread(create_app(pipeline.settings, pipeline, mount_ui=False)) as base:
        embedder.gate.clear()
        result = {}
        doc = "黄石市应急管理通报\n来源:东楚晚报 2022-05-06\n\n黄石建成森林消防驿站27个。\n".encode()
        upload = threading.Thread(target=lambda: result.setdefault("r", requests.post(
            f"{base}/v1/documents", files={"file": ("huangshi.txt", doc)}, timeout=120)))
        upload.start()
        try:
            assert embedder.indexing.wait(60), "indexing never started"
            with httpx.Client(base_url=base, timeout=30) as http:
                for query in ("宜昌急救圈", "黄石森林消防驿站", "红色网格驿站"):
                    response = http.post("/v1/retrieve", json={"query": query, "k": 10})
                    assert response.status_code == 200
                    assert {h["doc_id"] for h in response.json()["hits"]} <= old_ids  # the old index
                listed = {d["doc_id"] for d in http.get("/v1/documents").json()["documents"]}
                assert listed == old_ids
                assert http.get("/readyz").status_code == 200
            assert upload.is_alive()  # all of the above happened while the upload was being indexed
        finally:
            embedder.gate.set()
            upload.join(timeout=120)
        assert result["r"].status_code == 201, result["r"].text
        hits = requests.post(f"{base}/v1/retrieve", json={"query": "黄石森林消防驿站", "k": 1}, timeout=30).json()
        assert hits["hits"][0]["doc_id"] == "huangshi.txt"  # and then the new one


def test_a_crash_during_an_upload_loses_nothing_and_leaves_nothing(pipeline):
    index_dir, corpus = pipeline.index_dir, pipeline.corpus_dir()
    before = {d.doc_id: d.content_hash for d in pipeline.documents()}
    # Big enough that hash-embedding it takes seconds: the kill lands mid-indexing.
    big = ("黄石建成森林消防驿站27个,覆盖全部乡镇,应急队伍常备不懈。\n" * 40_000).encode()
    staging = corpus / ".qa-staging"
    with qa_serve(index_dir, corpus, QA_ALLOW_WRITES="1") as (base, proc):
        sender = threading.Thread(target=lambda: _post_quietly(f"{base}/v1/documents", big), daemon=True)
        sender.start()
        deadline = time.monotonic() + 120
        while not list(staging.glob("*.part")):  # staged outside the corpus, indexing starts next
            assert time.monotonic() < deadline, "the upload was never staged"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)
    assert not (corpus / "huge.txt").exists()  # never acknowledged, never in the corpus
    fresh = Pipeline(pipeline.settings, embedder=HashEmbedder())
    assert {d.doc_id: d.content_hash for d in fresh.documents()} == before, \
        "indexing finished before the kill; make the document bigger"
    assert fresh.search("宜昌急救圈", k=1)[0].doc_id == "yichang.txt"
    with qa_serve(index_dir, corpus) as (base, _):
        listed = {d["doc_id"] for d in requests.get(f"{base}/v1/documents", timeout=30).json()["documents"]}
        assert listed == set(before)
        assert not staging.exists()  # the restart discarded the unacknowledged upload
    # A later, unrelated write does not pick the cut-off upload up either.
    fresh.add_document("xiaogan.txt", "孝感市建成应急驿站。\n".encode())
    assert {d.doc_id for d in fresh.documents()} == set(before) | {"xiaogan.txt"}
    assert not list(corpus.glob("*.part")) and not (corpus / "huge.txt").exists()


def _post_quietly(url: str, content: bytes) -> None:
    try:
        requests.post(url, files={"file": ("huge.txt", content)}, timeout=120)
    except requests.RequestException:
        pass  # the server is killed mid-request on purpose
