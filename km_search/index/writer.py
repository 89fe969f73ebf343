"""Writing a snapshot: documents, chunks and people into SQLite, vectors into dense, lexical and context
shards, then an atomic publish (`SnapshotWriter`). Hold `index_lock` while writing."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from km_search.clock import utc_now
from km_search.errors import KmError
from km_search.experts.people import is_bot, merge_identities, normalize_email, parse_person, person_key
from km_search.index import dense
from km_search.index.context import SentenceVectors, ShardContext, Windows
from km_search.index.layout import (
    CURRENT, DATABASE, FORMAT_VERSION, MANIFEST, SCHEMA, UNFINISHED, SourceInfo, fsync_dir, parts_to_json,
    write_atomic,
)
from km_search.index.lexical import Postings, build_postings, join_postings
from km_search.index.locks import collect_garbage
from km_search.text import fold
from km_search.types import Chunk, Document, DocumentMeta


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


def merge_people(db: sqlite3.Connection) -> None:
    """One key per human across the index (km_search/experts/people.py merge_identities): one name
    with several tied emails, a GitHub handle that spells a name, a name written without an email.
    Computed afresh from every row's own name and email at each publish, so a merge that a removed
    document justified does not outlive it."""
    rows = [(rowid, name, email, doc_id, person_key(name, email))
            for rowid, name, email, doc_id in db.execute("SELECT rowid, name, email, doc_id FROM people")]
    into = merge_identities((own, name, email, doc_id) for _, name, email, doc_id, own in rows)
    db.executemany("UPDATE people SET key = ?, folded = ? WHERE rowid = ?", [
        (into.get(own, own), fold(f"{name} {email or ''}") + (f" {into[own]}" if own in into else ""), rowid)
        for rowid, name, email, _, own in rows])


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
        self.folder = self.snapshots / f"{UNFINISHED}{self.snapshot_id}"
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
        self._pending_sentences: list[SentenceVectors] = []
        self._removed: set[int] = set()  # chunk ids of the base whose vectors are not carried over
        self.shards: list[dict[str, Any]] = []
        self.dimension: int | None = None

    def _remove_unfinished(self) -> None:
        for leftover in self.snapshots.glob(f"{UNFINISHED}*"):
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
            windows: Windows | None = None, sentences: SentenceVectors | None = None) -> list[int]:
        """Store one document with its chunks, their vectors, window vectors (none: ranked by the
        pooled vector alone) and sentence vectors (none: answers embed its sentences when asked),
        replacing an earlier version of the same path (which keeps its document id); returns the new
        chunk ids."""
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
                "INSERT INTO chunks (doc_id, ordinal, text, source, heading_path, page, anchor, parts)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (doc_id, chunk.ordinal, chunk.text, chunk.source, json.dumps(list(chunk.heading_path)),
                 chunk.page, chunk.anchor, parts_to_json(chunk.parts)),
            ).lastrowid
            ids.append(chunk_id)
        if len(chunks):
            self.dimension = int(vectors.shape[1])
            self._pending_ids.append(np.asarray(ids, dtype=np.int64))
            self._pending_vectors.append(np.asarray(vectors, dtype=np.float32))
            self._pending_windows.append(windows if windows is not None else Windows.none(len(chunks), self.dimension))
            if sentences is not None and sentences.rows != len(chunks):
                raise ValueError(f"{doc.path}: {len(chunks)} chunks but sentences of {sentences.rows}")
            self._pending_sentences.append(
                sentences if sentences is not None else SentenceVectors.none(len(chunks), self.dimension))
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

    def mark_supersedes(self, doc_id: int, old: str) -> None:
        """A decision that replaces one whose own text says so: extra['supersedes'] set, status kept."""
        (extra,) = self.db.execute("SELECT extra FROM documents WHERE id = ?", (doc_id,)).fetchone()
        extra = json.loads(extra)
        extra.setdefault("supersedes", old)
        self.db.execute("UPDATE documents SET extra = ? WHERE id = ?", (json.dumps(extra, sort_keys=True), doc_id))

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

    def _write_shard(self, ids: np.ndarray, vectors: np.ndarray, windows: Windows, sentences: SentenceVectors,
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
        if sentences.rows != len(ids):
            raise KmError(f"snapshot {self.snapshot_id}: sentences of {sentences.rows} rows for {len(ids)} vectors")
        ShardContext(windows, self._continues(index.ids), sentences).save(self.folder / f"{stem}.context")
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
        carried: list[tuple[np.ndarray, np.ndarray, Windows, SentenceVectors, Postings | None] | dict[str, Any]] = []
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
                    context = ShardContext.load(self.base / shard["context"])
                    carried.append((ids[keep], np.asarray(vectors[keep]), context.windows.take(keep),
                                    context.sentences.take(keep), postings))
            self.dimension = self.dimension or base_manifest.get("model", {}).get("dimension")
        new_ids = np.concatenate(self._pending_ids) if self._pending_ids else np.empty(0, np.int64)
        new_vectors = np.concatenate(self._pending_vectors) if self._pending_vectors else None
        new_windows = Windows.join(self._pending_windows, self.dimension or 0)
        new_sentences = SentenceVectors.join(self._pending_sentences, self.dimension or 0)
        if len(new_ids) and carried:
            last = carried[-1]
            last_rows = last["rows"] if isinstance(last, dict) else len(last[0])
            if last_rows + len(new_ids) <= self.shard_rows:
                if isinstance(last, dict):
                    context = ShardContext.load(self.base / last["context"])
                    last = (np.load(self.base / last["ids"]), np.load(self.base / last["vectors"]),
                            context.windows, context.sentences, Postings.load(self.base / last["bm25"]))
                postings = join_postings([(last[4], None), (build_postings(self._passages(new_ids)), None)])
                carried[-1] = (np.concatenate([last[0], new_ids]), np.concatenate([last[1], new_vectors]),
                               Windows.join([last[2], new_windows], self.dimension or 0),
                               SentenceVectors.join([last[3], new_sentences], self.dimension or 0), postings)
                new_ids = new_ids[:0]
        for start in range(0, len(new_ids), self.shard_rows):
            rows = slice(start, start + self.shard_rows)
            carried.append((new_ids[rows], new_vectors[rows], new_windows.take(rows), new_sentences.take(rows), None))
        for item in carried:
            if isinstance(item, dict):
                self._link_shard(item)
            else:
                self._write_shard(*item)

    def publish(self, keep: int = 3) -> Path:
        """Finish the snapshot, then point CURRENT at it in one atomic rename."""
        self._build_shards()
        merge_people(self.db)
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
                fsync_dir(file)
        write_atomic(self.folder / MANIFEST, json.dumps(self.manifest, indent=2))
        final = self.snapshots / self.snapshot_id
        os.replace(self.folder, final)
        fsync_dir(self.snapshots)
        write_atomic(self.index_path / CURRENT, self.snapshot_id + "\n")
        self.folder = final
        collect_garbage(self.index_path, keep)
        return final

    def abort(self) -> None:
        try:
            self.db.close()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
