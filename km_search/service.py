"""The facade the HTTP API and the CLI both call. It owns the loaded snapshot and the model."""

from __future__ import annotations

import datetime as dt
import threading
import time
from functools import lru_cache
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

from km_search.access.principals import LOCAL, Principal, restrict
from km_search.index.documents import SourceDocument, find_document, may_read
from km_search.embedding.embedder import Embedder
from km_search.errors import DocumentNotFound, IndexMismatch
from km_search.experts.ranking import experts_from_ranking
from km_search.embedding.rerank import Reranker
from km_search.answers.ask import QuestionAnswering
from km_search.search.query import check_k, check_offset, validated_query
from km_search.search.records import current_first
from km_search.search.retrieval import Mode, Retriever
from km_search.settings import Settings
from km_search.index.snapshot import Snapshot
from km_search.index.locks import current_snapshot_path, hold_snapshots, release_snapshots
from km_search.types import AskResult, ExpertResult, GapReport, SearchFilters, SearchResult


@lru_cache(maxsize=1)
def _one_blas_thread() -> None:
    """A query's numpy products are small (hundreds of rows); OpenBLAS threads left spinning after
    one take the cores FAISS's OpenMP threads need for the next search (measured at 10k passages:
    dense search p50 1.3 -> 7.8 ms, p90 27 ms, with two BLAS threads)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


class SearchService:
    def __init__(self, settings: Settings, index: str | None = None, embedder: Embedder | None = None,
                 ray_address: str | None = None):
        """`ray_address`: serve the snapshot's shards on that Ray cluster (km_search/cluster/serving.py)."""
        _one_blas_thread()
        self.settings = settings
        self.ray_address = ray_address
        self.index = index or settings.index
        self.index_path: Path = settings.index_path(self.index)
        self.embedder = embedder or Embedder.from_settings(settings, self.index, queries=True)
        self.reranker = Reranker(settings.reranker) if settings.reranker else None
        self._lock = threading.Lock()
        self._retriever: Retriever | None = None
        self.qa = QuestionAnswering(settings, self.index_path, self.embedder, lambda: self.retriever,
                                    lambda: self._retriever)  # answers, the query log and gaps

    def load(self) -> "SearchService":
        """Open the published snapshot and warm the model, so the first query is as fast as the rest."""
        snapshot = self._open()
        self._check_model(snapshot)
        self.embedder.encode(["warm up"])
        with self._lock:
            old, self._retriever = self._retriever, Retriever(snapshot, self.embedder, self.settings, self.reranker)
            # Requests that took the old snapshot may still read it: garbage collection keeps both.
            hold_snapshots(self.index_path, [snapshot.snapshot_id] + ([old.snapshot.snapshot_id] if old else []))
        if old is not None and self.ray_address:
            from km_search.cluster.serving import retire

            retire(old.snapshot)
        return self

    def _open(self) -> Snapshot:
        """The published snapshot, its shards here or (with a Ray address) on Ray Serve deployments
        that are all up before it is returned, so a swap never waits on one."""
        if not self.ray_address:
            return Snapshot.open(self.index_path, self.index)
        from km_search.cluster.connect import connect
        from km_search.cluster.serving import deploy

        connect(self.ray_address)
        return deploy(self.index_path, self.index)

    def _check_model(self, snapshot: Snapshot) -> None:
        self.embedder.match_index(snapshot.manifest.get("model", {}))  # queries as the passages were embedded
        built_with = snapshot.manifest.get("model", {}).get("name")
        if built_with and built_with != self.embedder.model_name:
            raise IndexMismatch(
                f"index '{self.index}' was built with {built_with} but KM_MODEL is "
                f"{self.embedder.model_name}: rebuild it with `km ingest PATH --index {self.index}` "
                f"or set KM_MODEL={built_with}"
            )

    @property
    def retriever(self) -> Retriever:
        retriever = self._retriever
        if retriever is None:
            retriever = self.load()._retriever
        assert retriever is not None
        return retriever

    def reload_if_changed(self) -> bool:
        """Swap in a newer published snapshot; requests already running finish on the old one, which
        is released (closed and left to garbage collection) once no request holds it."""
        current = current_snapshot_path(self.index_path)
        if current is None or (self._retriever and self._retriever.snapshot.path == current):
            return False
        self.load()
        return True

    def close(self) -> None:
        """Let garbage collection have this process's snapshots, and the cluster its shard
        deployments (at server shutdown)."""
        release_snapshots(self.index_path)
        if self.ray_address and self._retriever is not None:
            from km_search.cluster.serving import retire

            retire(self._retriever.snapshot, after_s=0)

    def search(
        self, query: str, k: int = 10, offset: int = 0, mode: Mode = "hybrid", filters: SearchFilters | None = None,
        principal: Principal = LOCAL, group: bool = False,
    ) -> SearchResult:
        """Ranked passages; `filters` (type, project, author, tag, path, dates) and the principal's
        access restriction apply before top-k. Every method taking a principal restricts this way;
        the default, LOCAL, is the command line's user, who reads everything. With `group`, k and
        offset count documents and `groups` holds each one's best and other passages."""
        query = validated_query(query, self.settings)
        check_k(k, self.settings)
        check_offset(offset)
        filters = restrict(filters, principal)
        found = self.retriever.search(query, k=k, offset=offset, mode=mode, filters=filters, group=group)
        return self.qa.log_search(query, mode, found)

    def experts(
        self, query: str, k: int = 5, filters: SearchFilters | None = None, principal: Principal = LOCAL
    ) -> ExpertResult:
        """People who authored or changed the most relevant material on the query (docs/experts.md),
        from the documents the principal may read only: evidence, names and counts alike."""
        started = time.perf_counter()
        query = validated_query(query, self.settings)
        check_k(k, self.settings)
        retriever = self.retriever
        filters = restrict(filters, principal)
        ranked = retriever.rank(query, self.settings.expert_passages, "hybrid", filters)
        experts = experts_from_ranking(
            retriever.snapshot, [(cid, score) for cid, score, *_ in ranked], dt.date.today(),
            self.settings.expert_half_life_days, k, readable=filters.groups,
        )
        return ExpertResult(tuple(experts), _ms_since(started))

    def records(
        self, query: str, doc_type: str, k: int = 10, filters: SearchFilters | None = None,
        principal: Principal = LOCAL,
    ) -> SearchResult:
        """The k documents of one type (decision, lesson, ...) that best match the query, each as its
        best passage: GET /decisions and /lessons. Other filters still apply; records no longer in
        force rank below current ones of about equal relevance (`current_first`)."""
        started = time.perf_counter()
        query = validated_query(query, self.settings)
        check_k(k, self.settings)
        retriever = self.retriever
        filters = replace(restrict(filters, principal), types=(doc_type,))
        ranked = retriever.rank(query, max(10 * k, self.settings.candidates), "hybrid", filters)
        rows = retriever.snapshot.chunk_rows(cid for cid, *_ in ranked)
        best = current_first(ranked, {cid: (row["doc_id"], row["status"]) for cid, row in rows.items()}, k)
        return SearchResult(tuple(retriever.hits(query, best)), _ms_since(started))

    def ask(
        self, query: str, k: int = 5, mode: Mode = "hybrid", filters: SearchFilters | None = None,
        principal: Principal = LOCAL,
    ) -> AskResult:
        """A direct answer quoted from the top passages with citations, or an abstention (docs/answers.md).
        Only passages the principal may read are retrieved, quoted or shown to a language model."""
        return self.qa.ask(query, k=k, mode=mode, filters=restrict(filters, principal))

    def ask_stream(
        self, query: str, k: int = 5, mode: Mode = "hybrid", filters: SearchFilters | None = None,
        principal: Principal = LOCAL,
    ) -> Iterator[tuple[str, object]]:
        """ask() as events: hits, the language model's text as it comes, then the checked answer."""
        return self.qa.ask_stream(query, k=k, mode=mode, filters=restrict(filters, principal))

    def feedback(
        self, query_id: str, helpful: bool, target: str = "answer", source: str | None = None,
        chunk_id: int | None = None, comment: str | None = None,
    ) -> int:
        """Store whether a logged query's answer or passage helped; its id in the log."""
        return self.qa.feedback(query_id, helpful, target, source, chunk_id, comment)

    def gaps(self, days: float | None = None, limit: int = 20) -> GapReport:
        """Knowledge gaps: weak logged questions grouped into topics."""
        return self.qa.gaps(days=days, limit=limit)

    def stats(self, principal: Principal = LOCAL) -> dict[str, Any]:
        """What the snapshot holds; documents and passages counted among those the principal may read."""
        snapshot = self.retriever.snapshot
        described = snapshot.describe()
        readable = principal.readable_groups()
        if readable is not None:
            documents, chunks = snapshot.readable_counts(readable)
            described.update(documents=documents, chunks=chunks)
        return described

    def document(self, doc_id: int, principal: Principal = LOCAL) -> SourceDocument:
        """A document of the published snapshot, for the source viewer: found by id, never by a path,
        and only when the principal may read it (otherwise it is as absent as an unknown id)."""
        return find_document(self.retriever.snapshot, doc_id, principal.readable_groups())

    def readable_document(self, doc_id: int, principal: Principal = LOCAL) -> str:
        """The path of a document the principal may read (DELETE /documents/{id}); DocumentNotFound otherwise."""
        row = self.retriever.snapshot.document_row(doc_id)
        if row is None or not may_read(row["groups"], principal.readable_groups()):
            raise DocumentNotFound(f"no document {doc_id} in index '{self.index}'")
        return row["path"]

    def document_id(self, path: str) -> int | None:
        """The id of the document at this path in the published snapshot (after an upload)."""
        return self.retriever.snapshot.document_id(path)
