"""Two `qa serve` processes against one Milvus Lite server on a loopback port.

The replicas keep nothing of the index themselves (each has its own empty index
folder): a document uploaded through one is retrieved, and shown, through the other.
Hash embedder; every process is stopped in a ``finally``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import requests
from apihelpers import wait_ready
from conftest import API_KEY

pytest.importorskip("milvus_lite", reason="the milvus extra is not installed: pip install 'qa-gov[milvus]'")

from qa.embed import HashEmbedder  # noqa: E402
from qa.eval.processes import free_port, stop  # noqa: E402
from qa.index.milvus import connect  # noqa: E402
from qa.errors import StoreUnavailableError  # noqa: E402
from qa.pipeline import Pipeline  # noqa: E402
from qa.settings import Settings  # noqa: E402

pytestmark = pytest.mark.server

REPO = Path(__file__).resolve().parents[2]
HASH = {"QA_EMBEDDER": "hash", "QA_CHUNK_SIZE": "60", "QA_CHUNK_OVERLAP": "10"}


@contextmanager
def milvus_lite_server(db_file: Path) -> Iterator[str]:
    """`python -m qa.index.milvus serve` as a child process; yields its URI."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "qa.index.milvus", "serve", str(db_file), "--port", str(port)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"milvus-lite server exited: {proc.stdout.read()[-2000:]}"
            try:
                connect(uri, timeout=2).close()
                break
            except StoreUnavailableError:
                assert time.monotonic() < deadline, "milvus-lite server not reachable after 120 s"
                time.sleep(0.3)
        yield uri
    finally:
        stop(proc)
        proc.stdout.close()


@contextmanager
def replica(tmp_path: Path, name: str, uri: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, **HASH, "QA_STORE": "milvus", "QA_MILVUS_URI": uri, "QA_INDEX_DIR": str(tmp_path / name),
           "QA_HOST": "127.0.0.1", "QA_PORT": str(port), "QA_API_KEY": API_KEY, "GRADIO_ANALYTICS_ENABLED": "False",
           "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "qa.cli", "serve"], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, proc)
        yield base
    finally:
        stop(proc)
        proc.stderr.close()


def test_an_upload_through_one_replica_is_retrieved_through_the_other(tmp_path, tiny_corpus):
    with ExitStack() as stack:
        uri = stack.enter_context(milvus_lite_server(tmp_path / "shared.db"))
        settings = Settings(corpus_dir=tiny_corpus, index_dir=tmp_path / "indexer", embedder="hash", chunk_size=60,
                            chunk_overlap=10, store="milvus", milvus_uri=uri)
        Pipeline(settings, embedder=HashEmbedder()).index(tiny_corpus)
        a = stack.enter_context(replica(tmp_path, "a", uri))
        b = stack.enter_context(replica(tmp_path, "b", uri))
        assert not any((tmp_path / "b").glob("**/*.sqlite3"))  # replica b keeps no index of its own
        docs = requests.get(f"{b}/v1/documents", timeout=30).json()
        assert sorted(d["doc_id"] for d in docs["documents"]) == ["ezhou.txt", "wuhan.txt", "yichang.txt"]

        text = "黄石市打造“20分钟”急救圈。黄石建成矿山公园。\n"
        up = requests.post(f"{a}/v1/documents", headers={"X-API-Key": API_KEY},
                           files={"file": ("huangshi.txt", text.encode(), "text/plain")}, timeout=120)
        assert up.status_code == 201, up.text

        # Replica b sees the commit on its next state check (at most a quarter second).
        question = {"query": "黄石 矿山公园", "k": 1}
        deadline = time.monotonic() + 30
        while True:
            hits = requests.post(f"{b}/v1/retrieve", json=question, timeout=30).json()["hits"]
            if hits and hits[0]["doc_id"] == "huangshi.txt":
                break
            assert time.monotonic() < deadline, f"replica b never saw the upload: {hits}"
            time.sleep(0.3)
        doc = requests.get(f"{b}/v1/documents/huangshi.txt", timeout=30).json()
        assert doc["text"][hits[0]["start"]:hits[0]["end"]] == hits[0]["text"]
        answer = requests.post(f"{b}/v1/ask", json={"question": "黄石打造多少分钟急救圈?"}, timeout=60).json()
        # Whether the hash embedder's evidence is strong enough to answer is the answer
        # stage's business; the store's is that the evidence comes from the upload.
        assert answer["hits"][0]["doc_id"] == "huangshi.txt"
        for citation in answer["citations"]:
            assert citation["doc_id"] == "huangshi.txt"
            assert doc["text"][citation["start"]:citation["end"]] == citation["quote"]

        gone = requests.delete(f"{b}/v1/documents/huangshi.txt", headers={"X-API-Key": API_KEY}, timeout=120)
        assert gone.status_code == 200, gone.text
        deadline = time.monotonic() + 30
        while "huangshi.txt" in {d["doc_id"] for d in requests.get(f"{a}/v1/documents", timeout=30).json()["documents"]}:
            assert time.monotonic() < deadline, "replica a still lists the deleted document"
            time.sleep(0.3)


def test_a_replica_whose_milvus_goes_away_answers_503(tmp_path, tiny_corpus):
    with ExitStack() as stack:
        server = milvus_lite_server(tmp_path / "shared.db")
        uri = server.__enter__()
        try:
            settings = Settings(corpus_dir=tiny_corpus, index_dir=tmp_path / "indexer", embedder="hash",
                                chunk_size=60, chunk_overlap=10, store="milvus", milvus_uri=uri)
            Pipeline(settings, embedder=HashEmbedder()).index(tiny_corpus)
            a = stack.enter_context(replica(tmp_path, "a", uri))
            assert requests.post(f"{a}/v1/retrieve", json={"query": "急救圈"}, timeout=30).status_code == 200
        finally:
            server.__exit__(None, None, None)
        time.sleep(0.5)  # past the replica's state check interval: the next request asks Milvus
        reply = requests.post(f"{a}/v1/retrieve", json={"query": "宜昌急救圈"}, timeout=120)
        assert reply.status_code == 503, reply.text
        error = reply.json()["error"]
        assert error["code"] == "store_unavailable" and uri in error["message"]
