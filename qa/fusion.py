"""Pure score fusion for hybrid retrieval.

Plain reciprocal-rank fusion lets BM25 outvote the dense retriever even when BM25
has nothing to go on: an English question shares no token with a Chinese corpus, yet
RRF still ranks BM25's arbitrary order. Three rules prevent that here:

1. only passages with a positive BM25 score take part in the lexical side;
2. the lexical side is weighted by how much of the question BM25 can actually read
   (:func:`lexical_weight`): its share of Chinese characters, plus any English terms
   a dictionary could translate;
3. the default fusion (:func:`score_fusion`) adds *normalised scores*, not ranks, so
   a passage that BM25 finds far ahead of the rest keeps that margin, and a flat,
   uninformative BM25 list moves nothing. Rank fusion (:func:`weighted_rrf`) stays
   available for comparison (``--fusion rrf``).

>>> weighted_rrf([[7, 3], [3]], weights=[1.0, 0.5], c=1.0)
{7: 0.5, 3: 0.5833333333333333}
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def weighted_rrf(
    rankings: Sequence[Sequence[int]], weights: Sequence[float], c: float = 60.0
) -> dict[int, float]:
    """Σ weight / (c + rank) over the rankings each item appears in (rank from 1)."""
    if len(rankings) != len(weights):
        raise ValueError(f"{len(rankings)} rankings but {len(weights)} weights")
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        if weight <= 0:
            continue
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (c + rank)
    return fused


def score_fusion(
    dense: dict[int, float], lexical: dict[int, float], lexical_weight: float, dense_floor: float | None = None
) -> dict[int, float]:
    """dense' + weight · bm25' over the union of candidates.

    dense' maps the dense scores linearly onto [0, 1] between ``dense_floor`` (the
    score of the last dense candidate, by default the lowest given) and the best;
    bm25' divides by the best BM25 score. A passage missing from one side gets 0 there.

    >>> score_fusion({1: 1.0, 2: 0.5, 3: 0.0}, {3: 10.0, 2: 5.0}, lexical_weight=1.0)
    {1: 1.0, 2: 1.0, 3: 1.0}
    >>> score_fusion({1: 1.0, 2: 0.5, 3: 0.0}, {3: 10.0}, lexical_weight=0.5)
    {1: 1.0, 2: 0.5, 3: 0.5}
    """
    out: dict[int, float] = {}
    if dense:
        hi = max(dense.values())
        lo = min(dense.values()) if dense_floor is None else dense_floor
        span = hi - lo if hi > lo else 1.0
        for item, score in dense.items():
            out[item] = max(0.0, (score - lo) / span)
    if lexical and lexical_weight > 0:
        top = max(lexical.values())
        if top > 0:
            for item, score in lexical.items():
                out[item] = out.get(item, 0.0) + lexical_weight * score / top
    return out


def score_fusion_arrays(dense: np.ndarray, lexical: np.ndarray, lexical_weight: float) -> np.ndarray:
    """:func:`score_fusion` over aligned float64 arrays (one entry per candidate).

    ``lexical`` holds 0 where BM25 did not score a candidate. Each element goes
    through the same float operations in the same order as in :func:`score_fusion`,
    so the results are identical, bit for bit, at a fraction of the cost.

    >>> score_fusion_arrays(np.array([1.0, 0.5, 0.0]), np.array([0.0, 5.0, 10.0]), 1.0).tolist()
    [1.0, 1.0, 1.0]
    >>> score_fusion_arrays(np.array([1.0, 0.5, 0.0]), np.array([0.0, 0.0, 10.0]), 0.5).tolist()
    [1.0, 0.5, 0.5]
    """
    if not len(dense):
        return np.zeros(0)
    hi, lo = float(dense.max()), float(dense.min())
    span = hi - lo if hi > lo else 1.0
    out = np.maximum(0.0, (dense - lo) / span)
    if lexical_weight > 0 and len(lexical):
        top = float(lexical.max())
        if top > 0:
            # Adding +0.0 where BM25 is silent leaves those entries unchanged.
            out = out + lexical_weight * lexical / top
    return out


def top_k_arrays(items: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best scores, ties broken by the smaller item (as :func:`top_k`).

    >>> top_k_arrays(np.array([7, 3, 5]), np.array([0.5, 0.9, 0.5]), 2).tolist()
    [1, 2]
    """
    if not len(scores):
        return np.zeros(0, dtype=np.int64)
    return np.lexsort((items, -scores))[:k]


# How far BM25 over an English question's translated terms is trusted, per share of its
# words translated. Was 0.5 (dictionary senses are noisy); with corpus-only senses, the
# synonym table and names in pinyin the terms got better and the dense side stayed weak
# on English paraphrases. `qa calibrate --sweep TRANSLATED_WEIGHT=0.5,0.6,0.7,0.8,0.9` on
# the eleven tuning sets (docs/reports/round20/translated-weight.md): 0.8 answers the
# most (683 answers held + unanswerables refused, against 674 at 0.5, 679 at 0.6 and 0.7,
# 682 at 0.9): nine more answers on seven sets, two more refusals, one refusal fewer (test2).
TRANSLATED_WEIGHT = 0.8


def lexical_weight(cjk_share: float, translated_share: float = 0.0, translated_weight: float | None = None) -> float:
    """How far to trust BM25 for a question, in [0, 1].

    ``cjk_share`` is the share of the question's characters that are Chinese (BM25
    reads them directly); ``translated_share`` the share of its English words that a
    dictionary turned into Chinese terms, trusted at ``translated_weight``
    (:data:`TRANSLATED_WEIGHT` unless given) since dictionary senses are noisy.

    >>> lexical_weight(1.0), lexical_weight(0.0), lexical_weight(0.0, 0.5, translated_weight=0.5)
    (1.0, 0.0, 0.25)
    """
    weight = TRANSLATED_WEIGHT if translated_weight is None else translated_weight
    return max(0.0, min(1.0, cjk_share + (1.0 - cjk_share) * translated_share * weight))


def top_k(scores: dict[int, float], k: int) -> list[tuple[int, float]]:
    """The ``k`` best ``(item, score)`` pairs, ties broken by the smaller item id."""
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
