"""Metric functions against values computed by hand."""

import math

import pytest

from qa.eval.metrics import (
    contains_answer,
    first_rank,
    hit_rate,
    latency_summary,
    longest_common_run,
    mrr,
    ndcg,
    passage_holds_evidence,
    percentile,
    recall_at_k,
    refusal_scores,
    retrieval_scores,
)

# Five questions: first relevant passage at rank 1, 2, 4, 11 (beyond the cut) and never.
RANKS = [1, 2, 4, 11, None]


def test_hit_rate_by_hand():
    assert hit_rate(RANKS, 1) == pytest.approx(1 / 5)
    assert hit_rate(RANKS, 3) == pytest.approx(2 / 5)
    assert hit_rate(RANKS, 5) == pytest.approx(3 / 5)
    assert hit_rate(RANKS, 10) == pytest.approx(3 / 5)
    assert hit_rate(RANKS, 11) == pytest.approx(4 / 5)
    assert hit_rate([], 5) == 0.0


def test_mrr_by_hand():
    # (1 + 1/2 + 1/4) / 5; rank 11 is beyond @10 and counts as a miss
    assert mrr(RANKS, 10) == pytest.approx(1.75 / 5)
    assert mrr(RANKS, 20) == pytest.approx((1.75 + 1 / 11) / 5)


def test_ndcg_by_hand():
    expected = (1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(5)) / 5
    assert ndcg(RANKS, 10) == pytest.approx(expected)
    assert ndcg([1, 1]) == 1.0
    assert ndcg([None]) == 0.0


def test_retrieval_scores_bundle():
    s = retrieval_scores(RANKS, ks=(1, 5))
    assert s.n == 5 and s.hits == {1: pytest.approx(0.2), 5: pytest.approx(0.6)}
    assert s.to_json()["mrr@10"] == round(1.75 / 5, 4)


def test_first_rank():
    assert first_rank([False, False, True]) == 3
    assert first_rank([False]) is None


def test_longest_common_run():
    assert longest_common_run("abcdef", "xxcdeyy") == 3
    assert longest_common_run("abcdef", "abcdef") == 6
    assert longest_common_run("aaaa", "aa") == 2
    assert longest_common_run("ab", "") == 0


def test_passage_hit_rules():
    evidence = "推进院前急救体系建设,打造中心城区“10分钟”急救圈"
    answers = ["10分钟"]
    # whole evidence, in traditional characters and with spaces: folded before comparing
    assert passage_holds_evidence("宜昌 推進院前急救體系建設, 打造中心城區“10分鐘”急救圈。", evidence, answers)
    # cut by a chunk boundary: 18 of the 26 evidence characters with the answer
    assert passage_holds_evidence("建设,打造中心城区“10分钟”急救圈。二级", evidence, answers)
    # the same piece without the answer string is not a hit
    assert not passage_holds_evidence("推进院前急救体系建设,打造中心城区", evidence, answers)
    # the answer alone, without half of the evidence, is not a hit
    assert not passage_holds_evidence("武汉打造“10分钟”急救圈", evidence, answers)
    assert not passage_holds_evidence("anything", "", answers)


def test_contains_answer_folds():
    assert contains_answer("答：鳳凰縣周生堂公司", ["凤凰县周生堂公司"])
    assert contains_answer("ＡＢＣ１２３", ["abc123"])
    assert not contains_answer("无法回答", ["10分钟"])


def test_refusal_scores_by_hand():
    # 3 unanswerable (2 refused), 4 answerable (1 refused)
    refused = [True, True, False, True, False, False, False]
    answerable = [False, False, False, True, True, True, True]
    s = refusal_scores(refused, answerable)
    assert s.precision == pytest.approx(2 / 3)
    assert s.recall == pytest.approx(2 / 3)
    assert s.false_refusal_rate == pytest.approx(1 / 4)
    none = refusal_scores([False, False], [True, True])
    assert none.precision is None and none.recall is None and none.false_refusal_rate == 0.0
    with pytest.raises(ValueError):
        refusal_scores([True], [])


def test_percentile_matches_linear_interpolation():
    values = [15.0, 20.0, 35.0, 40.0, 50.0]
    assert percentile(values, 0) == 15.0
    assert percentile(values, 100) == 50.0
    assert percentile(values, 50) == 35.0
    assert percentile(values, 40) == pytest.approx(29.0)  # pos 1.6 → 20 + 0.6 * 15
    assert percentile(list(reversed(values)), 90) == pytest.approx(46.0)  # pos 3.6 → 40 + 0.6 * 10
    with pytest.raises(ValueError):
        percentile([], 50)


def test_latency_summary():
    s = latency_summary([4.0, 1.0, 3.0, 2.0])
    assert s == {"n": 4, "mean": 2.5, "p50": 2.5, "p95": 3.85, "p99": 3.97}
    assert latency_summary([]) == {"n": 0}


def test_recall_at_k_by_hand():
    exact = [[1, 2, 3, 4], [5, 6, 7, 8]]
    found = [[1, 2, 9, 4], [8, 7, 6, 5]]
    assert recall_at_k(found, exact, 4) == pytest.approx((3 / 4 + 1) / 2)
    assert recall_at_k(found, exact, 2) == pytest.approx((1 + 0) / 2)


def test_quote_scores_by_hand():
    from qa.eval.metrics import quote_scores

    # answer 1: first quote holds "10分钟", the second does not; answer 2: traditional
    # characters still match after folding; answer 3: no quotes at all.
    s = quote_scores([["宜昌打造10分钟急救圈", "二级医院建设P2实验室"], ["網格驛站136個"], []],
                     [["10分钟"], ["136个"], ["12分钟"]])
    assert (s.answers, s.first, s.precision, s.per_answer) == (3, 2 / 3, (0.5 + 1.0 + 0.0) / 3, 1.0)
    assert quote_scores([], []).to_json() == {"answers": 0, "first": None, "precision": None, "per_answer": None}
