"""Vector stores: unit vectors in, integer positions out.

A store knows nothing about chunks; it maps a query vector to the positions
(0..n-1) of its nearest vectors by inner product, which on L2-normalised vectors
is cosine similarity. Backends are FAISS index kinds chosen by name.

>>> import numpy as np
>>> store = build_vector_store("flat", np.eye(3, dtype=np.float32))
>>> scores, ids = store.search(np.array([[0, 1, 0]], dtype=np.float32), k=2)
>>> ids[0].tolist(), scores[0].round(3).tolist()
([1, 0], [1.0, 0.0])
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol

import faiss
import numpy as np

from qa.errors import ConfigError

VECTOR_STORES = ("flat", "hnsw", "ivf")


class VectorStore(Protocol):
    """The one method a vector backend implements."""

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` ``(scores, positions)`` per query row; ``allowed`` restricts positions.

        Rows are padded with position -1 (score -inf) when fewer than ``k`` match.
        """
        ...


class FaissStore:
    """A FAISS index with optional position filtering through an ID selector."""

    def __init__(self, index: faiss.Index, kind: str):
        self.index = index
        self.kind = kind

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries, k, allowed=None):
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = max(1, min(int(k), self.ntotal)) if self.ntotal else 1
        if self.ntotal == 0:
            return np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64)
        params = None
        if allowed is not None:
            allowed = np.ascontiguousarray(allowed, dtype=np.int64)
            if allowed.size == 0:
                return np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64)
            selector = faiss.IDSelectorBatch(allowed)
            params = _search_params(self.kind, selector, self.index)
        scores, ids = self.index.search(queries, k, params=params)
        scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
        return scores, ids

    def stored_vectors(self) -> np.ndarray | None:
        """The vectors this store keeps (flat and HNSW stores), as a read-only array
        that shares the store's memory; None for IVF or an empty store.

        The array keeps the index alive, so it stays valid however long it is held.

        >>> store = build_vector_store("flat", np.eye(2, dtype=np.float32))
        >>> store.stored_vectors().tolist(), store.stored_vectors().flags.writeable
        ([[1.0, 0.0], [0.0, 1.0]], False)
        """
        inner = faiss.downcast_index(self.index.storage) if self.kind == "hnsw" else faiss.downcast_index(self.index)
        if not isinstance(inner, faiss.IndexFlat) or self.ntotal == 0:
            return None
        n, d = self.ntotal, int(inner.d)
        address = faiss.rev_swig_ptr(inner.get_xb(), n * d).__array_interface__["data"][0]
        return np.asarray(_Borrowed(self.index, address, (n, d)))

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, kind: str) -> "FaissStore":
        index = faiss.read_index(str(path))
        _tune(index, kind)
        return cls(index, kind)


class _Borrowed:
    """A read-only float32 buffer inside a FAISS index, holding the index alive
    (numpy keeps this object as the array's base)."""

    def __init__(self, index: faiss.Index, address: int, shape: tuple[int, int]):
        self.index = index
        self.__array_interface__ = {"version": 3, "shape": shape, "typestr": "<f4", "data": (address, True)}


def _search_params(kind: str, selector, index):
    if kind == "hnsw":
        return faiss.SearchParametersHNSW(sel=selector, efSearch=index.hnsw.efSearch)
    if kind == "ivf":
        return faiss.SearchParametersIVF(sel=selector, nprobe=index.nprobe)
    return faiss.SearchParameters(sel=selector)


# Search-time knobs, chosen from `qa bench` (clustered 384-d vectors, k = 10): HNSW
# efSearch 128 keeps recall@10 ≥ 0.97 up to 1M vectors (64 gave 0.92 at 1M); IVF
# nprobe 16 gave recall@10 1.000 at both 100k and 1M, at well under 1 ms a query.
HNSW_EF_SEARCH = 128
IVF_NPROBE = 16


def _tune(index, kind: str) -> None:
    # Search-time knobs are not all persisted by write_index; set them on every load.
    if kind == "hnsw":
        index.hnsw.efSearch = HNSW_EF_SEARCH
    elif kind == "ivf":
        index.nprobe = min(index.nlist, IVF_NPROBE)


def ivf_lists(n: int) -> int:
    """Number of IVF lists for ``n`` vectors: about 4·√n, with ≥ 39 vectors per list."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def build_vector_store(kind: str, vectors: np.ndarray) -> FaissStore:
    """Build a store of kind ``flat`` (exact), ``hnsw`` or ``ivf`` over ``vectors``."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
    elif kind == "ivf":
        nlist = ivf_lists(len(vectors))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        if len(vectors):
            index.train(vectors)
    else:
        raise ConfigError(f"unknown vector store {kind!r}", hint=f"choose one of: {', '.join(VECTOR_STORES)}")
    if len(vectors):
        index.add(vectors)
    _tune(index, kind)
    return FaissStore(index, kind)
