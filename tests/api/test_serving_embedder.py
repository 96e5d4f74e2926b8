"""ServingEmbedder: queries overtake an upload's passage batches; the query cache."""

from __future__ import annotations

import threading
import time

import numpy as np

from qa.api import ServingEmbedder
from qa.embed import HashEmbedder


class RecordingEmbedder(HashEmbedder):
    """Records each call; the first call blocks until the test lets it go."""

    def __init__(self, fail_on: str | None = None, block_first: bool = True):
        super().__init__()
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.in_first_call = threading.Event()
        self.release = threading.Event()
        self.fail_on = fail_on
        if not block_first:
            self.release.set()

    def embed(self, texts, kind):
        self.calls.append((kind, tuple(texts)))
        if len(self.calls) == 1:
            self.in_first_call.set()
            assert self.release.wait(30)
        if self.fail_on in texts:
            raise RuntimeError("model failure")
        return super().embed(texts, kind)


def wait_for_queue(embedder: ServingEmbedder, n: int) -> None:
    deadline = time.monotonic() + 30
    while len(embedder._queued) < n:
        assert time.monotonic() < deadline, "the queries never queued"
        time.sleep(0.001)


def test_passages_are_split_and_a_waiting_query_goes_next():
    inner = RecordingEmbedder()
    embedder = ServingEmbedder(inner, passage_batch=2)
    passages = [f"段落{i}" for i in range(6)]
    out = {}
    writer = threading.Thread(target=lambda: out.setdefault("p", embedder.embed(passages, "passage")))
    writer.start()
    assert inner.in_first_call.wait(30)
    reader = threading.Thread(target=lambda: out.setdefault("q", embedder.embed(["宜昌急救圈"], "query")))
    reader.start()
    wait_for_queue(embedder, 1)  # let the first batch finish only once the query is queued
    inner.release.set()
    writer.join(30)
    reader.join(30)
    kinds = [kind for kind, _ in inner.calls]
    assert kinds == ["passage", "query", "passage", "passage"]
    assert [len(texts) for _, texts in inner.calls] == [2, 1, 2, 2]
    assert np.allclose(out["p"], HashEmbedder().embed(passages, "passage"))
    assert np.allclose(out["q"], HashEmbedder().embed(["宜昌急救圈"], "query"))


def test_query_cache_is_bounded_and_exact():
    inner = RecordingEmbedder(block_first=False)
    embedder = ServingEmbedder(inner, cache_size=2)
    first = embedder.embed(["a", "b"], "query")
    again = embedder.embed(["b", "a"], "query")
    assert np.array_equal(first[::-1], again) and embedder.cache_hits == 2
    embedder.embed(["c"], "query")  # evicts the least recently used: "b" (a was used last)
    embedder.embed(["a"], "query")
    embedder.embed(["b"], "query")
    assert [texts for _, texts in inner.calls] == [("a", "b"), ("c",), ("b",)]
    assert embedder.embed([], "query").shape == (0, inner.dim)


def test_no_cache_means_every_query_reaches_the_model():
    inner = RecordingEmbedder(block_first=False)
    embedder = ServingEmbedder(inner, cache_size=0)
    embedder.embed(["a"], "query")
    embedder.embed(["a"], "query")
    assert len(inner.calls) == 2 and embedder.cache_hits == 0


def test_queries_arriving_while_the_model_is_busy_share_one_call():
    inner = RecordingEmbedder()
    embedder = ServingEmbedder(inner, max_query_batch=3)
    texts = ["宜昌", "武汉", "鄂州", "咸宁", "黄石"]
    out: dict[str, np.ndarray] = {}

    def ask(text):
        out[text] = embedder.embed([text], "query")

    first = threading.Thread(target=ask, args=(texts[0],))
    first.start()
    assert inner.in_first_call.wait(30)
    others = [threading.Thread(target=ask, args=(t,)) for t in texts[1:]]
    for thread in others:
        thread.start()
    wait_for_queue(embedder, 4)
    inner.release.set()
    for thread in [first, *others]:
        thread.join(30)
    sizes = [len(t) for _, t in inner.calls]
    assert sizes[0] == 1 and sorted(sizes[1:]) == [1, 3] and embedder.model_calls == 3  # capped at 3 per call
    for text in texts:  # every caller gets its own vector, identical to an unbatched call
        assert np.array_equal(out[text], HashEmbedder().embed([text], "query"))


def test_a_model_error_reaches_every_caller_of_the_batch():
    inner = RecordingEmbedder(fail_on="坏")
    embedder = ServingEmbedder(inner)
    errors = []

    def ask(text):
        try:
            embedder.embed([text], "query")
        except RuntimeError as exc:
            errors.append((text, str(exc)))

    first = threading.Thread(target=ask, args=("好",))
    first.start()
    assert inner.in_first_call.wait(30)
    others = [threading.Thread(target=ask, args=(t,)) for t in ("坏", "也好")]
    for thread in others:
        thread.start()
    wait_for_queue(embedder, 2)
    inner.release.set()
    for thread in [first, *others]:
        thread.join(30)
    assert sorted(errors) == [("也好", "model failure"), ("坏", "model failure")]
    assert embedder.embed(["好"], "query").shape == (1, inner.dim)  # and the model is usable afterwards


def test_a_steady_stream_of_queries_does_not_starve_an_upload():
    """Every query call queues the next query before it returns, so a query is always
    waiting: passages and query batches must still take turns."""
    embedder: ServingEmbedder

    class Busy(HashEmbedder):
        def __init__(self):
            super().__init__()
            self.kinds: list[str] = []
            self.spawned: list[threading.Thread] = []

        def embed(self, texts, kind):
            self.kinds.append(kind)
            if kind == "query" and len(self.spawned) < 8:
                thread = threading.Thread(target=embedder.embed, args=([f"问题{len(self.spawned)}"], "query"))
                self.spawned.append(thread)
                thread.start()
                wait_for_queue(embedder, 1)
            return super().embed(texts, kind)

    inner = Busy()
    embedder = ServingEmbedder(inner, passage_batch=1)
    first = threading.Thread(target=embedder.embed, args=(["问题"], "query"))
    first.start()
    passages = embedder.embed([f"段落{i}" for i in range(4)], "passage")
    first.join(30)
    for thread in inner.spawned:
        thread.join(30)
    assert passages.shape == (4, inner.dim)
    # Once the first passage batch has run (the passage call is surely queued by
    # then; before it, queries may legitimately run back to back), query batches never
    # ran twice in a row while passages were still waiting.
    runs = "".join("p" if k == "passage" else "q" for k in inner.kinds)
    assert runs.count("p") == 4 and "qq" not in runs[runs.index("p") : runs.rindex("p")], runs
