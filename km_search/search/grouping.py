"""Results grouped by document: one entry per document, its best passage first, so one long
document does not fill a page (GET /search?group=document).

Pure: ranked (chunk id, score, dense, lexical) tuples and each chunk's document go in, pages of
groups come out. A group's `more` are that document's other passages among the ranked candidates,
best first, at most MORE_PER_DOCUMENT of them.
"""

from __future__ import annotations

from typing import Hashable, Mapping, Sequence, TypeVar

MORE_PER_DOCUMENT = 3  # "more from this document" under a result: a short list, not the whole document
DEPTH_PER_DOCUMENT = 5  # candidates ranked per document asked for, so a page of k documents fills

Ranked = TypeVar("Ranked", bound=tuple)


def group_ranked(
    ranked: Sequence[Ranked], document_of: Mapping[int, Hashable], k: int, offset: int = 0,
    more: int = MORE_PER_DOCUMENT,
) -> list[list[Ranked]]:
    """The ranked passages in groups by document, documents ordered by their best passage; the
    groups `offset` to `offset + k`, each its best passage then up to `more` others, in rank order.
    `document_of` maps a chunk id (the tuples' first item) to its document."""
    groups: dict[Hashable, list[Ranked]] = {}
    for item in ranked:
        members = groups.setdefault(document_of[item[0]], [])
        if len(members) <= more:
            members.append(item)
    return list(groups.values())[offset : offset + k]


def grouped_depth(k: int, offset: int, candidates: int) -> int:
    """How many passages to rank for a page of k documents after `offset` documents."""
    return max(candidates, DEPTH_PER_DOCUMENT * (offset + k))
