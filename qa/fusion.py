"""Pure score fusion for hybrid retrieval.

Plain reciprocal-rank fusion lets BM25 outvote the dense retriever even when BM25
has nothing to go on: an English question shares no token with a Chinese corpus, yet
RRF still ranks BM25's arbitrary order. Two rules prevent that here:

1. only passages with a positive BM25 score enter the lexical ranking, and
2. the lexical list is weighted by how much of the question BM25 can actually read
   (:func:`lexical_weight`): its share of Chinese characters, plus any English terms
   a dictionary could translate.

>>> weighted_rrf([[7, 3], [3]], weights=[1.0, 0.5], c=1.0)
{7: 0.5, 3: 0.5833333333333333}
"""

from __future__ import annotations

from typing import Sequence


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


def lexical_weight(cjk_share: float, translated_share: float = 0.0, translated_weight: float = 0.5) -> float:
    """How far to trust BM25 for a question, in [0, 1].

    ``cjk_share`` is the share of the question's characters that are Chinese (BM25
    reads them directly); ``translated_share`` the share of its English words that a
    dictionary turned into Chinese terms, trusted at ``translated_weight`` since
    dictionary senses are noisy.

    >>> lexical_weight(1.0), lexical_weight(0.0), lexical_weight(0.0, 0.5)
    (1.0, 0.0, 0.25)
    """
    return max(0.0, min(1.0, cjk_share + (1.0 - cjk_share) * translated_share * translated_weight))


def top_k(scores: dict[int, float], k: int) -> list[tuple[int, float]]:
    """The ``k`` best ``(item, score)`` pairs, ties broken by the smaller item id."""
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
