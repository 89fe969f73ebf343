"""One clock for every timestamp the index and the query log write (UTC, ISO 8601)."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now(timespec: str = "seconds") -> str:
    """'2026-12-02T04:29:17+00:00'; the query log asks for milliseconds to order its entries."""
    return datetime.now(timezone.utc).isoformat(timespec=timespec)
