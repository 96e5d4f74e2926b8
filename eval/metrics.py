"""Scoring functions for ``qa eval`` and ``qa bench``: pure, no I/O.

Ranks are 1-based and ``None`` means "no relevant passage in the ranking".
Relevance is binary with one relevant passage per question (the first passage that
holds the gold evidence), so nDCG@k reduces to ``1 / log2(rank + 1)``.

>>> ranks = [1, 3, None, 2]
>>> hit_rate(ranks, 1), hit_rate(ranks, 3), round(mrr(ranks, 10), 4)
(0.25, 0.75, 0.4583)
>>> percentile([10.0, 20.0, 30.0, 40.0], 50)
25.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Hashable, Iterable, Sequence, TypeVar

from qa.fold import fold_compact

KS: tuple[int, ...] = (1, 3, 5, 10)
DEPTH = 10  # MRR and nDCG are cut at this rank

T = TypeVar("T")


# ---------------------------------------------------------------- matching


def longest_common_run(needle: str, haystack: str) -> int:
    """Length of the longest contiguous piece of ``needle`` found in ``haystack``.

    >>> longest_common_run("急救圈建设", "打造急救圈。")
    3
    >>> longest_common_run("", "abc"), longest_common_run("xyz", "abc")
    (0, 0)
    """
    best = 0
    n = len(needle)
    for i in range(n):
        if n - i <= best:  # no longer run can start here
            break
        # Extend from i while the piece still occurs; a run one longer than the best
        # so far is the only thing worth checking first.
        j = i + best + 1
        if needle[i:j] not in haystack:
            continue
        while j < n and needle[i : j + 1] in haystack:
            j += 1
        best = j - i
    return best


def passage_holds_evidence(passage: str, evidence: str, answers: Sequence[str]) -> bool:
    """Is ``passage`` a retrieval hit for a gold item (strings compared folded)?

    It is when the folded passage contains the folded evidence, or, where a chunk
    boundary cut the evidence, when it holds at least half of the evidence as one
    contiguous piece *and* one of the gold answers.

    >>> passage_holds_evidence("宜昌打造“10分钟”急救圈。", "打造“10分钟”急救圈", ["10分钟"])
    True
    >>> passage_holds_evidence("……打造“10分钟”", "打造“10分钟”急救圈,县市30分钟", ["30分钟"])
    False
    >>> passage_holds_evidence("打造“10分钟”急救圈,县", "打造“10分钟”急救圈,县市30分钟", ["10分钟"])
    True
    """
    text = fold_compact(passage)
    ev = fold_compact(evidence)
    if not ev:
        return False
    if ev in text:
        return True
    if longest_common_run(ev, text) * 2 < len(ev):
        return False
    return any(a and fold_compact(a) in text for a in answers)


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    """Does an answer text contain one of the gold answers (folded)?

    >>> contains_answer("宜昌打造10分鐘急救圈。", ["10分钟"])
    True
    >>> contains_answer("", ["10分钟"]), contains_answer("abc", [])
    (False, False)
    """
    folded = fold_compact(text)
    return any(a and fold_compact(a) in folded for a in answers)


def first_rank(flags: Iterable[bool]) -> int | None:
    """1-based rank of the first true flag, ``None`` if there is none.

    >>> first_rank([False, True, True]), first_rank([])
    (2, None)
    """
    for rank, flag in enumerate(flags, 1):
        if flag:
            return rank
    return None


# ---------------------------------------------------------------- ranking metrics


def hit_rate(ranks: Sequence[int | None], k: int) -> float:
    """Share of questions whose first relevant passage is within the top ``k``."""
    if not ranks:
        return 0.0
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)


def mrr(ranks: Sequence[int | None], depth: int = DEPTH) -> float:
    """Mean reciprocal rank, counting ranks beyond ``depth`` as misses."""
    if not ranks:
        return 0.0
    return sum(1.0 / r for r in ranks if r is not None and r <= depth) / len(ranks)


def ndcg(ranks: Sequence[int | None], depth: int = DEPTH) -> float:
    """Mean nDCG@depth with one relevant passage: ``1/log2(rank+1)``, ideal DCG 1.

    >>> round(ndcg([1, 3, None]), 4)
    0.5
    """
    if not ranks:
        return 0.0
    return sum(1.0 / math.log2(r + 1) for r in ranks if r is not None and r <= depth) / len(ranks)


@dataclass(frozen=True)
class RetrievalScores:
    n: int
    hits: dict[int, float]  # k → hit@k
    mrr: float
    ndcg: float

    def to_json(self) -> dict:
        out: dict = {"n": self.n}
        out.update({f"hit@{k}": round(v, 4) for k, v in sorted(self.hits.items())})
        out["mrr@10"] = round(self.mrr, 4)
        out["ndcg@10"] = round(self.ndcg, 4)
        return out


def retrieval_scores(ranks: Sequence[int | None], ks: Sequence[int] = KS, depth: int = DEPTH) -> RetrievalScores:
    """All ranking metrics of one list of first-hit ranks.

    >>> s = retrieval_scores([1, 2, None, 7])
    >>> s.hits[1], s.hits[5], s.hits[10], round(s.mrr, 4)
    (0.25, 0.5, 0.75, 0.4107)
    """
    return RetrievalScores(
        n=len(ranks),
        hits={k: hit_rate(ranks, k) for k in sorted(set(ks))},
        mrr=mrr(ranks, depth),
        ndcg=ndcg(ranks, depth),
    )


def group_by(items: Sequence[T], key: Callable[[T], Hashable]) -> dict[Hashable, list[int]]:
    """Positions of ``items`` per key, keys in first-seen order.

    >>> group_by(["zh", "en", "zh"], lambda x: x)
    {'zh': [0, 2], 'en': [1]}
    """
    out: dict[Hashable, list[int]] = {}
    for i, item in enumerate(items):
        out.setdefault(key(item), []).append(i)
    return out


# ---------------------------------------------------------------- answers


@dataclass(frozen=True)
class RefusalScores:
    """How well refusals separate unanswerable questions from answerable ones."""

    unanswerable: int
    answerable: int
    refused: int
    correct_refusals: int  # refused unanswerables
    precision: float | None  # refused unanswerables / all refusals (None: no refusal)
    recall: float | None  # refused unanswerables / unanswerables (None: no unanswerable)
    false_refusal_rate: float | None  # refused answerables / answerables

    def to_json(self) -> dict:
        r = lambda v: None if v is None else round(v, 4)  # noqa: E731
        return {
            "unanswerable": self.unanswerable,
            "answerable": self.answerable,
            "refused": self.refused,
            "correct_refusals": self.correct_refusals,
            "precision": r(self.precision),
            "recall": r(self.recall),
            "false_refusal_rate": r(self.false_refusal_rate),
        }


def refusal_scores(refused: Sequence[bool], answerable: Sequence[bool]) -> RefusalScores:
    """Refusal precision/recall on unanswerables and the false-refusal rate.

    >>> s = refusal_scores([True, True, False, False], [False, True, False, True])
    >>> s.precision, s.recall, s.false_refusal_rate
    (0.5, 0.5, 0.5)
    """
    if len(refused) != len(answerable):
        raise ValueError("refused and answerable must have the same length")
    n_unans = sum(1 for a in answerable if not a)
    n_ans = len(answerable) - n_unans
    true_ref = sum(1 for r, a in zip(refused, answerable) if r and not a)
    false_ref = sum(1 for r, a in zip(refused, answerable) if r and a)
    n_ref = true_ref + false_ref
    return RefusalScores(
        unanswerable=n_unans,
        answerable=n_ans,
        refused=n_ref,
        correct_refusals=true_ref,
        precision=true_ref / n_ref if n_ref else None,
        recall=true_ref / n_unans if n_unans else None,
        false_refusal_rate=false_ref / n_ans if n_ans else None,
    )


def containment_rate(correct: Sequence[bool]) -> float | None:
    """Share of answerable questions whose answer contains a gold answer."""
    return sum(correct) / len(correct) if correct else None


@dataclass(frozen=True)
class QuoteScores:
    """How tight the quotes of the answered questions are (refusals left out).

    ``first``: share of answers whose first quote holds a gold answer; ``precision``:
    mean share of an answer's quotes that hold one; ``per_answer``: mean quote count.
    Containment rewards quoting more; these say what the extra quotes cost.
    """

    answers: int
    first: float | None
    precision: float | None
    per_answer: float | None

    def to_json(self) -> dict:
        r = lambda v: None if v is None else round(v, 4)  # noqa: E731
        return {"answers": self.answers, "first": r(self.first), "precision": r(self.precision),
                "per_answer": r(self.per_answer)}


def quote_scores(quotes: Sequence[Sequence[str]], answers: Sequence[Sequence[str]]) -> QuoteScores:
    """Quote figures over answered questions: ``quotes[i]`` are answer i's quotes in
    citation order, ``answers[i]`` its gold answers. Answers without quotes count as
    a miss for ``first`` and a precision of 0.

    >>> s = quote_scores([["打造10分钟急救圈", "别的句子"], ["无关"], ["12分钟"]],
    ...                  [["10分钟"], ["15分钟"], ["12分钟"]])
    >>> s.answers, round(s.first, 3), round(s.precision, 3), round(s.per_answer, 3)
    (3, 0.667, 0.5, 1.333)
    """
    if not quotes:
        return QuoteScores(0, None, None, None)
    held = [[contains_answer(q, gold) for q in qs] for qs, gold in zip(quotes, answers)]
    first = sum(bool(h) and h[0] for h in held) / len(held)
    precision = sum(sum(h) / len(h) if h else 0.0 for h in held) / len(held)
    return QuoteScores(len(held), first, precision, sum(len(h) for h in held) / len(held))


# ---------------------------------------------------------------- latency


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile with linear interpolation (numpy's default method).

    >>> percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95)
    4.8
    >>> percentile([7.0], 99)
    7.0
    """
    if not values:
        raise ValueError("percentile of an empty list")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def latency_summary(values_ms: Sequence[float]) -> dict[str, float | int]:
    """``n``, mean and p50/p95/p99 of a list of latencies in milliseconds.

    >>> latency_summary([1.0, 2.0, 3.0, 4.0])["p50"]
    2.5
    """
    if not values_ms:
        return {"n": 0}
    return {
        "n": len(values_ms),
        "mean": round(sum(values_ms) / len(values_ms), 3),
        "p50": round(percentile(values_ms, 50), 3),
        "p95": round(percentile(values_ms, 95), 3),
        "p99": round(percentile(values_ms, 99), 3),
    }


def recall_at_k(found: Sequence[Sequence[int]], exact: Sequence[Sequence[int]], k: int) -> float:
    """Mean share of the exact top-``k`` ids that an approximate search returned.

    >>> round(recall_at_k([[1, 2, 3], [4, 5, 9]], [[1, 2, 3], [4, 5, 6]], 3), 4)
    0.8333
    """
    if len(found) != len(exact):
        raise ValueError("found and exact must have one row per query each")
    if not exact:
        return 0.0
    total = 0.0
    for got, truth in zip(found, exact):
        truth_k = [t for t in list(truth)[:k] if t >= 0]
        if not truth_k:
            continue
        total += len(set(list(got)[:k]) & set(truth_k)) / len(truth_k)
    return total / len(exact)


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b`` rounded, or ``None`` when either is missing or ``b`` is 0."""
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)

