"""Index snapshots on disk: write one in a fresh folder, publish it atomically, load it for serving.

    indexes/<name>/
        CURRENT                       name of the published snapshot (replaced atomically)
        snapshots/<id>/manifest.json  model, dimension, chunking, counts, shards
        snapshots/<id>/chunks.sqlite  documents, chunks and the FTS5 lexical index (WAL)
        snapshots/<id>/shard-0000.faiss  dense vectors; FAISS ids are chunk ids

A crash before `publish()` leaves only an unfinished folder that the next run deletes; the
snapshot named in CURRENT keeps serving. A snapshot is a set of shards behind one manifest so that
ingestion workers can each write shards and serving can spread them over machines later.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import IndexMismatch, IndexNotFound
from .types import Chunk, Document, DocumentMeta

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "chunks.sqlite"
CURRENT = "CURRENT"
_UNFINISHED = ".unfinished-"

SCHEMA = """
CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    abs_path TEXT NOT NULL,
    format TEXT NOT NULL,
    title TEXT NOT NULL,
    authors TEXT NOT NULL,
    created TEXT,
    modified TEXT,
    project TEXT,
    doc_type TEXT,
    tags TEXT NOT NULL,
    status TEXT,
    extra TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    chunk_count INTEGER NOT NULL
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY,
    doc_id INTEGER NOT NULL REFERENCES documents(id),
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    source TEXT NOT NULL,
    heading_path TEXT NOT NULL,
    page INTEGER,
    anchor TEXT
);
CREATE INDEX chunks_doc ON chunks(doc_id);
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    heading, body, tokenize = 'porter unicode61 remove_diacritics 2'
);
"""


@dataclass(frozen=True)
class SourceInfo:
    """Where a parsed document came from on disk."""

    abs_path: str
    content_hash: str
    size: int


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _meta_row(meta: DocumentMeta) -> tuple[Any, ...]:
    return (
        json.dumps(list(meta.authors)),
        meta.created,
        meta.modified,
        meta.project,
        meta.doc_type,
        json.dumps(list(meta.tags)),
        meta.status,
        json.dumps(meta.extra, sort_keys=True),
    )


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


class SnapshotWriter:
    """Accumulates documents, chunks and their vectors into an unpublished snapshot folder."""

    def __init__(self, index_path: Path, manifest: dict[str, Any], shard_rows: int = 500_000):
        self.index_path = index_path
        self.snapshot_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)
        self.snapshots = index_path / "snapshots"
        self.snapshots.mkdir(parents=True, exist_ok=True)
        self._remove_unfinished()
        self.folder = self.snapshots / f"{_UNFINISHED}{self.snapshot_id}"
        self.folder.mkdir()
        self.manifest = dict(manifest)
        self.shard_rows = shard_rows
        self.db = sqlite3.connect(self.folder / DATABASE)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self._pending_ids: list[np.ndarray] = []
        self._pending_vectors: list[np.ndarray] = []
        self._pending_count = 0
        self.shards: list[dict[str, Any]] = []
        self.documents = 0
        self.chunks = 0
        self.dimension: int | None = None

    def _remove_unfinished(self) -> None:
        for leftover in self.snapshots.glob(f"{_UNFINISHED}*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def add(self, doc: Document, source: SourceInfo, chunks: Sequence[Chunk], vectors: np.ndarray) -> list[int]:
        """Store one document with its chunks and their vectors; returns the new chunk ids."""
        if len(chunks) != len(vectors):
            raise ValueError(f"{doc.path}: {len(chunks)} chunks but {len(vectors)} vectors")
        cur = self.db.execute(
            "INSERT INTO documents (path, abs_path, format, title, authors, created, modified, project,"
            " doc_type, tags, status, extra, content_hash, size, chunk_count)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (doc.path, source.abs_path, doc.format, doc.title, *_meta_row(doc.meta),
             source.content_hash, source.size, len(chunks)),
        )
        doc_id = cur.lastrowid
        ids = []
        for chunk in chunks:
            cur = self.db.execute(
                "INSERT INTO chunks (doc_id, ordinal, text, source, heading_path, page, anchor)"
                " VALUES (?,?,?,?,?,?,?)",
                (doc_id, chunk.ordinal, chunk.text, chunk.source, json.dumps(list(chunk.heading_path)),
                 chunk.page, chunk.anchor),
            )
            chunk_id = cur.lastrowid
            ids.append(chunk_id)
            heading = " ".join([chunk.title, *chunk.heading_path])
            self.db.execute(
                "INSERT INTO chunks_fts (rowid, heading, body) VALUES (?,?,?)", (chunk_id, heading, chunk.text)
            )
        self.documents += 1
        self.chunks += len(chunks)
        if len(chunks):
            self.dimension = int(vectors.shape[1])
            self._pending_ids.append(np.asarray(ids, dtype=np.int64))
            self._pending_vectors.append(np.asarray(vectors, dtype=np.float32))
            self._pending_count += len(chunks)
            if self._pending_count >= self.shard_rows:
                self._flush_shard()
        return ids

    def _flush_shard(self) -> None:
        if not self._pending_count:
            return
        import faiss

        ids = np.concatenate(self._pending_ids)
        vectors = np.concatenate(self._pending_vectors)
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
        index.add_with_ids(vectors, ids)
        name = f"shard-{len(self.shards):04d}.faiss"
        faiss.write_index(index, str(self.folder / name))
        self.shards.append({"file": name, "rows": int(len(ids)), "min_id": int(ids.min()), "max_id": int(ids.max())})
        self._pending_ids, self._pending_vectors, self._pending_count = [], [], 0

    def publish(self, keep: int = 3) -> Path:
        """Finish the snapshot, then point CURRENT at it in one atomic rename."""
        self._flush_shard()
        self.db.commit()
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.close()
        self.manifest.update(
            format_version=FORMAT_VERSION,
            snapshot=self.snapshot_id,
            created=utc_now(),
            counts={"documents": self.documents, "chunks": self.chunks},
            shards=self.shards,
        )
        if self.dimension is not None:
            self.manifest["model"] = {**self.manifest.get("model", {}), "dimension": self.dimension}
        _write_atomic(self.folder / MANIFEST, json.dumps(self.manifest, indent=2))
        final = self.snapshots / self.snapshot_id
        os.replace(self.folder, final)
        _fsync_dir(self.snapshots)
        _write_atomic(self.index_path / CURRENT, self.snapshot_id + "\n")
        self.folder = final
        collect_garbage(self.index_path, keep)
        return final

    def abort(self) -> None:
        try:
            self.db.close()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def current_snapshot_path(index_path: Path) -> Path | None:
    try:
        name = (index_path / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    path = index_path / "snapshots" / name
    return path if (path / MANIFEST).exists() else None


def collect_garbage(index_path: Path, keep: int) -> list[str]:
    """Delete all but the newest `keep` published snapshots (never the current one)."""
    current = current_snapshot_path(index_path)
    published = sorted(
        (p for p in (index_path / "snapshots").iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    removed = []
    for old in published[: max(0, len(published) - keep)]:
        if current is not None and old.name == current.name:
            continue
        shutil.rmtree(old, ignore_errors=True)
        removed.append(old.name)
    return removed


@dataclass
class Snapshot:
    """A published snapshot opened for reading: manifest, FAISS shards in memory, SQLite per thread."""

    path: Path
    manifest: dict[str, Any]
    shards: list[Any] = field(default_factory=list)
    _local: threading.local = field(default_factory=threading.local)

    @classmethod
    def open(cls, index_path: Path, name: str | None = None) -> "Snapshot":
        import faiss

        path = current_snapshot_path(index_path)
        if path is None:
            raise IndexNotFound(name or index_path.name, str(index_path.parent))
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexMismatch(
                f"index at {path} has format {manifest.get('format_version')}, this km-search reads "
                f"{FORMAT_VERSION}: rebuild it with `km ingest PATH --index {index_path.name}`"
            )
        shards = [faiss.read_index(str(path / s["file"])) for s in manifest.get("shards", [])]
        return cls(path=path, manifest=manifest, shards=shards)

    @property
    def db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"file:{self.path / DATABASE}?mode=ro", uri=True, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    @property
    def snapshot_id(self) -> str:
        return self.manifest["snapshot"]

    def dense_search(self, vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        """Top-n (chunk id, cosine) over all shards."""
        found: list[tuple[int, float]] = []
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        for shard in self.shards:
            scores, ids = shard.search(query, min(n, shard.ntotal))
            found.extend((int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0)
        found.sort(key=lambda pair: -pair[1])
        return found[:n]

    def chunk_rows(self, ids: Iterable[int]) -> dict[int, sqlite3.Row]:
        ids = list(ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            "SELECT c.id, c.text, c.source, c.heading_path, c.page, c.anchor, d.path AS doc_path,"
            " d.title, d.authors, d.created, d.modified, d.project, d.doc_type, d.tags, d.status, d.extra"
            f" FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks})",
            ids,
        ).fetchall()
        return {row["id"]: row for row in rows}

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
