"""Pure functions that fuse ranked lists of (id, score) from several retrievers into one."""

from __future__ import annotations

import math
from typing import Sequence

Ranked = Sequence[tuple[int, float]]


def reciprocal_rank_fusion(lists: Sequence[Ranked], k: int = 60, weights: Sequence[float] | None = None) -> list[tuple[int, float]]:
    """Cormack et al. 2009: score = sum of weight / (k + rank); robust to incomparable score scales."""
    weights = weights or [1.0] * len(lists)
    fused: dict[int, float] = {}
    for ranked, weight in zip(lists, weights):
        for rank, (item, _) in enumerate(ranked, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


def min_max(ranked: Ranked) -> dict[int, float]:
    """Scale scores to [0, 1] within one list; a list of equal scores maps to 1."""
    if not ranked:
        return {}
    scores = [s for _, s in ranked]
    low, high = min(scores), max(scores)
    span = high - low
    return {item: (s - low) / span if span > 0 else 1.0 for item, s in ranked}


def convex_combination(dense: Ranked, lexical: Ranked, dense_weight: float = 0.7) -> list[tuple[int, float]]:
    """Weighted sum of min-max normalized scores; an item missing from one list gets 0 there."""
    d, l = min_max(dense), min_max(lexical)
    fused = {
        item: dense_weight * d.get(item, 0.0) + (1.0 - dense_weight) * l.get(item, 0.0)
        for item in d.keys() | l.keys()
    }
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


def lift_by(ranked: Ranked, evidence: Sequence[float], weight: float) -> list[tuple[int, float]]:
    """Each item's score plus `weight` x its `evidence` min-max normalized over the list (NaN: none,
    counted as the lowest), re-sorted; items of equal score keep their order. The lift is never
    negative, so the list still ranks above any item that was below it."""
    values = [e for e in evidence if not math.isnan(e)]
    low, high = (min(values), max(values)) if values else (0.0, 0.0)
    span = high - low
    lifted = [(item, score + (weight * (e - low) / span if span > 0 and not math.isnan(e) else 0.0))
              for (item, score), e in zip(ranked, evidence)]
    return sorted(lifted, key=lambda pair: -pair[1])
