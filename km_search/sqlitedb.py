"""The one way this package opens its small SQLite files that several threads and processes share
(API keys, the query log, the rate limit's buckets): WAL, so readers never wait for the writer,
autocommit, its schema made on first open."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_shared(path: Path, schema: str, timeout: float = 10.0, synchronous: str | None = None) -> sqlite3.Connection:
    """A connection to `path` (its folder made), in WAL mode, with `schema` applied; rows as
    sqlite3.Row. `synchronous`: NORMAL or OFF where losing the last writes to a crash is acceptable."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    if synchronous:
        conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.executescript(schema)
    return conn
