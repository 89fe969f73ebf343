"""Index snapshots on disk: write one in a fresh folder, publish it atomically, load it for serving.

    indexes/<name>/
        CURRENT                       name of the published snapshot (replaced atomically)
        snapshots/<id>/manifest.json  model, dimension, chunking, counts, shards
        snapshots/<id>/chunks.sqlite  documents, chunks and the FTS5 lexical index (WAL)
        snapshots/<id>/shard-0000.faiss  dense vectors; FAISS ids are chunk ids

Format 2 added the people table (declared authors and git contributors, for the author filter
and expert finding) and the filter indexes; a format-1 snapshot is refused with a message to rebuild
it (`km ingest`), which is always safe: snapshots are derived from the documents.

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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import IndexMismatch, IndexNotFound
from .filters import filter_sql
from .people import fold, is_bot, normalize_email, parse_person, person_key
from .types import Chunk, Document, DocumentMeta, SearchFilters

FORMAT_VERSION = 2
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
CREATE INDEX documents_type ON documents(doc_type);
CREATE INDEX documents_project ON documents(project COLLATE NOCASE);
CREATE INDEX documents_date ON documents(COALESCE(modified, created));
CREATE TABLE people (
    doc_id INTEGER NOT NULL REFERENCES documents(id),
    role TEXT NOT NULL,        -- 'author' (declared in metadata) or 'contributor' (git history)
    name TEXT NOT NULL,
    email TEXT,                -- normalized (km_search.people.normalize_email)
    key TEXT NOT NULL,         -- one person: the email, else 'name:' + folded name
    folded TEXT NOT NULL,      -- folded name and email: what the author filter matches
    commits INTEGER NOT NULL,  -- git commits to the document (0 for declared authors)
    last_date TEXT             -- the latest of those commits
);
CREATE INDEX people_doc ON people(doc_id);
CREATE INDEX people_key ON people(key);
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


def people_rows(doc_id: int, meta: DocumentMeta) -> list[tuple[Any, ...]]:
    """Rows of the people table for one document: each declared author once, then git contributors."""
    rows: dict[tuple[str, str], tuple[Any, ...]] = {}
    for author in meta.authors:
        name, email = parse_person(author)
        key = person_key(name, email)
        if name or email:
            rows.setdefault(("author", key), (doc_id, "author", name, email, key, fold(f"{name} {email or ''}"), 0, None))
    for c in meta.contributors:
        name, email = " ".join(c.name.split()), normalize_email(c.email)
        key = person_key(name, email)
        if (name or email) and not is_bot(name, email):
            rows.setdefault(("contributor", key),
                            (doc_id, "contributor", name, email, key, fold(f"{name} {email or ''}"), c.commits, c.last_date))
    return list(rows.values())


def merge_name_only_people(db: sqlite3.Connection) -> None:
    """A person named without an email ('Priya Raman' in a Word file) becomes the one person with
    that name and an email, when there is exactly one; several namesakes stay apart."""
    by_name: dict[str, set[str]] = {}
    for key, name in db.execute("SELECT DISTINCT key, name FROM people WHERE email IS NOT NULL AND name != ''"):
        by_name.setdefault(fold(name), set()).add(key)
    for name, keys in by_name.items():
        if len(keys) == 1:
            (key,) = keys
            db.execute("UPDATE people SET key = ?, folded = folded || ' ' || ? WHERE key = ?", (key, key, "name:" + name))


def filtered_chunks_sql(filters: SearchFilters | None) -> tuple[str, list] | None:
    """An SQL SELECT of the chunk ids whose documents pass the filters, with its parameters."""
    if not filters:
        return None
    where, params = filter_sql(filters)
    return f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {where}", params


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
        self.db.executemany("INSERT INTO people VALUES (?,?,?,?,?,?,?,?)", people_rows(doc_id, doc.meta))
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

    def records_of_type(self, doc_type: str) -> list[tuple[int, str, str, str | None, dict[str, str]]]:
        """(id, title, path, status, extra) of the documents of one type added so far."""
        rows = self.db.execute("SELECT id, title, path, status, extra FROM documents WHERE doc_type = ?", (doc_type,))
        return [(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def mark_superseded(self, doc_id: int, by: str) -> None:
        """A decision that a later one supersedes: status Superseded, extra['superseded_by'] set."""
        (extra,) = self.db.execute("SELECT extra FROM documents WHERE id = ?", (doc_id,)).fetchone()
        extra = json.loads(extra)
        extra.setdefault("superseded_by", by)
        self.db.execute("UPDATE documents SET status = 'Superseded', extra = ? WHERE id = ?",
                        (json.dumps(extra, sort_keys=True), doc_id))

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
        merge_name_only_people(self.db)
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
            conn.create_function("km_fold", 1, lambda v: fold(v) if isinstance(v, str) else v, deterministic=True)
            self._local.conn = conn
        return conn

    @property
    def snapshot_id(self) -> str:
        return self.manifest["snapshot"]

    def dense_search(self, vector: np.ndarray, n: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-n (chunk id, cosine) over all shards; only among the `allowed` chunk ids when given."""
        found: list[tuple[int, float]] = []
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        params = None
        if allowed is not None:
            if not len(allowed):
                return []
            import faiss

            # Exact: the flat index scores every vector the selector lets through, so the top n
            # among the allowed ids are found however few of them there are.
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            params = faiss.SearchParameters(sel=selector)
        for shard in self.shards:
            if params is None:
                scores, ids = shard.search(query, min(n, shard.ntotal))
            else:
                scores, ids = shard.search(query, min(n, shard.ntotal), params=params)
            found.extend((int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0)
        found.sort(key=lambda pair: -pair[1])
        return found[:n]

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of these chunk ids (each shard covers an id range)."""
        found = []
        for chunk_id in ids:
            for meta, shard in zip(self.manifest.get("shards", []), self.shards):
                if meta["min_id"] <= chunk_id <= meta["max_id"]:
                    try:
                        found.append(shard.reconstruct(int(chunk_id)))
                        break
                    except RuntimeError:  # not in this shard after all
                        continue
        dim = self.shards[0].d if self.shards else 0
        return np.asarray(found, dtype=np.float32).reshape(len(found), dim)

    def chunk_rows(self, ids: Iterable[int]) -> dict[int, sqlite3.Row]:
        ids = list(ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            "SELECT c.id, c.doc_id, c.text, c.source, c.heading_path, c.page, c.anchor, d.path AS doc_path,"
            " d.title, d.authors, d.created, d.modified, d.project, d.doc_type, d.tags, d.status, d.extra"
            f" FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks})",
            ids,
        ).fetchall()
        return {row["id"]: row for row in rows}

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

    def name_candidates(self, keys: Iterable[str]) -> dict[str, list[tuple[str, bool, int]]]:
        """For each person key, the names written for them anywhere: (name, as an author?, times)."""
        keys = list(keys)
        out: dict[str, list[tuple[str, bool, int]]] = {k: [] for k in keys}
        if keys:
            marks = ",".join("?" * len(keys))
            rows = self.db.execute(
                f"SELECT key, name, MAX(role = 'author') AS declared, COUNT(*) AS n FROM people"
                f" WHERE key IN ({marks}) GROUP BY key, name", keys,
            )
            for row in rows:
                out[row["key"]].append((row["name"], bool(row["declared"]), row["n"]))
        return out

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
