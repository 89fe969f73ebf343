"""Hybrid retrieval: dense and lexical candidates fused into ranked Hits."""

from __future__ import annotations

import json
import time
from typing import Literal

from .embedding import Embedder
from .fusion import convex_combination, reciprocal_rank_fusion
from .lexical import lexical_search
from .settings import Settings
from .snippets import snippet
from .store import Snapshot, meta_from_row
from .types import Hit, SearchResult

Mode = Literal["hybrid", "dense", "lexical"]


class Retriever:
    def __init__(self, snapshot: Snapshot, embedder: Embedder, settings: Settings):
        self.snapshot = snapshot
        self.embedder = embedder
        self.settings = settings

    def rank(self, query: str, depth: int, mode: Mode = "hybrid") -> list[tuple[int, float, float | None, float | None]]:
        """(chunk id, fused score, dense score, lexical score), best first, at most `depth` long."""
        n = max(depth, self.settings.candidates)
        dense = self.snapshot.dense_search(self.embedder.encode([query])[0], n) if mode != "lexical" else []
        lexical = lexical_search(self.snapshot.db, query, n) if mode != "dense" else []
        if mode == "dense":
            fused = dense
        elif mode == "lexical":
            fused = lexical
        elif self.settings.fusion == "rrf":
            fused = reciprocal_rank_fusion([dense, lexical], k=self.settings.rrf_k)
        else:
            fused = convex_combination(dense, lexical, self.settings.dense_weight)
        d, l = dict(dense), dict(lexical)
        return [(cid, score, d.get(cid), l.get(cid)) for cid, score in fused[:depth]]

    def search(self, query: str, k: int = 10, offset: int = 0, mode: Mode = "hybrid") -> SearchResult:
        started = time.perf_counter()
        ranked = self.rank(query, offset + k, mode)
        page = ranked[offset : offset + k]
        rows = self.snapshot.chunk_rows(cid for cid, *_ in page)
        hits = []
        for cid, score, dense_score, lexical_score in page:
            row = rows[cid]
            hits.append(
                Hit(
                    chunk_id=cid,
                    text=row["text"],
                    source=row["source"],
                    title=row["title"],
                    score=round(score, 6),
                    heading_path=tuple(json.loads(row["heading_path"])),
                    snippet=snippet(row["text"], query),
                    doc_path=row["doc_path"],
                    page=row["page"],
                    meta=meta_from_row(row),
                    dense_score=dense_score,
                    lexical_score=lexical_score,
                )
            )
        took = (time.perf_counter() - started) * 1000
        return SearchResult(hits=tuple(hits), total_candidates=len(ranked), took_ms=round(took, 2))
