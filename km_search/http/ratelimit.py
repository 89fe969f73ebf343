"""Rate limiting: one token bucket per API key, user or client address.

Each bucket holds up to `per_minute` tokens and refills at `per_minute` a minute; a request takes
one. An empty bucket answers how long until the next token (the 429's Retry-After). One `km serve`
process keeps its buckets in memory; the processes of `km serve --workers N` share theirs in one
SQLite file, so N processes still allow `per_minute` and not N times it. It protects one server
from a runaway client, not a fleet from a botnet.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path

from km_search.sqlitedb import open_shared


def _take_token(tokens: float, then: float, now: float, capacity: float, rate: float) -> tuple[float, float]:
    """A bucket refilled from `then` to `now` with one token taken: (tokens left, 0), or when it holds
    less than one, (its tokens, seconds until one is there)."""
    tokens = min(capacity, tokens + max(0.0, now - then) * rate)
    if tokens >= 1.0:
        return tokens - 1.0, 0.0
    return tokens, (1.0 - tokens) / rate


class _TokenBuckets:
    def __init__(self, per_minute: int, clock=time.monotonic):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return self.capacity > 0


class RateLimiter(_TokenBuckets):
    """The buckets of one process, in memory."""

    def __init__(self, per_minute: int, max_buckets: int = 10_000, clock=time.monotonic):
        super().__init__(per_minute, clock)
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # who -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, who: str) -> float:
        """0 when `who` may go ahead (a token is taken), else the seconds until a token is free."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.pop(who, (self.capacity, now))
            tokens, wait = _take_token(tokens, then, now, self.capacity, self.rate)
            self._buckets[who] = (tokens, now)  # most recently used last
            while len(self._buckets) > self.max_buckets:  # forget the idlest: a full bucket anyway
                self._buckets.popitem(last=False)
            return wait


class SharedRateLimiter(_TokenBuckets):
    """The buckets of several processes of one machine, in one SQLite file (one short write
    transaction a request). The clock must be one all of them share: time.monotonic is, on Linux."""

    SCHEMA = "CREATE TABLE IF NOT EXISTS buckets (who TEXT PRIMARY KEY, tokens REAL, at REAL);"

    def __init__(self, path: Path, per_minute: int, clock=time.monotonic):
        super().__init__(per_minute, clock)
        self.path = Path(path)
        self._local = threading.local()
        self._taken = 0

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:  # the buckets matter for a minute, not across a crash
            db = self._local.db = open_shared(self.path, self.SCHEMA, synchronous="OFF")
        return db

    def take(self, who: str) -> float:
        """As RateLimiter.take, the bucket read and written in one transaction."""
        if not self.enabled:
            return 0.0
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            now = self.clock()
            row = db.execute("SELECT tokens, at FROM buckets WHERE who = ?", (who,)).fetchone()
            tokens, wait = _take_token(*(row or (self.capacity, now)), now, self.capacity, self.rate)
            db.execute("INSERT OR REPLACE INTO buckets VALUES (?, ?, ?)", (who, tokens, now))
            self._taken += 1
            if self._taken % 1000 == 0:  # a bucket idle for a minute is full again: forget it
                db.execute("DELETE FROM buckets WHERE at < ?", (now - 60.0,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return wait


def retry_after(wait_s: float) -> str:
    """The Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))
