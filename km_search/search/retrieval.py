"""Hybrid retrieval: dense and lexical candidates fused into ranked Hits."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import lru_cache
from itertools import chain
from typing import Literal

import numpy as np

from km_search.index.dense import locate
from km_search.index.context import borrow_from_neighbors
from km_search.index.lexical import LexicalScores
from km_search.embedding.embedder import Embedder
from km_search.embedding.rerank import Reranker
from km_search.search.fusion import convex_combination, lift_by, reciprocal_rank_fusion
from km_search.search.grouping import group_ranked, grouped_depth
from km_search.settings import Settings, cpu_cores
from km_search.search.snippets import highlight
from km_search.index.layout import parts_from_row
from km_search.index.snapshot import Snapshot, meta_from_row
from km_search.types import DocumentGroup, Hit, Part, SearchFilters, SearchResult, indexed_text, part_at

Mode = Literal["hybrid", "dense", "lexical"]
# The passages that their best sentence reorders: the first page (10, 20 and 30 measured; docs/quality.md).
FIRST_PAGE = 10


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max(2, cpu_cores()), thread_name_prefix="km-lexical")


def feedback_vector(query: np.ndarray, passages: np.ndarray, query_weight: float) -> np.ndarray:
    """Move the query toward the centroid of its best passages (Rocchio), renormalized."""
    if not len(passages):
        return query
    moved = query_weight * query + (1.0 - query_weight) * passages.mean(axis=0)
    return (moved / np.linalg.norm(moved)).astype(np.float32)


def _index_in(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Position of each wanted chunk id in the ascending `ids`, -1 where it is absent."""
    out = np.full(len(wanted), -1, dtype=np.int64)
    held, rows = locate(ids, wanted)
    out[held] = rows
    return out


