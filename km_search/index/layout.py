"""The layout of index snapshots on disk, shared by writer.py (write, publish atomically) and snapshot.py (read).

    indexes/<name>/
        CURRENT                       name of the published snapshot (replaced atomically)
        snapshots/<id>/manifest.json  model, dimension, chunking, counts, shards
        snapshots/<id>/chunks.sqlite  documents, chunks, people (WAL)
        snapshots/<id>/shard-0000.faiss        the dense index of a shard (dense.py); FAISS ids are chunk ids
        snapshots/<id>/shard-0000.ids.npy      its chunk ids, ascending
        snapshots/<id>/shard-0000.vectors.npy  their vectors (float32), memory-mapped when read
        snapshots/<id>/shard-0000.bm25/        the lexical postings of the same rows (lexical.py)
        snapshots/<id>/shard-0000.context/     their window and sentence vectors, section continuity (context.py)
        .ingest.lock                  held by the one ingest that may write this index at a time
        .readers/<pid>                the snapshots a serving process still reads (kept by GC)

A new snapshot can start from the published one (`SnapshotWriter(base=...)`): its database is copied,
changed documents are replaced in place (keeping their ids, so links stay valid), and shards without
removed rows are hard-linked, not rewritten, so an update costs what changed.

Format 3 added the documents' groups (access control), ingest root, modification time and metadata
fingerprint (incremental ingest) and the raw vectors beside each shard; format 4 replaced the FTS5
table with BM25 postings per shard; format 5 added each passage's window vectors and whether it
continues the section of the chunk before it (context.py); format 6 its sentence vectors (context.py), and
since 2026-12-07 how many of each passage's sentences its own forward pass pooled (optional: a format 6
snapshot without it counts them all); older snapshots are refused
with a message to rebuild (`km ingest`), which is always safe: snapshots are derived from the documents.

A crash before `publish()` leaves only an unfinished folder that the next run deletes; the
snapshot named in CURRENT keeps serving. A snapshot is a set of shards behind one manifest so that
ingestion workers can each write shards and serving can spread them over machines later.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from km_search.types import Part

if TYPE_CHECKING:
    import sqlite3

FORMAT_VERSION = 7
MANIFEST = "manifest.json"
DATABASE = "chunks.sqlite"
CURRENT = "CURRENT"
UNFINISHED = ".unfinished-"

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
    anchor TEXT,
    parts TEXT                     -- JSON [Part.as_json(), ...] of joined sections, or NULL
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


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def parts_to_json(parts: tuple[Part, ...]) -> str | None:
    """The chunks table's `parts` column: NULL for a passage of one section."""
    return json.dumps([p.as_json() for p in parts]) if parts else None


def parts_from_row(row: sqlite3.Row) -> tuple[Part, ...]:
    stored = row["parts"]
    return tuple(Part.from_json(p) for p in json.loads(stored)) if stored else ()
