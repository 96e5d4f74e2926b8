"""``qa bench --part faults``: kill -9 during uploads, and readers while writes run.

1. **Kills.** ``qa serve`` on a copy of a synthetic corpus takes uploads from one
   client; after a random delay (seeded) the server gets SIGKILL, wherever it is:
   parsing, embedding, writing a segment, committing, moving the file. A fresh
   pipeline then opens the index and recovers. Per trial it counts: an index that
   does not load, an acknowledged upload that is gone (lost), an upload indexed
   without a reply (its commit happened, its reply did not: durable, not lost),
   disagreement between the corpus folder and the index, and files left behind.
2. **Readers during writes.** Eight reader threads on ``/v1/retrieve`` for a while
   with no writes, then as long again while a writer uploads documents one after
   another; p50/p95/p99 and errors of both, side by side in the same run.
"""

from __future__ import annotations

import random
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from qa.eval.growth import _env, _new_document, synthetic_corpus
from qa.eval.metrics import latency_summary
from qa.eval.processes import free_port, stop
from qa.index.local.store import finish_cleanup


def _start(index_dir: Path, corpus: Path, embedder: str, key: str) -> tuple[subprocess.Popen, str]:
    import requests

    port = free_port()
    env = _env(index_dir, corpus, embedder, QA_HOST="127.0.0.1", QA_PORT=str(port), QA_API_KEY=key,
               QA_ACCESS_LOG="false")
    proc = subprocess.Popen([sys.executable, "-m", "qa.cli", "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return proc, base
        except requests.RequestException:
            pass
        time.sleep(0.05)
    stop(proc)
    raise RuntimeError("qa serve did not become ready")


def kill_trials(index_dir: Path, corpus: Path, embedder: str, trials: int, seed: int,
                progress: Callable[[str], None]) -> dict:
    import requests

    from qa.embed import get_embedder
    from qa.pipeline import Pipeline
    from qa.settings import Settings

    rng = random.Random(seed)
    settings = Settings(index_dir=index_dir, corpus_dir=corpus, embedder=embedder)
    totals = {"trials": trials, "index_failed_to_load": 0, "acknowledged_lost": 0, "indexed_without_reply": 0,
              "corpus_index_disagreements": 0, "leftover_files": 0, "uploads_acknowledged": 0}
    serial = 0
    for trial in range(trials):
        key = secrets.token_urlsafe(8)
        proc, base = _start(index_dir, corpus, embedder, key)
        acked, sent = [], []
        halt = threading.Event()

        def client():
            nonlocal serial
            while not halt.is_set():
                serial += 1
                name = f"fault-{serial}.txt"
                sent.append(name)
                try:
                    r = requests.post(f"{base}/v1/documents", files={"file": (name, _new_document(serial))},
                                      headers={"X-API-Key": key}, timeout=60)
                    if r.status_code == 201:
                        acked.append(name)
                except requests.RequestException:
                    return

        thread = threading.Thread(target=client, daemon=True)
        thread.start()
        time.sleep(rng.uniform(0.05, 4.0))  # mid-upload and between uploads, with the model or without
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        halt.set()
        thread.join(timeout=60)
        try:
            pipeline = Pipeline(settings, embedder=get_embedder(embedder))
            pipeline.recover()
            indexed = {d.doc_id for d in pipeline.documents()}
            pipeline.search("急救圈", k=1)
            finish_cleanup()  # recovery deletes merged-away folders on a thread: let it finish
        except Exception as exc:  # the figure this bench exists for: count it, keep going
            totals["index_failed_to_load"] += 1
            progress(f"faults: trial {trial}: index did not load: {exc}")
            continue
        totals["uploads_acknowledged"] += len(acked)
        totals["acknowledged_lost"] += len(set(acked) - indexed)
        totals["indexed_without_reply"] += len((indexed & set(sent)) - set(acked))
        files = {p.relative_to(corpus).as_posix() for p in corpus.rglob("*") if p.is_file()
                 and not p.relative_to(corpus).as_posix().startswith(".")}
        totals["corpus_index_disagreements"] += len(files ^ indexed)
        left = [p for p in (corpus / ".qa-staging").glob("*")] if (corpus / ".qa-staging").exists() else []
        left += [p for p in (index_dir / "segments").glob(".tmp-*")]
        totals["leftover_files"] += len(left)
    return totals


def readers_during_writes(index_dir: Path, corpus: Path, embedder: str, seconds: float, clients: int) -> dict:
    import requests

    from qa.eval.bench import gold_questions

    questions = gold_questions()
    key = secrets.token_urlsafe(8)
    proc, base = _start(index_dir, corpus, embedder, key)
    out: dict = {"clients": clients, "seconds": seconds}
    try:
        for phase in ("idle", "during uploads"):
            stop_at = time.monotonic() + seconds
            lat: list[float] = []
            errors = [0]
            uploads = [0]

            def reader(offset: int):
                http = requests.Session()
                i = offset
                while time.monotonic() < stop_at:
                    q = questions[i % len(questions)] + f" {i}"  # distinct: the query cache never answers
                    i += clients
                    t = time.perf_counter()
                    try:
                        ok = http.post(f"{base}/v1/retrieve", json={"query": q, "k": 5}, timeout=60).status_code == 200
                    except requests.RequestException:
                        ok = False
                    lat.append((time.perf_counter() - t) * 1000)
                    errors[0] += not ok

            def writer():
                n = 0
                while time.monotonic() < stop_at:
                    n += 1
                    r = requests.post(f"{base}/v1/documents?replace=true",
                                      files={"file": (f"during-{n % 3}.txt", _new_document(n))},
                                      headers={"X-API-Key": key}, timeout=600)
                    uploads[0] += r.status_code in (200, 201)

            threads = [threading.Thread(target=reader, args=(i,)) for i in range(clients)]
            if phase != "idle":
                threads.append(threading.Thread(target=writer))
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            out[phase] = {**latency_summary(lat), "requests": len(lat), "errors": errors[0], "uploads": uploads[0]}
    finally:
        stop(proc)
    return out


def bench_faults(quick: bool, work: Path, progress: Callable[[str], None], embedder: str = "hash") -> dict:
    from qa.embed import get_embedder
    from qa.pipeline import Pipeline
    from qa.settings import SAMPLE_CORPUS, Settings

    corpus, index_dir = work / "faults-corpus", work / "faults-index"
    synthetic_corpus(SAMPLE_CORPUS, corpus, 20 if quick else 60)
    progress(f"faults: building {embedder} index")
    Pipeline(Settings(index_dir=index_dir, corpus_dir=corpus, embedder=embedder),
             embedder=get_embedder(embedder)).index(corpus)
    progress("faults: kill trials")
    result = {"embedder": embedder,
              "kills": kill_trials(index_dir, corpus, embedder, 4 if quick else 24, seed=5, progress=progress)}
    progress("faults: readers during writes")
    result["readers"] = readers_during_writes(index_dir, corpus, embedder, 5 if quick else 30, 8)
    shutil.rmtree(index_dir, ignore_errors=True)
    return result


def markdown(result: dict) -> list[str]:
    k, r = result["kills"], result["readers"]
    lines = [f"Kill -9 trials: {k['trials']}; index failed to load: {k['index_failed_to_load']}; "
             f"acknowledged uploads lost: {k['acknowledged_lost']} of {k['uploads_acknowledged']}; "
             f"indexed without a reply (committed, reply cut off): {k['indexed_without_reply']}; "
             f"corpus/index disagreements: {k['corpus_index_disagreements']}; files left behind: "
             f"{k['leftover_files']}.", "",
             f"Readers during writes ({r['clients']} clients, {r['seconds']} s a phase, `/v1/retrieve`, distinct "
             f"questions, {result['embedder']} embedder):", "",
             "| phase | p50 ms | p95 ms | p99 ms | requests | errors | uploads done |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for phase in ("idle", "during uploads"):
        p = r.get(phase, {})
        lines.append(f"| {phase} | {p.get('p50')} | {p.get('p95')} | {p.get('p99')} | {p.get('requests')} | "
                     f"{p.get('errors')} | {p.get('uploads')} |")
    return lines