class Retriever:
    def __init__(self, snapshot: Snapshot, embedder: Embedder, settings: Settings, reranker: Reranker | None = None):
        self.snapshot = snapshot
        self.embedder = embedder
        self.settings = settings
        self.reranker = reranker
        self._readable_chunks: dict[tuple[str, ...], np.ndarray] = {}  # access restriction -> chunk ids

    def allowed(self, filters: SearchFilters | None) -> np.ndarray | None:
        """The chunk ids the filters and access restriction let through; None: all. A restriction by
        groups alone (every request of a reader) is cached for the snapshot's life: it is the same
        for every query of everyone in those groups."""
        if not filters:
            return None
        if filters.groups is None or replace(filters, groups=None):
            return self.snapshot.allowed_chunks(filters)
        cached = self._readable_chunks.get(filters.groups)
        if cached is None:
            cached = self.snapshot.allowed_chunks(filters)
            if len(self._readable_chunks) < 256:
                self._readable_chunks[filters.groups] = cached
        return cached

    def rank(
        self, query: str, depth: int, mode: Mode = "hybrid", filters: SearchFilters | None = None,
        sentences: bool = True,
    ) -> list[tuple[int, float, float | None, float | None]]:
        """(chunk id, fused score, dense score, lexical score), best first, at most `depth` long.
        `sentences=False` leaves out the first page's lift by its best sentences: answers weigh each
        sentence's similarity themselves, and counting it twice quoted the gold less (docs/quality.md).

        Filters, and the reader's access restriction they carry (`filters.groups`), restrict both
        retrievers to the allowed chunks before their top candidates are taken, so filtering never
        empties a page that the matching documents could fill, and no result, count or page ever
        reflects a document the reader may not see.
        """
        settings = self.settings
        n = max(depth, settings.candidates)
        allowed = self.allowed(filters)
        if allowed is not None and not len(allowed):
            return []
        # The lexical side needs no embedding: it runs on another core while the query is embedded
        # and the dense index searched (numpy, FAISS and OpenVINO release the GIL).
        pending = _pool().submit(self._lexical, query, n, allowed) if mode != "dense" else None
        query_vector = self.embedder.encode_query(query) if mode != "lexical" else None
        dense = self.snapshot.dense_search(query_vector, n, allowed) if query_vector is not None else []
        lexical, lexical_scores = pending.result() if pending is not None else ([], None)
        dense, lexical = self._in_context(query_vector, dense, lexical, lexical_scores, n)
        fused = self._fuse(dense, lexical, mode)
        if mode == "hybrid" and settings.feedback_passages and fused:
            # Rocchio feedback on the dense side: the best fused passages say what the query means
            # in this corpus' own words, which questions phrased unlike the documents need.
            expanded = feedback_vector(
                query_vector, self.snapshot.vectors([cid for cid, _ in fused[: settings.feedback_passages]]),
                settings.feedback_weight,
            )
            dense = self.snapshot.dense_search(expanded, n, allowed)
            dense, lexical = self._in_context(expanded, dense, lexical, lexical_scores, n)
            fused = self._fuse(dense, lexical, mode)
        if mode == "hybrid" and sentences and settings.sentence_weight and fused:
            fused = self._by_best_sentence(query_vector, fused)
        if self.reranker is not None and mode == "hybrid":
            fused = self._rerank(query, fused)
        d, l = dict(dense), dict(lexical)
        return [(cid, score, d.get(cid), l.get(cid)) for cid, score in fused[:depth]]

    def _lexical(self, query: str, n: int, allowed: np.ndarray | None) -> tuple[list[tuple[int, float]], LexicalScores]:
        """BM25's top n, and every passage's score for the context step."""
        scores = self.snapshot.lexical.scored(query, allowed)
        return scores.top(n), scores

    def _in_context(self, query_vector: np.ndarray | None, dense: list[tuple[int, float]], lexical: list[tuple[int, float]],
                    lexical_scores: LexicalScores | None, n: int) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """Both retrievers' top n, rescored with what a pooled vector and BM25 miss (index/context.py):
        each passage's best window joins its dense score, and each passage borrows from its best
        neighbour in the same section, which can bring that neighbour in as a new candidate (a
        neighbour shares its document, so per-document filters and access rules let it through)."""
        settings = self.settings
        if not (settings.window_weight or settings.dense_neighbor_weight or settings.lexical_neighbor_weight):
            return dense, lexical
        ids = np.unique(np.fromiter((cid for cid, _ in chain(dense, lexical)), dtype=np.int64))
        if not len(ids):
            return dense, lexical
        # Pairs of adjacent passages (earlier, later) around the candidates; a neighbour brought in
        # needs no lookup of its own: its link to the candidate is the same pair read backwards.
        previous, following = self.snapshot.neighbors(ids)
        earlier = np.concatenate([previous[previous >= 0], ids[following >= 0]])
        later = np.concatenate([ids[previous >= 0], following[following >= 0]])
        ids = np.union1d(ids, np.concatenate([earlier, later]))
        before, after = np.full(len(ids), -1), np.full(len(ids), -1)
        before[_index_in(ids, later)] = _index_in(ids, earlier)
        after[_index_in(ids, earlier)] = _index_in(ids, later)

        def top(scores: np.ndarray, weight: float, positive: bool) -> list[tuple[int, float]]:
            scores = borrow_from_neighbors(scores, before, after, weight) if weight else scores
            best = np.argsort(-scores, kind="stable")[:n]
            best = best[scores[best] > 0] if positive else best
            return list(zip(ids[best].tolist(), scores[best].tolist()))

        # Both sides' scores of the same ids: on shards served elsewhere, two calls in flight; scores
        # held here are read inline (a thread would wait for the GIL longer than the reading takes).
        wanted = bool(lexical) and lexical_scores is not None
        pending = _pool().submit(lexical_scores.of, ids) if wanted and lexical_scores.remote else None
        if dense:
            pooled, windows = self.snapshot.dense_scores(query_vector, ids)
            mixed = (1 - settings.window_weight) * pooled + settings.window_weight * windows
            dense = top(np.where(np.isnan(windows), pooled, mixed).astype(np.float32), settings.dense_neighbor_weight, False)
        if wanted:
            scores = pending.result() if pending is not None else lexical_scores.of(ids)
            lexical = top(scores, settings.lexical_neighbor_weight, True)
        return dense, lexical

    def _fuse(self, dense, lexical, mode: Mode) -> list[tuple[int, float]]:
        if mode == "dense":
            return list(dense)
        if mode == "lexical":
            return list(lexical)
        if self.settings.fusion == "rrf":
            return reciprocal_rank_fusion([dense, lexical], k=self.settings.rrf_k)
        return convex_combination(dense, lexical, self.settings.dense_weight)

    def _by_best_sentence(self, query_vector: np.ndarray, fused: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """The first page reordered by each passage's best sentence (the sentence vectors stored for
        answers, those of the text the passage vector sees): a passage one of whose sentences says
        what the question asks rises above one that is only about its topic, which the passage vector
        and its fixed windows cannot tell apart."""
        head = fused[:FIRST_PAGE]
        best = self.snapshot.best_sentence_scores(query_vector, [cid for cid, _ in head])
        return lift_by(head, best.tolist(), self.settings.sentence_weight) + list(fused[FIRST_PAGE:])

    def _rerank(self, query: str, fused: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """Reorder the head of the fused list with a cross-encoder; the tail keeps its order below it."""
        head, tail = fused[: self.settings.rerank_depth], fused[self.settings.rerank_depth :]
        rows = self.snapshot.chunk_rows(cid for cid, _ in head)
        texts = [indexed_text(rows[cid]["title"], json.loads(rows[cid]["heading_path"]), rows[cid]["text"])
                 for cid, _ in head]  # judged as the embedder read them
        scores = self.reranker.score(query, texts)
        reranked = sorted(zip((cid for cid, _ in head), scores), key=lambda pair: -pair[1])
        floor = min((s for _, s in reranked), default=0.0)
        return reranked + [(cid, floor - 1.0 - i) for i, (cid, _) in enumerate(tail)]

    def search(
        self, query: str, k: int = 10, offset: int = 0, mode: Mode = "hybrid", filters: SearchFilters | None = None,
        group: bool = False, sentences: bool = True,
    ) -> SearchResult:
        """The ranked passages `offset` to `offset + k`; with `group`, the documents `offset` to
        `offset + k` instead, each its best passage and its other passages among the candidates
        (search/grouping.py), and `hits` their best passages."""
        started = time.perf_counter()
        if group:
            ranked = self.rank(query, grouped_depth(k, offset, self.settings.candidates), mode, filters, sentences)
            pages = group_ranked(ranked, self.snapshot.document_ids(cid for cid, *_ in ranked), k, offset)
            made = iter(self.hits(query, [item for members in pages for item in members]))
            groups = []
            for members in pages:
                best, *more = [next(made) for _ in members]
                groups.append(DocumentGroup(best.doc_id, best.doc_path, best.title, best, tuple(more)))
            took = (time.perf_counter() - started) * 1000
            return SearchResult(tuple(g.best for g in groups), round(took, 2), groups=tuple(groups))
        ranked = self.rank(query, offset + k, mode, filters, sentences)
        hits = self.hits(query, ranked[offset : offset + k])
        took = (time.perf_counter() - started) * 1000
        return SearchResult(hits=tuple(hits), took_ms=round(took, 2))

    def hits(self, query: str, ranked: list[tuple[int, float, float | None, float | None]]) -> list[Hit]:
        """Ranked (chunk id, score, dense, lexical) tuples made into Hits with text, link and metadata."""
        rows = self.snapshot.chunk_rows(cid for cid, *_ in ranked)
        hits = []
        for cid, score, dense_score, lexical_score in ranked:
            row = rows[cid]
            excerpt, marked = highlight(row["text"], query)
            parts = parts_from_row(row)
            part = matched_part(parts, marked)
            hits.append(
                Hit(
                    chunk_id=cid,
                    text=row["text"],
                    source=part.source if part else row["source"],
                    title=row["title"],
                    score=round(score, 6),
                    heading_path=part.heading_path if part else tuple(json.loads(row["heading_path"])),
                    snippet=excerpt,
                    doc_path=row["doc_path"],
                    page=part.page if part else row["page"],
                    meta=meta_from_row(row),
                    dense_score=dense_score,
                    lexical_score=lexical_score,
                    doc_id=row["doc_id"],
                    parts=parts,
                )
            )
        return hits


def matched_part(parts: tuple[Part, ...], marked: list[int]) -> Part | None:
    """Of a passage of joined sections, the part holding most of the snippet's matched words, so the
    hit links to it; None (the passage's own link, its largest part) when nothing was matched."""
    if not parts or not marked:
        return None
    counts = Counter(part_at(parts, offset) for offset in marked)
    return max(parts, key=lambda p: counts.get(p, 0))
