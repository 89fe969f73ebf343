import pytest

from km_search.search.fusion import convex_combination, lift_by, min_max, reciprocal_rank_fusion


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


def test_lift_by_adds_the_weighted_scaled_evidence_and_resorts():
    ranked = [(1, 0.9), (2, 0.8), (3, 0.7)]
    lifted = lift_by(ranked, [0.2, 0.6, 0.4], weight=0.5)
    assert [i for i, _ in lifted] == [2, 3, 1]
    assert dict(lifted) == pytest.approx({1: 0.9, 2: 1.3, 3: 0.95})


def test_lift_by_counts_missing_evidence_as_the_lowest_and_keeps_ties_in_order():
    ranked = [(1, 0.5), (2, 0.5), (3, 0.5)]
    assert [i for i, _ in lift_by(ranked, [0.4, float("nan"), 0.5], weight=0.2)] == [3, 1, 2]
    assert [i for i, _ in lift_by(ranked, [float("nan"), 0.3, 0.5], weight=0.2)] == [3, 1, 2]
    assert lift_by(ranked, [0.3, 0.3, 0.3], weight=0.2) == ranked  # nothing tells them apart
    assert lift_by(ranked, [float("nan")] * 3, weight=0.2) == ranked
    assert lift_by([], [], weight=0.2) == []
