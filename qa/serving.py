"""How ``qa serve`` shares the machine between readers and writers.

Readers (search, ask) are what the server is for; an upload must not slow them down
much, but it must still finish. So:

* Reads run on the request threads side by side: the default encoder
  (:mod:`qa.e5_onnx`) runs one question per call on the calling thread and holds no
  lock, so two cores answer two questions at once.
* Writes (upload, delete: re-indexing) run one at a time on a single writer thread
  whose OS scheduling priority is lowered (``Settings.writer_niceness``), and the
  writer's passages are embedded one per call *on that thread*. The kernel then
  gives the readers the CPU first and the writer what they leave, and an idle server
  indexes at full speed. (A queue inside this process could not do this as well: a
  passage that has started cannot be interrupted, the scheduler can.)
* An optional LRU cache of query vectors: repeated questions skip the model.

>>> from qa.embed import HashEmbedder
>>> e = ServingEmbedder(HashEmbedder(), cache_size=2)
>>> bool((e.embed(["宜昌"], "query") == e.embed(["宜昌"], "query")).all()), e.cache_hits
(True, 1)
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

import numpy as np

from qa.embed import Embedder, Kind, get_embedder
from qa.pipeline import Pipeline
from qa.settings import Settings

log = logging.getLogger("qa.serving")
T = TypeVar("T")

def lower_thread_priority(niceness: int) -> bool:
    """Lower the calling thread's scheduling priority (Linux: per thread); False if not possible."""
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, max(current, niceness))
        return True
    except (AttributeError, OSError) as exc:  # not Linux, or not allowed: writes simply compete evenly
        log.info("could not lower the writer's priority: %s", exc)
        return False


class Writer:
    """One low-priority thread on which every write runs, in arrival order.

    ``niceness`` is Linux's: each step is about 1.25× less CPU weight, so at 10 the
    writer gets roughly a tenth of a core that a reader also wants, at 19 about 1.5 %,
    and always all of a core that nobody wants.
    """

    def __init__(self, niceness: int):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-writer",
                                        initializer=lower_thread_priority, initargs=(niceness,))

    async def run(self, fn: Callable[..., T], *args) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class ServingEmbedder:
    """The model as the server uses it: concurrent queries, passages one per call, a query cache."""

    def __init__(self, inner: Embedder, cache_size: int = 0):
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.cache_size = cache_size
        self.cache_hits = 0
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if kind != "query":
            # One text per call keeps the work on this (the writer's, low-priority)
            # thread instead of the encoder's worker pool.
            return np.concatenate([self.inner.embed([text], kind="passage") for text in texts])
        if not self.cache_size:
            return self.inner.embed(list(texts), kind="query")
        found: dict[int, np.ndarray] = {}
        with self._cache_lock:
            for i, text in enumerate(texts):
                vector = self._cache.get(text)
                if vector is not None:
                    self._cache.move_to_end(text)
                    found[i] = vector
            self.cache_hits += len(found)
        missing = [i for i in range(len(texts)) if i not in found]
        if missing:
            fresh = self.inner.embed([texts[i] for i in missing], kind="query")
            with self._cache_lock:
                for row, i in enumerate(missing):
                    found[i] = fresh[row]
                    self._cache[texts[i]] = fresh[row]
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return np.stack([found[i] for i in range(len(texts))]).astype(np.float32, copy=False)


def limit_blas_threads(threads: int) -> None:
    """Cap numpy's BLAS thread pool for this process (``Settings.blas_threads``).

    A process setting, applied at the edges (the CLI, the server, the benchmark's
    workers), never by the library: a search multiplies one question vector by a
    segment's matrix, a product too small to share out, and a BLAS worker thread
    waiting for a core another process holds stalls the whole product."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")


def serving_pipeline(settings: Settings) -> Pipeline:
    """The pipeline ``qa serve`` uses: the configured model behind a :class:`ServingEmbedder`."""
    limit_blas_threads(settings.blas_threads)
    pipeline = Pipeline(settings, embedder=ServingEmbedder(get_embedder(settings.embedder),
                                                           cache_size=settings.query_cache_size))
    # What a crash cut off is finished or undone before the first request (qa.staging).
    pipeline.recover()
    return pipeline
