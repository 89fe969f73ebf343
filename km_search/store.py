"""Index snapshots on disk: write one in a fresh folder, publish it atomically, load it for serving.

    indexes/<name>/
        CURRENT                       name of the published snapshot (replaced atomically)
        snapshots/<id>/manifest.json  model, dimension, chunking, counts, shards
        snapshots/<id>/chunks.sqlite  documents, chunks, people (WAL)
        snapshots/<id>/shard-0000.faiss        the dense index of a shard (ann.py); FAISS ids are chunk ids
        snapshots/<id>/shard-0000.ids.npy      its chunk ids, ascending
        snapshots/<id>/shard-0000.vectors.npy  their vectors (float32), memory-mapped when read
        snapshots/<id>/shard-0000.bm25/        the lexical postings of the same rows (lexical.py)
        snapshots/<id>/shard-0000.context/     their window vectors and section continuity (context.py)
        .ingest.lock                  held by the one ingest that may write this index at a time
        .readers/<pid>                the snapshots a serving process still reads (kept by GC)

A new snapshot can start from the published one (`SnapshotWriter(base=...)`): its database is copied,
changed documents are replaced in place (keeping their ids, so links stay valid), and shards without
removed rows are hard-linked, not rewritten, so an update costs what changed.

Format 3 added the documents' groups (access control), ingest root, modification time and metadata
fingerprint (incremental ingest) and the raw vectors beside each shard; format 4 replaced the FTS5
table with BM25 postings per shard; format 5 added each passage's window vectors and whether it
continues the section of the chunk before it (context.py); older snapshots are refused
with a message to rebuild (`km ingest`), which is always safe: snapshots are derived from the documents.

A crash before `publish()` leaves only an unfinished folder that the next run deletes; the
snapshot named in CURRENT keeps serving. A snapshot is a set of shards behind one manifest so that
ingestion workers can each write shards and serving can spread them over machines later.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from km_search.index import dense
from km_search.index.context import ShardContext, Windows
from km_search.errors import IndexMismatch, IndexNotFound, KmError
from km_search.search.filters import filter_sql
from km_search.index.lexical import LexicalIndex, Postings, build_postings, join_postings
from km_search.experts.people import fold, is_bot, normalize_email, parse_person, person_key
from km_search.types import Chunk, Document, DocumentMeta, SearchFilters

FORMAT_VERSION = 5
MANIFEST = "manifest.json"
DATABASE = "chunks.sqlite"
CURRENT = "CURRENT"
_UNFINISHED = ".unfinished-"

SCHEMA = """
CREATE TABLE documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a link to a deleted document cannot land elsewhere
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
    chunk_count INTEGER NOT NULL,
    groups TEXT NOT NULL,      -- JSON list of the groups that may read it; ["public"]: everyone
    root TEXT NOT NULL,        -- the ingest root it was found under
    mtime_ns INTEGER,          -- with size: the cheap "unchanged?" test before hashing
    meta_hash TEXT NOT NULL    -- fingerprint of inherited metadata (sidecars, git history)
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
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
"""


@dataclass(frozen=True)
class SourceInfo:
    """Where a parsed document came from on disk, and what tells a later run whether it changed."""

    abs_path: str
    content_hash: str
    size: int
    mtime_ns: int | None = None
    root: str = ""
    meta_hash: str = ""


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
    """Accumulates documents, chunks and their vectors into an unpublished snapshot folder.

    With `base` (a published snapshot folder) it starts as a copy of that snapshot: `add` replaces a
    document of the same path in place, `remove` drops one, and everything else is carried over
    without re-embedding. Hold `index_lock` while writing.
    """

    def __init__(self, index_path: Path, manifest: dict[str, Any], shard_rows: int = 500_000,
                 base: Path | None = None, index_options: Callable[[int], dict[str, Any]] | None = None):
        self.index_path = index_path
        self.snapshot_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)
        self.snapshots = index_path / "snapshots"
        self.snapshots.mkdir(parents=True, exist_ok=True)
        self._remove_unfinished()
        self.folder = self.snapshots / f"{_UNFINISHED}{self.snapshot_id}"
        self.folder.mkdir()
        self.manifest = dict(manifest)
        self.shard_rows = shard_rows
        self.base = base
        self.index_options = index_options or (lambda rows: {"kind": "flat"})  # dense.options for a shard size
        self.db = sqlite3.connect(self.folder / DATABASE)
        if base is None:
            self.db.executescript(SCHEMA)
        else:
            source = sqlite3.connect(f"file:{base / DATABASE}?mode=ro", uri=True)
            try:
                source.backup(self.db)
            finally:
                source.close()
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self._pending_ids: list[np.ndarray] = []
        self._pending_vectors: list[np.ndarray] = []
        self._pending_windows: list[Windows] = []
        self._removed: set[int] = set()  # chunk ids of the base whose vectors are not carried over
        self.shards: list[dict[str, Any]] = []
        self.dimension: int | None = None

    def _remove_unfinished(self) -> None:
        for leftover in self.snapshots.glob(f"{_UNFINISHED}*"):
            shutil.rmtree(leftover, ignore_errors=True)

    @property
    def documents(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]

    @property
    def chunks(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]

    def _drop_chunks(self, doc_id: int) -> None:
        ids = [r[0] for r in self.db.execute("SELECT id FROM chunks WHERE doc_id = ?", (doc_id,))]
        self._removed.update(ids)
        self.db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
        self.db.execute("DELETE FROM people WHERE doc_id = ?", (doc_id,))

    def remove(self, path: str) -> bool:
        """Drop the document at `path` with its chunks; False when there is none."""
        row = self.db.execute("SELECT id FROM documents WHERE path = ?", (path,)).fetchone()
        if row is None:
            return False
        self._drop_chunks(row[0])
        self.db.execute("DELETE FROM documents WHERE id = ?", (row[0],))
        return True

    def touch(self, path: str, source: SourceInfo) -> None:
        """Record a new modification time for an unchanged document, so the next run need not hash it."""
        self.db.execute("UPDATE documents SET mtime_ns = ? WHERE path = ?", (source.mtime_ns, path))

    def add(self, doc: Document, source: SourceInfo, chunks: Sequence[Chunk], vectors: np.ndarray,
            windows: Windows | None = None) -> list[int]:
        """Store one document with its chunks, their vectors and window vectors (none: ranked by the
        pooled vector alone), replacing an earlier version of the same path (which keeps its document
        id); returns the new chunk ids."""
        if len(chunks) != len(vectors):
            raise ValueError(f"{doc.path}: {len(chunks)} chunks but {len(vectors)} vectors")
        values = (doc.path, source.abs_path, doc.format, doc.title, *_meta_row(doc.meta),
                  source.content_hash, source.size, len(chunks), json.dumps(list(doc.meta.groups)),
                  source.root, source.mtime_ns, source.meta_hash)
        old = self.db.execute("SELECT id FROM documents WHERE path = ?", (doc.path,)).fetchone()
        if old is None:
            doc_id = self.db.execute(
                "INSERT INTO documents (path, abs_path, format, title, authors, created, modified, project,"
                " doc_type, tags, status, extra, content_hash, size, chunk_count, groups, root, mtime_ns, meta_hash)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", values,
            ).lastrowid
        else:
            doc_id = old[0]
            self._drop_chunks(doc_id)
            self.db.execute(
                "UPDATE documents SET path=?, abs_path=?, format=?, title=?, authors=?, created=?, modified=?,"
                " project=?, doc_type=?, tags=?, status=?, extra=?, content_hash=?, size=?, chunk_count=?,"
                " groups=?, root=?, mtime_ns=?, meta_hash=? WHERE id = ?", (*values, doc_id),
            )
        self.db.executemany("INSERT INTO people VALUES (?,?,?,?,?,?,?,?)", people_rows(doc_id, doc.meta))
        ids = []
        for chunk in chunks:
            chunk_id = self.db.execute(
                "INSERT INTO chunks (doc_id, ordinal, text, source, heading_path, page, anchor)"
                " VALUES (?,?,?,?,?,?,?)",
                (doc_id, chunk.ordinal, chunk.text, chunk.source, json.dumps(list(chunk.heading_path)),
                 chunk.page, chunk.anchor),
            ).lastrowid
            ids.append(chunk_id)
        if len(chunks):
            self.dimension = int(vectors.shape[1])
            self._pending_ids.append(np.asarray(ids, dtype=np.int64))
            self._pending_vectors.append(np.asarray(vectors, dtype=np.float32))
            self._pending_windows.append(windows if windows is not None else Windows.none(len(chunks), self.dimension))
        return ids

    def records_of_type(self, doc_type: str) -> list[tuple[int, str, str, str | None, dict[str, str]]]:
        """(id, title, path, status, extra) of the documents of one type in the snapshot."""
        rows = self.db.execute("SELECT id, title, path, status, extra FROM documents WHERE doc_type = ?", (doc_type,))
        return [(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def groups_of_type(self, doc_type: str) -> dict[int, list[str]]:
        """Who may read each document of one type: doc id -> groups."""
        rows = self.db.execute("SELECT id, groups FROM documents WHERE doc_type = ?", (doc_type,))
        return {r[0]: json.loads(r[1]) for r in rows}

    def mark_superseded(self, doc_id: int, by: str) -> None:
        """A decision that a later one supersedes: status Superseded, extra['superseded_by'] set."""
        (extra,) = self.db.execute("SELECT extra FROM documents WHERE id = ?", (doc_id,)).fetchone()
        extra = json.loads(extra)
        extra.setdefault("superseded_by", by)
        self.db.execute("UPDATE documents SET status = 'Superseded', extra = ? WHERE id = ?",
                        (json.dumps(extra, sort_keys=True), doc_id))

    def _passages(self, ids: np.ndarray) -> list[tuple[str, str]]:
        """(heading, body) of these chunk ids, ascending: what the lexical index holds of each (the
        heading being the document title and the passage's heading path)."""
        rows = self.db.execute(
            "SELECT c.id, d.title, c.heading_path, c.text FROM chunks c JOIN documents d ON d.id = c.doc_id"
            " WHERE c.id BETWEEN ? AND ? ORDER BY c.id", (int(ids[0]), int(ids[-1])),
        )
        wanted = set(ids.tolist())
        passages = [(" ".join([title, *json.loads(path)]), text) for cid, title, path, text in rows if cid in wanted]
        if len(passages) != len(ids):
            raise KmError(f"snapshot {self.snapshot_id}: {len(ids) - len(passages)} vectors have no passage")
        return passages

    def _continues(self, ids: np.ndarray) -> np.ndarray:
        """Per chunk id: does it continue the section (document and heading path) of chunk id - 1?"""
        rows = self.db.execute("SELECT id, doc_id, heading_path FROM chunks WHERE id BETWEEN ? AND ?",
                               (int(ids[0]) - 1, int(ids[-1])))
        section = {cid: (doc, path) for cid, doc, path in rows}
        return np.fromiter((i - 1 in section and section[i - 1] == section.get(i) for i in ids.tolist()),
                           dtype=bool, count=len(ids))

    def _write_shard(self, ids: np.ndarray, vectors: np.ndarray, windows: Windows,
                     postings: Postings | None = None) -> None:
        """A new shard of these rows (ids ascending); its postings are built from the database
        unless the caller carries them over."""
        stem = f"shard-{len(self.shards):04d}"
        options = self.index_options(len(ids))
        index = dense.build_index(vectors, ids, options)
        np.save(self.folder / f"{stem}.ids.npy", index.ids)
        np.save(self.folder / f"{stem}.vectors.npy", index.vectors)
        dense.write_index(index, self.folder / f"{stem}.faiss")
        if postings is not None and postings.row_count != len(ids):
            raise KmError(f"snapshot {self.snapshot_id}: {postings.row_count} lexical rows for {len(ids)} vectors")
        (postings or build_postings(self._passages(index.ids))).save(self.folder / f"{stem}.bm25")
        if windows.rows != len(ids):
            raise KmError(f"snapshot {self.snapshot_id}: windows of {windows.rows} rows for {len(ids)} vectors")
        ShardContext(windows, self._continues(index.ids)).save(self.folder / f"{stem}.context")
        self.shards.append({"file": f"{stem}.faiss", "ids": f"{stem}.ids.npy", "vectors": f"{stem}.vectors.npy",
                            "bm25": f"{stem}.bm25", "context": f"{stem}.context", "rows": int(len(ids)), "min_id": int(ids.min()),
                            "max_id": int(ids.max()), "ann": options})

    def _link_shard(self, shard: dict[str, Any]) -> None:
        stem = f"shard-{len(self.shards):04d}"
        names = {"file": f"{stem}.faiss", "ids": f"{stem}.ids.npy", "vectors": f"{stem}.vectors.npy"}
        for key, name in names.items():
            os.link(self.base / shard[key], self.folder / name)  # same file system: no copy
        for key in ("bm25", "context"):
            (self.folder / f"{stem}.{key}").mkdir()
            for file in (self.base / shard[key]).iterdir():
                os.link(file, self.folder / f"{stem}.{key}" / file.name)
        self.shards.append({**shard, **names, "bm25": f"{stem}.bm25", "context": f"{stem}.context"})

    def _build_shards(self) -> None:
        """Carry the base's shards over (linked when untouched, rewritten without removed rows), then
        put the new rows in the last shard while it has room, else in new shards. Chunk ids only grow,
        so new rows sort after every carried one, and carried postings are joined, not rebuilt."""
        carried: list[tuple[np.ndarray, np.ndarray, Windows, Postings | None] | dict[str, Any]] = []
        if self.base is not None:
            base_manifest = json.loads((self.base / MANIFEST).read_text(encoding="utf-8"))
            for shard in base_manifest.get("shards", []):
                ids = np.load(self.base / shard["ids"])
                keep = ~np.isin(ids, np.fromiter(self._removed, dtype=np.int64, count=len(self._removed)))
                if keep.all():
                    carried.append(shard)
                elif keep.any():
                    vectors = np.load(self.base / shard["vectors"], mmap_mode="r")
                    postings = join_postings([(Postings.load(self.base / shard["bm25"]), keep)])
                    windows = ShardContext.load(self.base / shard["context"]).windows.take(keep)
                    carried.append((ids[keep], np.asarray(vectors[keep]), windows, postings))
            self.dimension = self.dimension or base_manifest.get("model", {}).get("dimension")
        new_ids = np.concatenate(self._pending_ids) if self._pending_ids else np.empty(0, np.int64)
        new_vectors = np.concatenate(self._pending_vectors) if self._pending_vectors else None
        new_windows = Windows.join(self._pending_windows, self.dimension or 0)
        if len(new_ids) and carried:
            last = carried[-1]
            last_rows = last["rows"] if isinstance(last, dict) else len(last[0])
            if last_rows + len(new_ids) <= self.shard_rows:
                if isinstance(last, dict):
                    last = (np.load(self.base / last["ids"]), np.load(self.base / last["vectors"]),
                            ShardContext.load(self.base / last["context"]).windows, Postings.load(self.base / last["bm25"]))
                postings = join_postings([(last[3], None), (build_postings(self._passages(new_ids)), None)])
                carried[-1] = (np.concatenate([last[0], new_ids]), np.concatenate([last[1], new_vectors]),
                               Windows.join([last[2], new_windows], self.dimension or 0), postings)
                new_ids = new_ids[:0]
        for start in range(0, len(new_ids), self.shard_rows):
            rows = slice(start, start + self.shard_rows)
            carried.append((new_ids[rows], new_vectors[rows], new_windows.take(rows), None))
        for item in carried:
            if isinstance(item, dict):
                self._link_shard(item)
            else:
                self._write_shard(*item)

    def publish(self, keep: int = 3) -> Path:
        """Finish the snapshot, then point CURRENT at it in one atomic rename."""
        self._build_shards()
        merge_name_only_people(self.db)
        counts = {"documents": self.documents, "chunks": self.chunks}
        self.db.commit()
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.close()
        self.manifest.update(
            format_version=FORMAT_VERSION,
            snapshot=self.snapshot_id,
            created=utc_now(),
            counts=counts,
            shards=self.shards,
        )
        if self.dimension is not None:
            self.manifest["model"] = {**self.manifest.get("model", {}), "dimension": self.dimension}
        for file in self.folder.rglob("*"):  # on disk before the snapshot is published, even if power fails
            if file.is_file():
                with open(file, "rb") as f:
                    os.fsync(f.fileno())
            else:
                _fsync_dir(file)
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


class index_lock:
    """Held by whoever writes a snapshot of this index, so two ingests never interleave.

    An flock: the kernel releases it when the holder dies, even by SIGKILL, so a crash never
    leaves the index locked.
    """

    def __init__(self, index_path: Path, wait: bool = True):
        self.path = index_path / ".ingest.lock"
        self.wait = wait

    def __enter__(self) -> "index_lock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not self.wait:
                self._file.close()
                raise KmError(f"another ingest is writing index '{self.path.parent.name}'; try again when it ends")
            fcntl.flock(self._file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


def hold_snapshots(index_path: Path, snapshot_ids: Iterable[str]) -> None:
    """Tell garbage collection which snapshots this process still reads (one file per process)."""
    folder = index_path / ".readers"
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomic(folder / str(os.getpid()), "\n".join(snapshot_ids) + "\n")


def release_snapshots(index_path: Path) -> None:
    (index_path / ".readers" / str(os.getpid())).unlink(missing_ok=True)


def _held_snapshots(index_path: Path) -> set[str]:
    """Snapshots named by live reader processes; files of dead processes are removed."""
    held: set[str] = set()
    for entry in (index_path / ".readers").glob("*"):
        try:
            os.kill(int(entry.name), 0)
        except ProcessLookupError:
            entry.unlink(missing_ok=True)
            continue
        except (ValueError, PermissionError):
            pass
        try:
            held.update(line.strip() for line in entry.read_text(encoding="utf-8").splitlines() if line.strip())
        except OSError:
            continue
    return held


def current_snapshot_path(index_path: Path) -> Path | None:
    try:
        name = (index_path / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    path = index_path / "snapshots" / name
    return path if (path / MANIFEST).exists() else None


def collect_garbage(index_path: Path, keep: int) -> list[str]:
    """Delete all but the newest `keep` published snapshots, never the current one nor one that a
    serving process still reads (`hold_snapshots`)."""
    current = current_snapshot_path(index_path)
    held = _held_snapshots(index_path)
    published = sorted(
        (p for p in (index_path / "snapshots").iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    removed = []
    for old in published[: max(0, len(published) - keep)]:
        if (current is not None and old.name == current.name) or old.name in held:
            continue
        shutil.rmtree(old, ignore_errors=True)
        removed.append(old.name)
    return removed


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
        path = current_snapshot_path(index_path)
        if path is None:
            raise IndexNotFound(name or index_path.name, str(index_path.parent))
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexMismatch(
                f"index at {path} has format {manifest.get('format_version')}, this km-search reads "
                f"{FORMAT_VERSION}: rebuild it with `km ingest PATH --index {index_path.name}`"
            )
        shards = [dense.read_index(path / s["file"], dense.open_vectors(path / s["vectors"]), np.load(path / s["ids"]))
                  for s in manifest.get("shards", [])]
        lexical = LexicalIndex([Postings.load(path / s["bm25"]) for s in manifest.get("shards", [])],
                               [shard.ids for shard in shards])
        contexts = [ShardContext.load(path / s["context"]) for s in manifest.get("shards", [])]
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
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        dim = int(self.manifest.get("model", {}).get("dimension") or (self.shards[0].d if self.shards else 0))
        out = np.zeros((len(ids), dim), dtype=np.float32)
        found = np.zeros(len(ids), dtype=bool)
        for number, held, rows in self._locate(ids):
            out[held] = self.shards[number].vectors[rows]
            found[held] = True
        return out if found.all() else out[found]

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

    def neighbors(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Chunk ids of the passage before and after each of `ids` in the same section (-1: none)."""
        continues = np.zeros(len(ids), dtype=bool)  # id continues id - 1
        continued = np.zeros(len(ids), dtype=bool)  # id + 1 continues id
        for flags, probe in ((continues, ids), (continued, ids + 1)):
            for number, held, rows in self._locate(probe):
                flags[held] = self.contexts[number].continues[rows]
        return np.where(continues, ids - 1, -1), np.where(continued, ids + 1, -1)

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
