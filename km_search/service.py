"""The facade the HTTP API and the CLI both call. It owns the loaded snapshot and the model."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from .embedding import Embedder
from .errors import BadQuery, IndexMismatch
from .retrieval import Mode, Retriever
from .settings import Settings
from .store import Snapshot, current_snapshot_path
from .types import SearchResult


class SearchService:
    def __init__(self, settings: Settings, index: str | None = None, embedder: Embedder | None = None):
        self.settings = settings
        self.index = index or settings.index
        self.index_path: Path = settings.index_path(self.index)
        self.embedder = embedder or Embedder(settings.model, settings.embed_batch_size)
        self._lock = threading.Lock()
        self._retriever: Retriever | None = None

    def load(self) -> "SearchService":
        """Open the published snapshot and warm the model, so the first query is as fast as the rest."""
        snapshot = Snapshot.open(self.index_path, self.index)
        self._check_model(snapshot)
        self.embedder.encode(["warm up"])
        with self._lock:
            old, self._retriever = self._retriever, Retriever(snapshot, self.embedder, self.settings)
        if old is not None:
            old.snapshot.close()
        return self

    def _check_model(self, snapshot: Snapshot) -> None:
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
        """Swap in a newer published snapshot; readers of the old one finish undisturbed."""
        current = current_snapshot_path(self.index_path)
        if current is None or (self._retriever and self._retriever.snapshot.path == current):
            return False
        self.load()
        return True

    def search(self, query: str, k: int = 10, offset: int = 0, mode: Mode = "hybrid") -> SearchResult:
        query = self.validate_query(query)
        if not 1 <= k <= self.settings.max_k:
            raise BadQuery(f"k must be between 1 and {self.settings.max_k}, got {k}")
        if offset < 0:
            raise BadQuery(f"offset must be 0 or more, got {offset}")
        return self.retriever.search(query, k=k, offset=offset, mode=mode)

    def validate_query(self, query: str) -> str:
        query = " ".join((query or "").split())
        if not query:
            raise BadQuery("the query is empty: pass some words in q")
        if len(query) > self.settings.max_query_chars:
            raise BadQuery(f"the query is {len(query)} characters long; the limit is {self.settings.max_query_chars}")
        return query

    def stats(self) -> dict[str, Any]:
        return self.retriever.snapshot.describe()
