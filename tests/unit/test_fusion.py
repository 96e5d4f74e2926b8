import numpy as np
import pytest

from qa.fusion import lexical_weight, score_fusion, top_k, weighted_rrf


def test_weighted_rrf_hand_computed():
    # item 7: rank 1 in list A (w=1) → 1/(1+1) = 0.5
    # item 3: rank 2 in A → 1/(1+2); rank 1 in B (w=0.5) → 0.5/(1+1); total 1/3 + 1/4
    fused = weighted_rrf([[7, 3], [3]], weights=[1.0, 0.5], c=1.0)
    assert fused[7] == pytest.approx(0.5)
    assert fused[3] == pytest.approx(1 / 3 + 1 / 4)


def test_zero_weight_list_is_ignored():
    fused = weighted_rrf([[1, 2], [2, 9]], weights=[1.0, 0.0], c=60)
    assert set(fused) == {1, 2}
    assert fused[1] > fused[2]


def test_mismatched_lengths_name_the_problem():
    with pytest.raises(ValueError, match="2 rankings but 1 weights"):
        weighted_rrf([[1], [2]], weights=[1.0])


def test_lexical_weight_by_language():
    assert lexical_weight(1.0) == 1.0
    assert lexical_weight(0.0) == 0.0
    assert lexical_weight(0.0, translated_share=1.0, translated_weight=0.4) == pytest.approx(0.4)
    assert lexical_weight(0.5, translated_share=1.0, translated_weight=0.4) == pytest.approx(0.7)


def test_top_k_breaks_ties_by_id():
    assert top_k({5: 1.0, 2: 1.0, 9: 3.0}, 2) == [(9, 3.0), (2, 1.0)]


def test_score_fusion_hand_computed():
    # dense 0.9/0.8/0.7 → normalised 1, 0.5, 0 between min 0.7 and max 0.9;
    # bm25 {3: 8, 2: 2} → 1.0 and 0.25, times weight 0.5 → 0.5 and 0.125
    fused = score_fusion({1: 0.9, 2: 0.8, 3: 0.7}, {3: 8.0, 2: 2.0}, lexical_weight=0.5)
    assert fused[1] == pytest.approx(1.0)
    assert fused[2] == pytest.approx(0.5 + 0.125)
    assert fused[3] == pytest.approx(0.0 + 0.5)


def test_score_fusion_ignores_lexical_at_zero_weight_and_keeps_lexical_only_items():
    assert score_fusion({1: 0.5}, {2: 3.0}, lexical_weight=0.0) == {1: 0.0}
    fused = score_fusion({1: 0.9, 2: 0.1}, {9: 3.0}, lexical_weight=1.0)
    assert fused[9] == pytest.approx(1.0) and fused[1] == pytest.approx(1.0)


def test_score_fusion_with_explicit_floor():
    fused = score_fusion({1: 1.0, 2: 0.2}, {}, lexical_weight=1.0, dense_floor=0.5)
    assert fused == {1: 1.0, 2: 0.0}


@pytest.mark.parametrize("seed", range(5))
def test_best_positions_equals_a_full_sort_cut_at_depth(seed):
    from qa.index.bm25 import best_positions

    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, 500).astype(np.float32)  # many ties
    for depth in (1, 7, 100, 499, 500, 600):
        full = np.sort(np.lexsort((np.arange(500), -scores))[:depth])
        assert best_positions(scores, depth).tolist() == full.tolist()
