"""BM25 scoring as pure functions over postings (Lucene's variant, as bm25s computes it).

Stores keep postings (which chunks hold a term, how often) and document frequencies;
these functions turn them into scores. The formula is the one the index used when
bm25s scored whole in-memory matrices, so rankings did not move when the postings
moved into a store that is updated one document at a time:

    idf(t)    = ln(1 + (N - df + 0.5) / (df + 0.5))
    score(d)  = Σ_t  idf(t) · tf / (tf + k1 · (1 - b + b · dl / avgdl))

summed over the query's tokens (a repeated token counts again), with k1 = 1.5 and
b = 0.75 (bm25s's defaults, kept from the earlier index).

>>> round(idf(df=1, n=3), 4)
0.9808
"""

from __future__ import annotations

import math

import numpy as np

K1 = 1.5
B = 0.75


def idf(df: int, n: int) -> float:
    """Lucene's idf: never negative, highest for a term few chunks hold.

    >>> idf(1, 100) > idf(50, 100) > 0
    True
    """
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def length_norms(dl: np.ndarray, avgdl: float, k1: float = K1, b: float = B) -> np.ndarray:
    """``k1 · (1 - b + b · dl / avgdl)`` per chunk (float32): the part of a term's
    score that depends on the chunk, not the term, computed once per index state.

    >>> length_norms(np.array([4, 8]), avgdl=4.0).tolist()
    [1.5, 2.625]
    """
    return (k1 * ((1.0 - b) + b * np.asarray(dl, dtype=np.float64) / max(avgdl, 1e-9))).astype(np.float32)


def term_scores(tf: np.ndarray, norms: np.ndarray, df: int, n: int) -> np.ndarray:
    """One term's BM25 contribution for each posting: term frequency ``tf`` and the
    posting chunk's :func:`length_norms`, in float32 (the precision bm25s stores).

    Worked example (N = 3 chunks, the term in 1 of them, twice, in a 4-token chunk,
    average length 4): idf = ln(1 + (3 - 1 + 0.5) / 1.5) = ln(2.6667) = 0.98083;
    norm = 1.5 · (0.25 + 0.75 · 4/4) = 1.5; tf part = 2 / (2 + 1.5) = 0.57143;
    product 0.56047.

    >>> round(float(term_scores(np.array([2]), length_norms(np.array([4]), 4.0), df=1, n=3)[0]), 5)
    0.56047
    """
    tf = tf.astype(np.float32)
    out = norms + tf  # a fresh array, then divided and scaled in place: one allocation
    np.divide(tf, out, out=out)
    out *= np.float32(idf(df, n))
    return out


def best_positions(scores: np.ndarray, depth: int) -> np.ndarray:
    """Indices of the ``depth`` highest ``scores``, ties at the cut going to the lower
    index, returned in ascending index order.

    The same set a full sort by (score descending, index ascending) cut at ``depth``
    gives, in linear time: a common term gives tens of thousands of chunks a score,
    and sorting them all cost more than the rest of a BM25 query at 2,000 documents.

    >>> best_positions(np.array([0.5, 2.0, 1.0, 2.0, 1.0]), 3).tolist()
    [1, 2, 3]
    >>> best_positions(np.array([1.0, 1.0, 1.0]), 2).tolist()
    [0, 1]
    """
    n = len(scores)
    if depth >= n:
        return np.arange(n)
    if depth <= 0:
        return np.zeros(0, dtype=np.int64)
    cut = np.partition(scores, n - depth)[n - depth]  # the depth-th highest score
    above = np.flatnonzero(scores > cut)
    ties = np.flatnonzero(scores == cut)[: depth - len(above)]
    return np.sort(np.concatenate([above, ties]))


def pack_postings(positions: np.ndarray, tfs: np.ndarray) -> bytes:
    """Postings as bytes: uint32 positions, then uint16 term frequencies.

    >>> unpack_postings(pack_postings(np.array([3, 9]), np.array([1, 2])))
    (array([3, 9], dtype=uint32), array([1, 2], dtype=uint16))
    """
    positions = np.asarray(positions, dtype=np.uint32)
    tfs = np.minimum(np.asarray(tfs), np.iinfo(np.uint16).max).astype(np.uint16)
    return positions.tobytes() + tfs.tobytes()


def unpack_postings(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    n = len(data) // 6
    return (np.frombuffer(data, dtype=np.uint32, count=n),
            np.frombuffer(data, dtype=np.uint16, count=n, offset=4 * n))
