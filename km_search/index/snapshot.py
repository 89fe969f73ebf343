"""Reading a published snapshot: the manifest, dense and lexical shards, passages, documents and people."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from km_search.errors import IndexMismatch, IndexNotFound
from km_search.index import dense
from km_search.index.context import ShardContext
from km_search.index.filter_sql import filtered_chunks_sql, groups_sql
from km_search.index.layout import DATABASE, FORMAT_VERSION, MANIFEST
from km_search.index.lexical import LexicalIndex, Postings
from km_search.index.locks import current_snapshot_path
from km_search.text import fold
from km_search.types import DocumentMeta, SearchFilters


def meta_from_row(row: sqlite3.Row) -> DocumentMeta:
    return DocumentMeta(
        title=row["title"],
        authors=tuple(json.loads(row["authors"])),
        created=row["created"],
        modified=row["modified"],
        project=row["project"],
        doc_type=row["doc_type"],
        tags=tuple(json.loads(row["tags"])),
        status=row["status"],
        extra=json.loads(row["extra"]),
    )


def published(index_path: Path, name: str | None = None) -> tuple[Path, dict[str, Any]]:
    """The folder and manifest of the index's published snapshot, checked to be readable here."""
    path = current_snapshot_path(index_path)
    if path is None:
        raise IndexNotFound(name or index_path.name, str(index_path.parent))
    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatch(
            f"index at {path} has format {manifest.get('format_version')}, this km-search reads "
            f"{FORMAT_VERSION}: rebuild it with `km ingest PATH --index {index_path.name}`"
        )
    return path, manifest


