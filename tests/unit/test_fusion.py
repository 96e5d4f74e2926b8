import pytest

from qa.fusion import lexical_weight, top_k, weighted_rrf


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
