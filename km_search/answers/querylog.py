"""The query log: every search and ask with its outcome, and the feedback users give on them.

One SQLite database beside the index's snapshots (`indexes/<name>/querylog.sqlite`), so it
survives re-ingest. WAL mode lets `km gaps` read while `km serve` writes. Logging must never make
a query fail: write errors are logged and swallowed, and the query simply has no id.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from km_search.clock import utc_now
from km_search.errors import QueryLogUnavailable, UnknownQuery
from km_search.sqlitedb import open_shared

log = logging.getLogger("km_search.querylog")

FILENAME = "querylog.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS queries (
    id TEXT PRIMARY KEY,
    ts TEXT NOT NULL,
    kind TEXT NOT NULL,            -- 'search' or 'ask'
    query TEXT NOT NULL,
    mode TEXT,
    results INTEGER NOT NULL,
    top_score REAL,                -- fused score of the first hit
    confidence REAL,               -- evidence: answer confidence (ask) or passage evidence (search)
    answered INTEGER,              -- 1 answered, 0 abstained, NULL for a search
    answer_kind TEXT,
    latency_ms REAL NOT NULL,
    snapshot TEXT,
    reason TEXT                    -- why an ask abstained: what the closest passage lacks
);
CREATE INDEX IF NOT EXISTS queries_ts ON queries(ts);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    query_id TEXT NOT NULL REFERENCES queries(id),
    target TEXT NOT NULL,          -- 'answer' or 'passage'
    source TEXT,                   -- the passage's deep link, for passage feedback
    chunk_id INTEGER,
    helpful INTEGER NOT NULL,
    comment TEXT
);
CREATE INDEX IF NOT EXISTS feedback_query ON feedback(query_id);
"""




@dataclass(frozen=True)
class LoggedQuery:
    """One row of the log, as the gaps report reads it."""

    id: str
    ts: str
    kind: str
    query: str
    results: int
    confidence: float | None
    answered: bool | None
    low_score: bool  # not an abstention, but found nothing or its evidence was below the gap threshold
    negative_feedback: int
    comments: tuple[str, ...]
    reason: str | None = None  # an abstention's reason ("the documents never mention iPad")




class QueryLog:
    """Thread-safe appends to one SQLite file; the connection opens on first use."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = open_shared(self.path, SCHEMA, timeout=5.0, synchronous="NORMAL")
            if "reason" not in {row["name"] for row in conn.execute("PRAGMA table_info(queries)")}:
                try:  # a log written before abstentions kept their reason (December 2026)
                    conn.execute("ALTER TABLE queries ADD COLUMN reason TEXT")
                except sqlite3.OperationalError:  # another process added it first
                    pass
            self._conn = conn
        return self._conn

    def record(
        self,
        kind: str,
        query: str,
        *,
        results: int,
        latency_ms: float,
        mode: str | None = None,
        top_score: float | None = None,
        confidence: float | None = None,
        answered: bool | None = None,
        answer_kind: str | None = None,
        snapshot: str | None = None,
        reason: str | None = None,
    ) -> str | None:
        """Append one query; its id, or None when the log could not be written (never raises)."""
        query_id = secrets.token_hex(8)
        try:
            with self._lock:
                self._connect().execute(
                    "INSERT INTO queries (id, ts, kind, query, mode, results, top_score, confidence, answered,"
                    " answer_kind, latency_ms, snapshot, reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (query_id, utc_now("milliseconds"), kind, query, mode, results, top_score, confidence,
                     None if answered is None else int(answered), answer_kind, round(latency_ms, 2), snapshot,
                     reason),
                )
            return query_id
        except (sqlite3.Error, OSError) as exc:
            log.warning("query log %s could not be written: %s", self.path, exc)
            return None

    def add_feedback(
        self, query_id: str, helpful: bool, target: str = "answer", source: str | None = None,
        chunk_id: int | None = None, comment: str | None = None,
    ) -> int:
        """Store feedback on a logged query; raises UnknownQuery when the id was never logged."""
        try:
            with self._lock:
                conn = self._connect()
                if conn.execute("SELECT 1 FROM queries WHERE id = ?", (query_id,)).fetchone() is None:
                    raise UnknownQuery(
                        f"no logged query has id '{query_id}': pass the query_id a /search or /ask response returned"
                    )
                cur = conn.execute(
                    "INSERT INTO feedback (ts, query_id, target, source, chunk_id, helpful, comment)"
                    " VALUES (?,?,?,?,?,?,?)",
                    (utc_now("milliseconds"), query_id, target, source, chunk_id, int(helpful), comment),
                )
                return int(cur.lastrowid)
        except (sqlite3.Error, OSError) as exc:
            raise QueryLogUnavailable(f"the query log {self.path} cannot be written: {exc}") from exc

    def weak_queries(self, min_confidence: float, days: float | None = None, limit: int = 5000) -> list[LoggedQuery]:
        """Queries that abstained, found nothing, scored below `min_confidence` or got a 'not helpful'.

        Newest first, at most `limit`.
        """
        since = (datetime.now(timezone.utc) - timedelta(days=days)).isoformat() if days else ""
        sql = """
            SELECT q.id, q.ts, q.kind, q.query, q.results, q.confidence, q.answered, q.reason,
                   (q.answered IS NOT 0 AND (q.results = 0 OR COALESCE(q.confidence < ?, 0))) AS low,
                   COALESCE(SUM(f.helpful = 0), 0) AS negative,
                   GROUP_CONCAT(CASE WHEN f.helpful = 0 THEN f.comment END, char(31)) AS comments
            FROM queries q LEFT JOIN feedback f ON f.query_id = q.id
            WHERE q.ts >= ?
            GROUP BY q.id
            HAVING q.answered = 0 OR low OR negative > 0
            ORDER BY q.ts DESC LIMIT ?
        """
        try:
            with self._lock:
                rows = self._connect().execute(sql, (min_confidence, since, limit)).fetchall()
        except (sqlite3.Error, OSError) as exc:
            raise QueryLogUnavailable(f"the query log {self.path} cannot be read: {exc}") from exc
        return [
            LoggedQuery(
                r["id"], r["ts"], r["kind"], r["query"], r["results"], r["confidence"],
                None if r["answered"] is None else bool(r["answered"]), bool(r["low"]), int(r["negative"]),
                tuple(c for c in (r["comments"] or "").split("\x1f") if c), r["reason"],
            )
            for r in rows
        ]

    def totals(self, days: float | None = None) -> dict[str, int]:
        """How many queries, asks, answers and feedback the log holds (in the window)."""
        since = (datetime.now(timezone.utc) - timedelta(days=days)).isoformat() if days else ""
        try:
            with self._lock:
                conn = self._connect()
                q = conn.execute(
                    "SELECT count(*), COALESCE(SUM(kind = 'ask'), 0), COALESCE(SUM(answered = 1), 0),"
                    " COALESCE(SUM(answered = 0), 0) FROM queries WHERE ts >= ?", (since,)
                ).fetchone()
                f = conn.execute(
                    "SELECT count(*), COALESCE(SUM(helpful = 0), 0) FROM feedback WHERE ts >= ?", (since,)
                ).fetchone()
        except (sqlite3.Error, OSError) as exc:
            raise QueryLogUnavailable(f"the query log {self.path} cannot be read: {exc}") from exc
        return {"queries": q[0], "asked": q[1], "answered": q[2], "abstained": q[3],
                "feedback": f[0], "negative_feedback": f[1]}

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
