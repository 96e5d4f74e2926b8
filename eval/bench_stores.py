"""``qa bench`` part ``stores``: the local store and Milvus Lite side by side, one run.

The corpus index that ``qa bench`` built (local store) is copied into a Milvus Lite
file in the same temporary folder without embedding anything again
(:func:`qa.index.milvus.copy_into`), so both stores hold the same rows and vectors.
Then, on the same gold questions in one interleaved loop (the calls take turns, so a
burst of other work on the machine hits both alike):

* ``search:<mode>`` with the question's vector computed beforehand: what the store
  and ranking cost, without the model (the same for both stores);
* ``ask``: the whole answer, model included.

And the no-op re-index of each store as the ``qa index`` command (process start,
imports, connecting to Milvus Lite), the issue's bar being ≤ 5 s for Milvus.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path
from typing import Sequence

REINDEX_BAR_S = 5.0


def bench_stores(settings, embedder, index_dir: Path, corpus: Path, questions: Sequence[str], plan, work: Path) -> dict:
    from qa.eval.bench import _env_for, _qa_command, time_interleaved
    from qa.eval.metrics import latency_summary, ratio
    from qa.pipeline import Pipeline
    from qa.types import MODES

    try:
        from qa.index.milvus import copy_into
        import milvus_lite  # noqa: F401
    except ImportError as exc:
        return {"skipped": f"the milvus extra is not installed ({exc}): pip install 'qa-gov[milvus]'"}
    local = Pipeline(settings.model_copy(update={"index_dir": index_dir, "corpus_dir": corpus, "store": "local"}),
                     embedder=embedder)
    milvus_uri = str(work / "milvus.db")
    milvus_settings = settings.model_copy(update={"index_dir": work / "milvus-index", "corpus_dir": corpus,
                                                  "store": "milvus", "milvus_uri": milvus_uri})
    milvus = Pipeline(milvus_settings, embedder=embedder)
    t = time.perf_counter()
    with local.store.reading():
        documents = copy_into(local.store.snapshot(), milvus.store, local.store.stamps())
    copy_s = time.perf_counter() - t
    k = settings.k
    vectors = {q: local.query_vector(q) for q in questions}
    calls = {}
    for name, pipeline in (("local", local), ("milvus", milvus)):
        for mode in MODES:
            calls[f"{name} search:{mode}"] = (lambda q, p=pipeline, m=mode:
                                             p.search(q, k=k, mode=m, query_vector=vectors[q] if m != "bm25" else None))
    latency, _ = time_interleaved(calls, questions, plan.query_repeats)
    asks, _ = time_interleaved({"local ask": lambda q: local.ask(q, k=k), "milvus ask": lambda q: milvus.ask(q, k=k)},
                               questions, plan.ask_repeats)
    latency.update(asks)
    rows = {name: latency_summary(v) for name, v in latency.items()}
    same = sum(
        [(h.doc_id, h.start) for h in local.search(q, k=k, query_vector=vectors[q])]
        == [(h.doc_id, h.start) for h in milvus.search(q, k=k, query_vector=vectors[q])] for q in questions)
    milvus.store.close()  # an embedded file opens in one process at a time: the commands below open it
    reindex: dict[str, dict] = {}
    for name, extra in (("local", {}), ("milvus", {"QA_STORE": "milvus", "QA_MILVUS_URI": milvus_uri})):
        target = index_dir if name == "local" else work / "milvus-index"
        env = {**_env_for(settings, target), **extra}
        times, noop = [], True
        for _ in range(max(2, plan.reindex_repeats)):
            t = time.perf_counter()
            proc = subprocess.run([*_qa_command(), "index", str(corpus)], env=env, capture_output=True, text=True,
                                  timeout=600)
            times.append(time.perf_counter() - t)
            noop = noop and proc.returncode == 0 and "up to date" in proc.stdout
        reindex[name] = {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3),
                         "nothing_embedded": noop}
    reindex["milvus"]["bar_met"] = reindex["milvus"]["max_s"] <= REINDEX_BAR_S
    return {
        "questions": len(questions),
        "repeats": {"search": plan.query_repeats, "ask": plan.ask_repeats},
        "k": k,
        "documents": documents,
        "copy_s": round(copy_s, 2),
        "latency_ms": rows,
        "same_hybrid_hits": f"{same} of {len(questions)}",
        "hybrid_p50_milvus_over_local": ratio(rows["milvus search:hybrid"].get("p50"),
                                              rows["local search:hybrid"].get("p50")),
        "reindex": reindex,
        "bar_s": REINDEX_BAR_S,
    }


def markdown_section(result: dict, load: str) -> list[str]:
    from qa.eval.bench import _md_table

    s = result.get("stores")
    if not s:
        return []
    if "skipped" in s:
        return ["", f"## Stores: skipped ({s['skipped']})"]
    rows = [[name, row.get("n"), row.get("p50"), row.get("p95"), row.get("p99")] for name, row in s["latency_ms"].items()]
    reindex = [[name, r["median_s"], r["max_s"], r["nothing_embedded"], r.get("bar_met", "–")]
               for name, r in s["reindex"].items()]
    return ["", f"## Stores side by side{load}: local and Milvus Lite 2.5.1 (embedded), same rows and vectors "
                f"({s['documents']} documents copied into Milvus in {s['copy_s']} s, nothing re-embedded); "
                f"{s['questions']} gold questions × {s['repeats']['search']} (search, question vector given) "
                f"and × {s['repeats']['ask']} (ask, model included); k = {s['k']}; calls interleaved", "",
            _md_table(["call", "n", "p50 ms", "p95 ms", "p99 ms"], rows), "",
            f"Same hybrid top-{s['k']} from both stores: {s['same_hybrid_hits']}; hybrid p50 Milvus ÷ local = "
            f"{s['hybrid_p50_milvus_over_local']}.", "",
            _md_table(["`qa index` of the unchanged corpus", "median s", "max s", "nothing embedded",
                       f"bar ≤ {s['bar_s']:.0f} s"], reindex)]
