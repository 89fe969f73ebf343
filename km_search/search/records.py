"""GET /decisions and /lessons: one entry per document, records still in force first."""

from __future__ import annotations


# Records no longer in force. Among hits of about equal relevance, /decisions lists the current record
# first: a record with one of these statuses has its score multiplied by NOT_CURRENT_FACTOR, so it
# still comes first when it is clearly the better match (asked about by name), and falls behind the
# record that replaced it on the same topic, whose score is usually within a few percent of its own.
NOT_CURRENT = frozenset({"superseded", "deprecated", "rejected", "abandoned", "reverted", "withdrawn"})
NOT_CURRENT_FACTOR = 0.85


def current_first(ranked: list[tuple], docs: dict[int, tuple[int, str | None]], k: int) -> list[tuple]:
    """The best passage of each of the k best documents, with the scores of records no longer in
    force (NOT_CURRENT) scaled by NOT_CURRENT_FACTOR before they are compared. `ranked` holds
    (chunk id, score, dense, lexical) tuples; `docs` maps chunk id -> (doc id, status)."""
    best: dict[int, tuple] = {}
    for cid, score, *rest in ranked:
        doc_id, status = docs[cid]
        if (status or "").lower() in NOT_CURRENT:
            score -= abs(score) * (1 - NOT_CURRENT_FACTOR)  # scaled, whatever the sign of the fused score
        if doc_id not in best or score > best[doc_id][1]:
            best[doc_id] = (cid, score, *rest)
    return sorted(best.values(), key=lambda item: -item[1])[:k]