@dataclass
class Snapshot:
    """A published snapshot opened for reading: manifest, dense shards, raw vectors memory-mapped,
    one read-only SQLite connection per thread."""

    path: Path
    manifest: dict[str, Any]
    shards: list[dense.ShardIndex] = field(default_factory=list)  # with ascending ids and memory-mapped vectors
    lexical: LexicalIndex = field(default_factory=lambda: LexicalIndex([], []))  # BM25 over the same rows
    contexts: list[ShardContext] = field(default_factory=list)  # windows and section continuity, per shard
    _local: threading.local = field(default_factory=threading.local)

    @classmethod
    def open(cls, index_path: Path, name: str | None = None) -> "Snapshot":
        path, manifest = published(index_path, name)
        return cls.of_shards(path, manifest, range(len(manifest.get("shards", []))))

    @classmethod
    def of_shards(cls, path: Path, manifest: dict[str, Any], numbers: Iterable[int],
                  corpus: tuple[int, int] | None = None) -> "Snapshot":
        """The snapshot at `path` with only these shards loaded; `corpus` (passages, tokens): the
        BM25 statistics of all its shards, when these are not all of them (one shard served alone)."""
        entries = [manifest["shards"][n] for n in numbers]
        shards = [dense.read_index(path / s["file"], dense.open_vectors(path / s["vectors"]), np.load(path / s["ids"]))
                  for s in entries]
        lexical = LexicalIndex([Postings.load(path / s["bm25"]) for s in entries], [shard.ids for shard in shards],
                               corpus=corpus)
        contexts = [ShardContext.load(path / s["context"]) for s in entries]
        return cls(path=path, manifest=manifest, shards=shards, lexical=lexical, contexts=contexts)

    @property
    def db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"file:{self.path / DATABASE}?mode=ro", uri=True, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.create_function("km_fold", 1, lambda v: fold(v) if isinstance(v, str) else v, deterministic=True)
            self._local.conn = conn
        return conn

    @property
    def snapshot_id(self) -> str:
        return self.manifest["snapshot"]

    def dense_search(self, vector: np.ndarray, n: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-n (chunk id, cosine) over all shards; only among the `allowed` chunk ids when given."""
        if allowed is not None and not len(allowed):
            return []
        found: list[tuple[int, float]] = []
        for shard in self.shards:
            found.extend(dense.search(shard, vector, n, allowed))
        found.sort(key=lambda pair: -pair[1])
        return found[:n]

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of these chunk ids, in that order (ids not in the snapshot are left out)."""
        found, out = self.held_vectors(np.asarray(ids, dtype=np.int64).reshape(-1))
        return out if found.all() else out[found]

    def held_vectors(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(which of `ids` the snapshot holds, their vectors: zeros where not held)."""
        dim = int(self.manifest.get("model", {}).get("dimension") or (self.shards[0].d if self.shards else 0))
        out = np.zeros((len(ids), dim), dtype=np.float32)
        found = np.zeros(len(ids), dtype=bool)
        for number, held, rows in self._locate(ids):
            out[held] = self.shards[number].vectors[rows]
            found[held] = True
        return found, out

    def _locate(self, ids: np.ndarray) -> Iterable[tuple[int, np.ndarray, np.ndarray]]:
        """(shard number, positions in `ids`, rows in that shard) of the ids each shard holds."""
        for number, shard in enumerate(self.shards):
            assert shard.ids is not None
            held, rows = dense.locate(shard.ids, ids)
            if len(held):
                yield number, held, rows

    def window_scores(self, query: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The best window cosine of each chunk id with the query (NaN: no windows, or not held)."""
        out = np.full(len(ids), np.nan, dtype=np.float32)
        for number, held, rows in self._locate(ids):
            out[held] = self.contexts[number].windows.best(query, rows)
        return out

    def sentence_vectors(self, ids: Sequence[int], searched: bool = False) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """Per chunk id, its stored sentence vectors: (spans (k, 2) of its text, unit vectors (k, d)),
        or None when the snapshot does not hold the id; with `searched`, only those search's lift
        reads (context.SentenceVectors)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        out: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(ids)
        for number, held, rows in self._locate(ids):
            sentences = self.contexts[number].sentences
            for position, row in zip(held.tolist(), rows.tolist()):
                out[position] = sentences.of_row(row, searched)
        return out

    def best_sentence_scores(self, query: np.ndarray, ids: Sequence[int]) -> np.ndarray:
        """Each chunk id's best cosine of its searched sentence vectors with the query (NaN: none,
        or not held): the first page's lift in search."""
        return np.array([float(np.max(found[1] @ query)) if found is not None and len(found[1]) else np.nan
                         for found in self.sentence_vectors(ids, searched=True)], dtype=np.float64)

    def dense_scores(self, query: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each chunk id's pooled cosine with the query (0: not held) and best window cosine (NaN:
        no windows, or not held): what the context step rescores candidates with, in one call."""
        return self.held_vectors(ids)[1] @ query, self.window_scores(query, ids)

    def neighbors(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Chunk ids of the passage before and after each of `ids` in the same section (-1: none)."""
        continues, continued = self.continuity(ids)
        return np.where(continues, ids - 1, -1), np.where(continued, ids + 1, -1)

    def continuity(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whether each id continues id - 1, and whether id + 1 continues it (False: not held)."""
        continues = np.zeros(len(ids), dtype=bool)
        continued = np.zeros(len(ids), dtype=bool)
        for flags, probe in ((continues, ids), (continued, ids + 1)):
            for number, held, rows in self._locate(probe):
                flags[held] = self.contexts[number].continues[rows]
        return continues, continued

    def chunk_rows(self, ids: Iterable[int]) -> dict[int, sqlite3.Row]:
        ids = list(ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            "SELECT c.id, c.doc_id, c.text, c.source, c.heading_path, c.page, c.anchor, c.parts, d.path AS doc_path,"
            " d.title, d.authors, d.created, d.modified, d.project, d.doc_type, d.tags, d.status, d.extra"
            f" FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks})",
            ids,
        ).fetchall()
        return {row["id"]: row for row in rows}

    def document_ids(self, ids: Iterable[int]) -> dict[int, int]:
        """chunk id -> its document's id (grouping results by document)."""
        ids = list(ids)
        out: dict[int, int] = {}
        for start in range(0, len(ids), 10_000):  # under SQLite's limit on bound parameters
            part = ids[start : start + 10_000]
            marks = ",".join("?" * len(part))
            out.update(self.db.execute(f"SELECT id, doc_id FROM chunks WHERE id IN ({marks})", part).fetchall())
        return out

    def allowed_chunks(self, filters: SearchFilters) -> np.ndarray | None:
        """The chunk ids of the documents that pass the filters; None when nothing is filtered."""
        within = filtered_chunks_sql(filters)
        if within is None:
            return None
        rows = self.db.execute(*within).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def people_of(self, doc_ids: Iterable[int]) -> dict[int, list[sqlite3.Row]]:
        """The people table's rows of these documents: authors and git contributors, by document."""
        doc_ids = list(doc_ids)
        out: dict[int, list[sqlite3.Row]] = {d: [] for d in doc_ids}
        if doc_ids:
            marks = ",".join("?" * len(doc_ids))
            for row in self.db.execute(f"SELECT * FROM people WHERE doc_id IN ({marks})", doc_ids):
                out[row["doc_id"]].append(row)
        return out

    def name_candidates(
        self, keys: Iterable[str], readable: Sequence[str] | None = None
    ) -> dict[str, list[tuple[str, bool, int]]]:
        """For each person key, the names written for them: (name, as an author?, times), counted over
        every document, or over those the `readable` groups may read only."""
        keys = list(keys)
        out: dict[str, list[tuple[str, bool, int]]] = {k: [] for k in keys}
        if keys:
            marks = ",".join("?" * len(keys))
            where, params = groups_sql(tuple(readable)) if readable is not None else ("1", [])
            rows = self.db.execute(
                "SELECT p.key, p.name, MAX(p.role = 'author') AS declared, COUNT(*) AS n FROM people p"
                f" JOIN documents d ON d.id = p.doc_id WHERE p.key IN ({marks}) AND {where}"
                " GROUP BY p.key, p.name", [*keys, *params],
            )
            for row in rows:
                out[row["key"]].append((row["name"], bool(row["declared"]), row["n"]))
        return out

    def readable_counts(self, readable: Sequence[str]) -> tuple[int, int]:
        """(documents, passages) among those these groups may read."""
        where, params = groups_sql(tuple(readable))
        documents, chunks = self.db.execute(
            f"SELECT COUNT(*), COALESCE(SUM(d.chunk_count), 0) FROM documents d WHERE {where}", params
        ).fetchone()
        return documents, chunks

    def document_id(self, path: str) -> int | None:
        """The id of the document at this path (relative to its ingest root), or None."""
        row = self.db.execute("SELECT id FROM documents WHERE path = ?", (path,)).fetchone()
        return row["id"] if row else None

    def passage_texts(self) -> list[tuple[str, tuple[str, ...], str]]:
        """(title, heading path, text) of every passage, in id order."""
        rows = self.db.execute(
            "SELECT d.title, c.heading_path, c.text FROM chunks c JOIN documents d ON d.id = c.doc_id ORDER BY c.id")
        return [(r[0], tuple(json.loads(r[1])), r[2]) for r in rows]

    def document_row(self, doc_id: int) -> sqlite3.Row | None:
        """One row of the documents table (path, abs_path, format, metadata), or None."""
        return self.db.execute("SELECT * FROM documents WHERE id = ?", (doc_id,)).fetchone()

    def describe(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "index": m["name"], "snapshot": m["snapshot"], "created": m["created"],
            "documents": m["counts"]["documents"], "chunks": m["counts"]["chunks"],
            "model": m.get("model", {}), "chunking": m.get("chunking", {}), "shards": len(m.get("shards", [])),
        }

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
