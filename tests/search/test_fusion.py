import pytest

from km_search.search.fusion import convex_combination, min_max, reciprocal_rank_fusion


def test_rrf_rewards_agreement():
    dense = [(1, 0.9), (2, 0.8), (3, 0.7)]
    lexical = [(3, 12.0), (1, 10.0), (4, 1.0)]
    fused = reciprocal_rank_fusion([dense, lexical], k=60)
    assert [i for i, _ in fused] == [1, 3, 2, 4]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)


def test_min_max_scales_to_unit_interval():
    assert min_max([(1, 5.0), (2, 3.0), (3, 1.0)]) == {1: 1.0, 2: 0.5, 3: 0.0}
    assert min_max([(7, 2.0)]) == {7: 1.0}
    assert min_max([]) == {}


def test_convex_combination_weights_and_missing_items():
    dense = [(1, 0.9), (2, 0.5)]
    lexical = [(2, 8.0), (3, 4.0)]
    fused = dict(convex_combination(dense, lexical, dense_weight=0.7))
    assert fused[1] == pytest.approx(0.7)
    assert fused[2] == pytest.approx(0.3)
    assert fused[3] == pytest.approx(0.0)
    assert [i for i, _ in convex_combination(dense, lexical, dense_weight=0.2)][0] == 2
