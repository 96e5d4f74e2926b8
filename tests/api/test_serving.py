"""qa serve's sharing of the machine: concurrent queries, passages on the writer's
own thread, the low-priority writer, the query cache."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import numpy as np
import pytest

from qa.embed import HashEmbedder
from qa.serving import ServingEmbedder, Writer, lower_thread_priority


class RecordingEmbedder(HashEmbedder):
    """Records each call with the thread it ran on."""

    def __init__(self, fail_on: str | None = None):
        super().__init__()
        self.calls: list[tuple[str, tuple[str, ...], int]] = []
        self.fail_on = fail_on

    def embed(self, texts, kind):
        self.calls.append((kind, tuple(texts), threading.get_ident()))
        if self.fail_on in texts:
            raise RuntimeError("model failure")
        return super().embed(texts, kind)


def test_query_cache_is_bounded_and_exact():
    inner = RecordingEmbedder()
    embedder = ServingEmbedder(inner, cache_size=2)
    first = embedder.embed(["a", "b"], "query")
    again = embedder.embed(["b", "a"], "query")
    assert np.array_equal(first[::-1], again) and embedder.cache_hits == 2
    embedder.embed(["c"], "query")  # evicts the least recently used: "b" (a was used last)
    embedder.embed(["a"], "query")
    embedder.embed(["b"], "query")
    assert [texts for _, texts, _ in inner.calls] == [("a", "b"), ("c",), ("b",)]
    assert embedder.embed([], "query").shape == (0, inner.dim)


def test_no_cache_means_every_query_reaches_the_model():
    inner = RecordingEmbedder()
    embedder = ServingEmbedder(inner, cache_size=0)
    embedder.embed(["a"], "query")
    embedder.embed(["a"], "query")
    assert len(inner.calls) == 2 and embedder.cache_hits == 0


def test_queries_are_not_serialised():
    """Two queries must be inside the model at the same time (two cores, two answers)."""
    both_inside = threading.Barrier(2, timeout=30)

    class Meeting(HashEmbedder):
        def embed(self, texts, kind):
            both_inside.wait()  # breaks (and raises) if the second query is kept out
            return super().embed(texts, kind)

    embedder = ServingEmbedder(Meeting())
    out: dict[str, np.ndarray] = {}
    threads = [threading.Thread(target=lambda t=t: out.setdefault(t, embedder.embed([t], "query")))
               for t in ("宜昌", "武汉")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert set(out) == {"宜昌", "武汉"}
    assert np.array_equal(out["宜昌"], HashEmbedder().embed(["宜昌"], "query"))


def test_passages_run_one_per_call_on_the_calling_thread():
    inner = RecordingEmbedder()
    embedder = ServingEmbedder(inner)
    passages = [f"段落{i}" for i in range(3)]
    vectors = embedder.embed(passages, "passage")
    assert [(kind, texts) for kind, texts, _ in inner.calls] == [("passage", (p,)) for p in passages]
    assert {thread for _, _, thread in inner.calls} == {threading.get_ident()}
    assert np.allclose(vectors, HashEmbedder().embed(passages, "passage"))


def test_a_model_error_reaches_the_caller_and_the_model_stays_usable():
    embedder = ServingEmbedder(RecordingEmbedder(fail_on="坏"))
    with pytest.raises(RuntimeError, match="model failure"):
        embedder.embed(["坏"], "query")
    assert embedder.embed(["好"], "query").shape == (1, 256)


def test_writes_run_in_order_on_one_thread():
    writer = Writer(niceness=0)
    seen: list[tuple[int, int]] = []

    async def main():
        return await asyncio.gather(*(writer.run(lambda i=i: seen.append((i, threading.get_ident())) or i)
                                      for i in range(5)))

    try:
        assert asyncio.run(main()) == [0, 1, 2, 3, 4]
    finally:
        writer.close()
    assert [i for i, _ in seen] == [0, 1, 2, 3, 4]
    assert len({thread for _, thread in seen}) == 1 and seen[0][1] != threading.get_ident()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are a Linux feature")
def test_the_writer_thread_runs_at_lower_priority_and_readers_do_not():
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    writer = Writer(niceness=before + 7)

    async def niceness_inside():
        return await writer.run(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    try:
        inside = asyncio.run(niceness_inside())
    finally:
        writer.close()
    after = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert inside >= min(before + 7, 19) and after == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are a Linux feature")
def test_lowering_priority_never_raises_it():
    result: list[int] = []

    def work():
        assert lower_thread_priority(12)
        lower_thread_priority(5)  # asking for less niceness than it has keeps 12
        result.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)
    assert result and result[0] >= 12


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are a Linux feature")
def test_the_app_indexes_uploads_at_the_configured_niceness(tmp_path):
    from qa.api import create_app
    from qa.settings import Settings

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    wanted = min(before + 5, 19)
    app = create_app(Settings(index_dir=tmp_path / "index", embedder="hash", writer_niceness=wanted), mount_ui=False)

    async def niceness_inside():
        return await app.state.writer.run(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    try:
        assert asyncio.run(niceness_inside()) >= wanted
    finally:
        app.state.writer.close()
