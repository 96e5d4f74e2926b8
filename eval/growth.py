"""``qa bench --part growth``: what each path costs as the corpus grows (100 → 10,000 documents).

A synthetic corpus is made from the four short sample documents: copy ``i`` of a
document gets a unique title line and its body's digits re-drawn (seeded), so no
two documents are identical and every copy still reads like its source. For each
size, every figure is taken in processes of its own, so memory is each one's own:

* **build**: ``qa index`` on the folder (wall time, peak RSS), then a no-op re-index;
* **server**: ``qa serve`` on the index: seconds from start to ``/readyz`` 200,
  ``/v1/retrieve`` and ``/v1/ask`` latency (one client, gold questions), one upload,
  one replacement and one deletion over HTTP, and the server's peak RSS (VmHWM);
* **in process**: search and ask latency, the upload's cost beyond embedding its
  own text, and recall@10 of the dense search (ANN segments) against exact search
  over every stored vector;
* **disk**: bytes of the index folder against bytes of the corpus.

The default embedder is ``hash`` (model-free: every figure is the system's own cost);
``--growth-embedder`` adds one point with the real model on the bundled sample corpus.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from qa.eval.metrics import latency_summary
from qa.eval.processes import free_port, run_measured, stop

SIZES = (100, 200, 1_000, 2_000, 10_000)
QUICK_SIZES = (20, 60)
_DIGIT = re.compile(r"\d")


def synthetic_corpus(source: Path, target: Path, n: int, seed: int = 11) -> int:
    """Write ``n`` documents made from the short sample documents; returns their bytes.

    >>> import tempfile
    >>> src, dst = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp()) / "c"
    >>> _ = (src / "a.txt").write_text("标题\\n2022年\\n正文有10分钟。\\n", encoding="utf-8")
    >>> synthetic_corpus(src, dst, 2) > 0, sorted(p.name for p in dst.iterdir())
    (True, ['00000.txt', '00001.txt'])
    >>> (dst / "00001.txt").read_text(encoding="utf-8").splitlines()[:2]
    ['第1号 标题', '2022年']
    """
    files = sorted(p for p in Path(source).iterdir() if p.suffix == ".txt")
    files = sorted(files, key=lambda p: p.stat().st_size)[: max(1, min(4, len(files)))]
    texts = [p.read_text(encoding="utf-8") for p in files]
    rng = random.Random(seed)
    target.mkdir(parents=True, exist_ok=True)
    total = 0
    for i in range(n):
        lines = texts[i % len(texts)].splitlines()
        head, body = lines[:2], lines[2:]
        head[0] = f"第{i}号 {head[0]}"  # a unique title; the dateline stays readable
        body = [_DIGIT.sub(lambda _: str(rng.randrange(10)), line) for line in body]
        data = "\n".join(head + body).encode("utf-8") + b"\n"
        (target / f"{i:05d}.txt").write_bytes(data)
        total += len(data)
    return total


def _du(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def _run(cmd: list[str], env: dict, timeout_s: float) -> tuple[float, float, int, str]:
    """Run a command; ``(wall s, peak RSS MB, exit code, stderr tail)``."""
    done = run_measured(cmd, timeout_s, env=env)
    return done.wall_s, done.peak_rss_mb, done.exit_code, done.stderr_tail


def _env(index_dir: Path, corpus: Path, embedder: str, **extra: str) -> dict:
    return {**os.environ, "QA_INDEX_DIR": str(index_dir), "QA_CORPUS_DIR": str(corpus), "QA_EMBEDDER": embedder,
            "GRADIO_ANALYTICS_ENABLED": "False", **extra}


def _vm_kb(pid: int, field: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return float("nan")


def _new_document(i: int) -> bytes:
    return (f"黄石市第{i}号通知\n来源:黄石日报 2023年05月0{i % 9 + 1}日\n\n"
            + "黄石建成森林消防驿站27个,覆盖全部乡镇,应急队伍常备不懈。打造“20分钟”急救圈。\n" * 30).encode()


def bench_server(index_dir: Path, corpus: Path, embedder: str, questions: Sequence[str], requests_n: int,
                 asks_n: int, writes_n: int) -> dict:
    import requests

    port, key = free_port(), secrets.token_urlsafe(12)
    env = _env(index_dir, corpus, embedder, QA_HOST="127.0.0.1", QA_PORT=str(port), QA_API_KEY=key,
               QA_ACCESS_LOG="false")
    base = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "qa.cli", "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    out: dict = {}
    try:
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                return {"error": f"qa serve exited with {proc.returncode}"}
            try:
                if requests.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                return {"error": "not ready after 600 s"}
            time.sleep(0.05)
        out["ready_s"] = round(time.perf_counter() - t0, 3)
        out["rss_ready_mb"] = round(_vm_kb(proc.pid, "VmRSS") / 1024, 1)
        http = requests.Session()
        lat = []
        for i in range(requests_n):
            q = questions[i % len(questions)]
            t = time.perf_counter()
            r = http.post(f"{base}/v1/retrieve", json={"query": q, "k": 5}, timeout=120)
            lat.append((time.perf_counter() - t) * 1000)
            r.raise_for_status()
        out["retrieve_ms"] = latency_summary(lat)
        lat = []
        for i in range(asks_n):
            t = time.perf_counter()
            r = http.post(f"{base}/v1/ask", json={"question": questions[i % len(questions)]}, timeout=120)
            lat.append((time.perf_counter() - t) * 1000)
            r.raise_for_status()
        out["ask_ms"] = latency_summary(lat)
        headers = {"X-API-Key": key}
        timings: dict[str, list[float]] = {"upload": [], "replace": [], "delete": []}
        for i in range(writes_n):
            name = f"growth-{i}.txt"
            for op in ("upload", "replace", "delete"):
                t = time.perf_counter()
                if op == "delete":
                    r = http.delete(f"{base}/v1/documents/{name}", headers=headers, timeout=600)
                else:
                    r = http.post(f"{base}/v1/documents" + ("?replace=true" if op == "replace" else ""),
                                  files={"file": (name, _new_document(i + (op == "replace")))},
                                  headers=headers, timeout=600)
                timings[op].append(time.perf_counter() - t)
                if r.status_code >= 300:
                    out.setdefault("write_errors", []).append(f"{op} {r.status_code}: {r.text[:200]}")
        out["write_s"] = {op: round(statistics.median(v), 3) for op, v in timings.items() if v}
        out["peak_rss_mb"] = round(_vm_kb(proc.pid, "VmHWM") / 1024, 1)
    finally:
        stop(proc)
    return out


def worker(cfg: dict) -> dict:
    """In-process figures, in a child process: latency, upload beyond embedding, ANN recall."""
    from qa.eval.bench import TimedEmbedder
    from qa.embed import get_embedder
    from qa.pipeline import Pipeline
    from qa.settings import Settings

    from qa.serving import limit_blas_threads

    settings = Settings(index_dir=cfg["index_dir"], corpus_dir=cfg["corpus"], embedder=cfg["embedder"])
    limit_blas_threads(settings.blas_threads)  # as qa serve does
    embedder = TimedEmbedder(get_embedder(cfg["embedder"]))
    pipeline = Pipeline(settings, embedder=embedder)
    questions = cfg["questions"]
    t = time.perf_counter()
    pipeline.search(questions[0], k=5)
    out: dict = {"first_search_s": round(time.perf_counter() - t, 3)}
    for name, call in (("search", lambda q: pipeline.search(q, k=5)), ("ask", lambda q: pipeline.ask(q))):
        lat, embed = [], []
        for i in range(cfg["queries"]):
            q = questions[i % len(questions)]
            before = embedder.seconds
            t = time.perf_counter()
            call(q)
            lat.append((time.perf_counter() - t) * 1000)
            embed.append((embedder.seconds - before) * 1000)
        out[f"{name}_ms"] = latency_summary(lat)
        out[f"{name}_beyond_embedding_ms"] = latency_summary([a - b for a, b in zip(lat, embed)])
    uploads = []
    for i in range(3):
        before = embedder.seconds
        t = time.perf_counter()
        pipeline.add_document(f"growth-inproc-{i}.txt", _new_document(i))
        total = time.perf_counter() - t
        uploads.append((total, total - (embedder.seconds - before)))
        pipeline.delete_document(f"growth-inproc-{i}.txt")
    out["upload_s"] = round(statistics.median(u[0] for u in uploads), 3)
    out["upload_beyond_embedding_s"] = round(statistics.median(u[1] for u in uploads), 3)
    out["recall@10"] = ann_recall(pipeline, questions[: cfg["recall_queries"]])
    # The same with every segment searched through IVF, however small (on a small
    # corpus the store searches exactly, and recall is 1 by definition).
    from qa.index.local.segments import _build_ivf, _slices, IVF_NPROBE

    with pipeline.store.reading():
        for segment in pipeline.store.snapshot().segments:
            for kind in ("chunks", "sentences"):
                if kind not in segment.ann and len(segment.vectors(kind)):
                    vectors = np.asarray(segment.vectors(kind), dtype=np.float32)
                    index = _build_ivf(len(vectors), vectors.shape[1], _slices(vectors))
                    index.nprobe = min(IVF_NPROBE, index.nlist)
                    segment.ann[kind] = index
    out["recall@10_ivf_everywhere"] = ann_recall(pipeline, questions[: cfg["recall_queries"]])
    return out


def _exact_dense(snapshot, vector: np.ndarray) -> np.ndarray:
    """What ``snapshot.dense_scores`` gives every chunk (its own similarity or its best
    sentence's), by full passes over each segment's mapped vectors: the reference the
    ANN path is scored against, computed the brute way (a local-store snapshot)."""
    q = np.asarray(vector, dtype=np.float32)
    parts = []
    for seg in snapshot.segments:
        best = np.asarray(seg.a.chunk_vectors) @ q
        sims = np.asarray(seg.a.sentence_vectors) @ q
        ptr, idx = seg.a.cs_ptr, seg.a.cs_idx
        filled = np.flatnonzero(np.diff(ptr) > 0)
        if len(filled):
            best[filled] = np.maximum(best[filled], np.maximum.reduceat(sims[idx], ptr[filled]))
        parts.append(best)
        seg.release()  # a full pass maps every page: give them back
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def ann_recall(pipeline, questions: Sequence[str], k: int = 10) -> dict:
    """Dense top-``k`` chunks through the store (ANN segments) against exact scores of
    every live chunk. ``strict``: share of the exact top-k ids found; ``tie_aware``:
    share of found chunks scoring at least the exact k-th score (copies of one text
    tie, and any k of them are equally right)."""
    strict, tied = [], []
    with pipeline.store.reading():
        snapshot = pipeline.store.snapshot()
        ids, _ = snapshot.all_chunks()
        retriever = pipeline.retriever()
        for q in questions:
            vector = retriever.question_vector(q)
            found = retriever.retrieve(q, k=k, mode="dense", query_vector=vector)
            exact = _exact_dense(snapshot, vector)[ids]
            top = np.argsort(-exact, kind="stable")[:k]
            kth = float(exact[top[-1]])
            strict.append(len(set(ids[top].tolist()) & set(found.positions)) / k)
            tied.append(sum(1 for h in found.hits if (h.dense_score or -1.0) >= kth - 1e-6) / k)
    return {"queries": len(questions), "strict": round(float(np.mean(strict)), 4),
            "tie_aware": round(float(np.mean(tied)), 4)}


def bench_growth(quick: bool, work: Path, progress: Callable[[str], None], sizes: Sequence[int] | None = None,
                 real_embedder: str | None = None) -> dict:
    from qa.eval.bench import gold_questions
    from qa.settings import SAMPLE_CORPUS

    sizes = tuple(sizes or (QUICK_SIZES if quick else SIZES))
    questions = gold_questions()
    points = [(n, "hash") for n in sizes]
    if real_embedder:
        points.append((0, real_embedder))  # 0: the bundled sample corpus itself
    rows = []
    for n, embedder in points:
        progress(f"growth: {n or 'the sample'} documents, {embedder}")
        folder = work / f"growth-{n}-{embedder.replace(':', '-')}"
        corpus, index_dir = folder / "corpus", folder / "index"
        if n == 0:
            shutil.copytree(SAMPLE_CORPUS, corpus)
            corpus_bytes = _du(corpus)
        else:
            corpus_bytes = synthetic_corpus(SAMPLE_CORPUS, corpus, n)
        env = _env(index_dir, corpus, embedder)
        row: dict = {"documents": n or "sample (5)", "embedder": embedder, "corpus_mb": round(corpus_bytes / 1e6, 2)}
        wall, rss, code, err = _run([sys.executable, "-m", "qa.cli", "index", str(corpus)], env, 6 * 3600)
        if code != 0:
            rows.append({**row, "error": f"qa index exited {code}: {err}"})
            continue
        row["build_s"], row["build_peak_rss_mb"] = round(wall, 2), round(rss, 1)
        from qa.index.local.store import RETIRE_AFTER_S

        time.sleep(RETIRE_AFTER_S)  # so the re-index's clean-up may remove merged-away segments
        wall, _, _, _ = _run([sys.executable, "-m", "qa.cli", "index", str(corpus)], env, 3600)
        row["reindex_noop_s"] = round(wall, 3)
        row["index_mb"] = round(_du(index_dir) / 1e6, 1)
        row["index_over_corpus"] = round(_du(index_dir) / max(corpus_bytes, 1), 1)
        with tempfile.TemporaryDirectory() as tmp:
            out_path = Path(tmp) / "out.json"
            cfg = {"index_dir": str(index_dir), "corpus": str(corpus), "embedder": embedder,
                   "questions": questions, "queries": 20 if quick else 100, "recall_queries": 20 if quick else 60}
            wall, rss, code, err = _run([sys.executable, "-m", "qa.eval.growth", "--worker", json.dumps(cfg),
                                         str(out_path)], env, 6 * 3600)
            row["in_process"] = json.loads(out_path.read_text()) if code == 0 else {"error": err}
            row["in_process"]["peak_rss_mb"] = round(rss, 1)
        row["server"] = bench_server(index_dir, corpus, embedder, questions, 40 if quick else 200,
                                     10 if quick else 40, 1 if quick else 3)
        rows.append(row)
        if not quick:
            shutil.rmtree(corpus, ignore_errors=True)
            shutil.rmtree(index_dir, ignore_errors=True)
    return {"sizes": rows}


def _n(documents) -> str:
    return f"{documents:,}" if isinstance(documents, int) else str(documents)


def chart_series(sizes: Sequence[dict]) -> dict[str, list[tuple[int, float]]]:
    """The growth figures a chart plots, per series: (documents, value), hash embedder
    rows only (a real-model point measures the model, not the system).

    >>> rows = [{"documents": 100, "embedder": "hash", "in_process": {"search_beyond_embedding_ms": {"p50": 3.0}},
    ...          "server": {"retrieve_ms": {"p50": 5.0}, "write_s": {"upload": 0.03}, "peak_rss_mb": 340.0}},
    ...         {"documents": 5, "embedder": "e5-small-q4"}]
    >>> chart_series(rows)["search beyond embedding p50 (ms)"]
    [(100, 3.0)]
    """
    series: dict[str, list[tuple[int, float]]] = {
        "search beyond embedding p50 (ms)": [], "/v1/retrieve p50 (ms)": [], "upload (ms)": [],
        "server peak RSS (MB)": []}
    for row in sizes:
        if row.get("embedder") != "hash":
            continue
        n, inner, server = row["documents"], row.get("in_process") or {}, row.get("server") or {}
        for name, value in (
                ("search beyond embedding p50 (ms)", (inner.get("search_beyond_embedding_ms") or {}).get("p50")),
                ("/v1/retrieve p50 (ms)", (server.get("retrieve_ms") or {}).get("p50")),
                ("upload (ms)", 1000 * (server.get("write_s") or {}).get("upload", float("nan"))),
                ("server peak RSS (MB)", server.get("peak_rss_mb"))):
            if value is not None and value == value:
                series[name].append((n, float(value)))
    return series


def write_chart(result: dict, path: Path) -> Path | None:
    """growth.png: latency and memory against corpus size (log axes); None without
    matplotlib (the ``report`` extra) or without growth rows."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    series = chart_series((result.get("growth") or {}).get("sizes") or [])
    if not any(series.values()):
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, points in series.items():
        if points:
            axis = right if "MB" in name else left
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    for axis, title in ((left, "milliseconds"), (right, "megabytes")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("documents (synthetic corpus, hash embedder)")
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    fig.suptitle("qa bench --part growth")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(result: dict) -> list[str]:
    """The growth section of the bench report."""
    head = ["documents", "embedder", "build s", "build RSS MB", "no-op re-index s", "index MB (× corpus)",
            "ready s", "retrieve p50/p95 ms", "ask p50/p95 ms", "upload / replace / delete s", "server peak MB",
            "search beyond embedding p50 ms", "upload beyond embedding s", "recall@10 strict / tie-aware",
            "recall@10, IVF in every segment"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in result["sizes"]:
        if "error" in r:
            lines.append(f"| {_n(r['documents'])} | {r['embedder']} | error: {r['error'][:80]} |")
            continue
        s, p = r.get("server", {}), r.get("in_process", {})
        w = s.get("write_s", {})
        rec = p.get("recall@10", {})
        lines.append("| " + " | ".join(str(x) for x in (
            _n(r["documents"]), r["embedder"], r["build_s"], r["build_peak_rss_mb"], r["reindex_noop_s"],
            f"{r['index_mb']} ({r['index_over_corpus']}×)", s.get("ready_s", "–"),
            f"{s.get('retrieve_ms', {}).get('p50', '–')} / {s.get('retrieve_ms', {}).get('p95', '–')}",
            f"{s.get('ask_ms', {}).get('p50', '–')} / {s.get('ask_ms', {}).get('p95', '–')}",
            f"{w.get('upload', '–')} / {w.get('replace', '–')} / {w.get('delete', '–')}",
            s.get("peak_rss_mb", "–"),
            p.get("search_beyond_embedding_ms", {}).get("p50", "–"), p.get("upload_beyond_embedding_s", "–"),
            f"{rec.get('strict', '–')} / {rec.get('tie_aware', '–')}",
            f"{p.get('recall@10_ivf_everywhere', {}).get('strict', '–')} / "
            f"{p.get('recall@10_ivf_everywhere', {}).get('tie_aware', '–')}")) + " |")
    return lines


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        Path(sys.argv[3]).write_text(json.dumps(worker(json.loads(sys.argv[2]))), encoding="utf-8")
    else:
        print("usage: python -m qa.eval.growth --worker CONFIG_JSON OUT_PATH (run by qa bench --part growth)",
              file=sys.stderr)
        sys.exit(2)
