"""kill -9 at every named instant of a write, and restarts after crashes.

Each test stops a real process (`qa index` or `qa serve`) with SIGKILL at a point
of :mod:`qa.faults` and checks what a user relies on: the index loads, the write is
entirely in or entirely out, the corpus folder agrees with the index after a
restart, and no temporary file survives it. Hash embedder, tiny corpora.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from qa.embed import HashEmbedder
from qa.eval.processes import free_port, stop
from qa.index.local.store import finish_cleanup
from qa.pipeline import Pipeline
from qa.settings import Settings

pytestmark = pytest.mark.server

REPO = Path(__file__).resolve().parents[2]


def _settings(tmp_path: Path, corpus: Path) -> Settings:
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", embedder="hash", chunk_size=60,
                    chunk_overlap=10)


def _env(settings: Settings, **extra: str) -> dict:
    return {**os.environ, "QA_INDEX_DIR": str(settings.index_dir), "QA_CORPUS_DIR": str(settings.corpus_dir),
            "QA_EMBEDDER": "hash", "QA_CHUNK_SIZE": "60", "QA_CHUNK_OVERLAP": "10",
            "GRADIO_ANALYTICS_ENABLED": "False", **extra}


def _wait_for(path: Path, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, f"the process exited ({proc.returncode}) before reaching {path.name}"
        assert time.monotonic() < deadline, f"never reached {path.name}"
        time.sleep(0.02)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _leftovers(settings: Settings) -> list[str]:
    """Temporary files a crash could leave: segment temp folders, staged uploads, markers
    (once recovery's background deletion of the folders it moved aside has finished)."""
    finish_cleanup()
    index, corpus = Path(settings.index_dir), Path(settings.corpus_dir)
    found = [p.name for p in (index / "segments").glob(".tmp-*")] if (index / "segments").exists() else []
    found += [p.name for p in index.glob(".paused-*")]
    staging = corpus / ".qa-staging"
    if staging.exists():
        found += [p.name for p in staging.iterdir()]
    return found


def _documents(settings: Settings) -> dict[str, str]:
    return {d.doc_id: d.content_hash for d in Pipeline(settings, embedder=HashEmbedder()).documents()}


@pytest.mark.parametrize("point", ["segment-written", "before-commit"])
def test_qa_index_killed_mid_write_leaves_the_previous_index(tmp_path, tiny_corpus, point):
    settings = _settings(tmp_path, tiny_corpus)
    Pipeline(settings, embedder=HashEmbedder()).index(tiny_corpus)
    before = _documents(settings)
    (tiny_corpus / "huangshi.txt").write_text("黄石市打造“20分钟”急救圈。\n", encoding="utf-8")
    (tiny_corpus / "wuhan.txt").write_text("武汉市改写了这份文件。\n", encoding="utf-8")
    (tiny_corpus / "ezhou.txt").unlink()
    proc = subprocess.Popen([sys.executable, "-m", "qa.cli", "index", str(tiny_corpus)],
                            env=_env(settings, QA_TEST_PAUSE=point), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(Path(settings.index_dir) / f".paused-{point}", proc)
    finally:
        _kill(proc)
    assert _documents(settings) == before  # entirely out: loads, and nothing of the write shows
    (Path(settings.index_dir) / f".paused-{point}").unlink()
    pipeline = Pipeline(settings, embedder=HashEmbedder())
    report = pipeline.index(tiny_corpus)  # the next run does the whole write, and cleans up
    assert report.added == ("huangshi.txt",) and report.changed == ("wuhan.txt",) and report.deleted == ("ezhou.txt",)
    assert pipeline.search("黄石急救圈", k=1)[0].doc_id == "huangshi.txt"
    assert _leftovers(settings) == []
    on_disk = {int(p.name) for p in (Path(settings.index_dir) / "segments").iterdir()}
    import sqlite3

    with sqlite3.connect(Path(settings.index_dir) / "catalog.sqlite3") as conn:
        named = {r[0] for r in conn.execute("SELECT seg FROM segments UNION SELECT seg FROM retired")}
    assert on_disk == named  # nothing of the crashed write is left on disk


@pytest.mark.parametrize("point", ["segment-written", "before-commit", "after-commit"])
def test_qa_serve_killed_mid_upload_agrees_with_its_corpus_after_restart(tmp_path, tiny_corpus, point):
    settings = _settings(tmp_path, tiny_corpus)
    Pipeline(settings, embedder=HashEmbedder()).index(tiny_corpus)
    before = _documents(settings)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "qa.cli", "serve"], cwd=REPO,
                            env=_env(settings, QA_TEST_PAUSE=point, QA_ALLOW_WRITES="1", QA_HOST="127.0.0.1",
                                     QA_PORT=str(port)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    marker = (Path(settings.index_dir) if point != "after-commit" else tiny_corpus) / f".paused-{point}"

    def upload():
        try:
            requests.post(f"{base}/v1/documents", files={"file": ("huangshi.txt", "黄石市打造急救圈。\n".encode())},
                          timeout=120)
        except requests.RequestException:
            pass  # the server is killed mid-request on purpose

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "qa serve did not start"
            time.sleep(0.05)
        sender = threading.Thread(target=upload, daemon=True)
        sender.start()
        _wait_for(marker, proc)
    finally:
        _kill(proc)
    marker.unlink()
    # The restart applies the rule of qa.staging: a write never acknowledged did not
    # happen, even when its index commit went through ("after-commit").
    restarted = Pipeline(settings, embedder=HashEmbedder())
    restarted.recover()
    after = _documents(settings)
    assert after == before and not (tiny_corpus / "huangshi.txt").exists()
    assert _leftovers(settings) == []
    # A later, unrelated write never indexes anything the crash left behind.
    restarted.add_document("xiaogan.txt", "孝感市建成应急驿站。\n".encode())
    assert set(_documents(settings)) == set(after) | {"xiaogan.txt"}
    corpus_files = {p.relative_to(tiny_corpus).as_posix() for p in tiny_corpus.rglob("*") if p.is_file()}
    assert corpus_files == set(_documents(settings))  # corpus folder and index agree


def test_restart_removes_orphans_of_crashed_writes(tmp_path, tiny_corpus):
    settings = _settings(tmp_path, tiny_corpus)
    pipeline = Pipeline(settings, embedder=HashEmbedder())
    pipeline.index(tiny_corpus)
    index = Path(settings.index_dir)
    (index / "segments" / ".tmp-00000042").mkdir()
    (index / "segments" / "00000042").mkdir()  # complete on disk, never committed
    (index / "segments" / "00000042" / "chunk_vectors.npy").write_bytes(b"\0" * 1024)
    staging = tiny_corpus / ".qa-staging"
    staging.mkdir()
    (staging / "0123456789abcdef.part").write_bytes(b"half an upload")
    (staging / "fedcba9876543210.json.tmp").write_text("{", encoding="utf-8")
    before = _documents(settings)
    Pipeline(settings, embedder=HashEmbedder()).recover()
    assert _leftovers(settings) == []
    assert not (index / "segments" / "00000042").exists()
    assert _documents(settings) == before


def test_two_writers_in_two_processes_take_turns(tmp_path, tiny_corpus):
    settings = _settings(tmp_path, tiny_corpus)
    server_side = Pipeline(settings, embedder=HashEmbedder())
    server_side.index(tiny_corpus)
    for i in range(30):  # enough for the other process's build to take a while
        (tiny_corpus / f"bulk{i}.txt").write_text(f"孝感第{i}号文件。孝感打造{i}分钟急救圈。\n" * 50, encoding="utf-8")
    other = subprocess.Popen([sys.executable, "-m", "qa.cli", "index", str(tiny_corpus)], env=_env(settings),
                             cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        uploaded = []
        for i in range(5):  # uploads while the other process indexes the folder
            name, _ = server_side.add_document(f"upload{i}.txt", f"黄石第{i}号通知。\n".encode())
            uploaded.append(name)
        assert other.wait(timeout=300) == 0, other.stderr.read().decode()
    finally:
        stop(other)
        other.stderr.close()
    indexed = set(_documents(settings))
    assert set(uploaded) <= indexed and {f"bulk{i}.txt" for i in range(30)} <= indexed
    assert Pipeline(settings, embedder=HashEmbedder()).index(tiny_corpus).is_noop  # nothing was lost between them


@pytest.mark.parametrize("point", ["before-commit", "after-commit"])
@pytest.mark.parametrize("op", ["replace", "delete"])
def test_a_cut_off_replacement_or_deletion_leaves_the_old_document(tmp_path, tiny_corpus, point, op):
    settings = _settings(tmp_path, tiny_corpus)
    Pipeline(settings, embedder=HashEmbedder()).index(tiny_corpus)
    before = _documents(settings)
    original = (tiny_corpus / "wuhan.txt").read_bytes()
    script = ("from qa.pipeline import Pipeline; from qa.settings import Settings; p = Pipeline(Settings()); "
              + ("p.add_document('wuhan.txt', '武汉市改写了这份文件。\\n'.encode())" if op == "replace"
                 else "p.delete_document('wuhan.txt')"))
    proc = subprocess.Popen([sys.executable, "-c", script], env=_env(settings, QA_TEST_PAUSE=point), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = (Path(settings.index_dir) if point == "before-commit" else tiny_corpus) / f".paused-{point}"
    try:
        _wait_for(marker, proc)
    finally:
        _kill(proc)
    marker.unlink()
    Pipeline(settings, embedder=HashEmbedder()).recover()
    assert _documents(settings) == before  # the old version is back in the index
    assert (tiny_corpus / "wuhan.txt").read_bytes() == original and _leftovers(settings) == []
