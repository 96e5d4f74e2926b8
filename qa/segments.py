"""Ragged lists as flat arrays (CSR layout), so per-list work is one numpy call.

A list of lists such as "the sentences of each chunk" is stored as ``indptr``
(where each row starts, plus the total at the end) and ``indices`` (all rows laid
end to end): row ``i`` is ``indices[indptr[i]:indptr[i + 1]]``. The retriever uses
this to score every candidate's sentences with one matrix product instead of one
per candidate.

>>> indptr, indices = csr([[4, 5], [], [6]])
>>> indptr.tolist(), indices.tolist()
([0, 2, 2, 3], [4, 5, 6])
>>> flat, lengths = gather_rows(indptr, indices, np.array([2, 0]))
>>> flat.tolist(), lengths.tolist()
([6, 4, 5], [1, 2])
>>> best, _ = rows_dot_max(np.eye(7, dtype=np.float32), indptr, indices, np.array([0, 2]),
...                        np.arange(7, dtype=np.float32))
>>> best.tolist()
[5.0, 6.0]
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def csr(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, indices)`` of a list of integer lists (both int64)."""
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = np.fromiter((x for r in rows for x in r), dtype=np.int64, count=int(indptr[-1]))
    return indptr, indices


def gather_rows(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The chosen rows laid end to end, and each one's length.

    Rows come out in the order asked for, each in its stored order, so
    ``flat[:lengths[0]]`` is row ``rows[0]``.

    >>> indptr, indices = csr([[1, 2, 3], [7], [8, 9]])
    >>> [a.tolist() for a in gather_rows(indptr, indices, np.array([2, 0, 2]))]
    [[8, 9, 1, 2, 3, 8, 9], [2, 3, 2]]
    """
    rows = np.asarray(rows, dtype=np.int64)
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=indices.dtype), lengths
    # Output slot j of row r reads stored slot starts[r] + (j - where row r begins in the output).
    out_starts = np.cumsum(lengths) - lengths
    source = np.arange(total, dtype=np.int64) + np.repeat(starts - out_starts, lengths)
    return indices[source], lengths


def rows_dot_max(
    vectors: np.ndarray, indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray, query: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each chosen row: the best ``vectors[j] @ query`` over the ``j`` in that row.

    Returns ``(best, filled)``; ``best`` is -inf where a row is empty (``filled``
    False). Rows of equal length are stacked and multiplied in one call, and a
    stacked product runs the same BLAS matrix-vector routine on each slice, with the
    same row count, as a separate ``vectors[row] @ query`` per row would: the result
    is bit-for-bit what a per-row loop gives, at a few numpy calls per distinct
    row length instead of several per row.

    >>> vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    >>> indptr, indices = csr([[0, 1], [], [2, 1]])
    >>> best, filled = rows_dot_max(vectors, indptr, indices, np.array([2, 0, 1]), np.array([0.0, 1.0], np.float32))
    >>> best.tolist(), filled.tolist()
    ([1.0, 1.0, -inf], [True, True, False])
    """
    rows = np.asarray(rows, dtype=np.int64)
    lengths = indptr[rows + 1] - indptr[rows]
    best = np.full(len(rows), -np.inf, dtype=np.result_type(vectors.dtype, query.dtype))
    # Rows sorted by length and gathered once: each length is then one contiguous
    # block, multiplied as a stack of (length × dim) matrices straight into ``sims``.
    by_length = np.argsort(lengths, kind="stable")
    flat, sorted_lengths = gather_rows(indptr, indices, rows[by_length])
    gathered = vectors[flat]
    sims = np.empty(len(flat), dtype=best.dtype)
    counts = np.bincount(lengths, minlength=1)
    start = 0
    for length in np.flatnonzero(counts[1:]) + 1:
        stop = start + int(counts[length]) * int(length)
        np.matmul(gathered[start:stop].reshape(-1, int(length), vectors.shape[1]), query,
                  out=sims[start:stop].reshape(-1, int(length)))
        start = stop
    filled = sorted_lengths > 0
    if filled.any():
        # One reduction over all runs; empty rows (sorted first) are left out of it.
        run_starts = (np.cumsum(sorted_lengths) - sorted_lengths)[filled]
        best[by_length[filled]] = np.maximum.reduceat(sims, run_starts)
    return best, lengths > 0
