"""How rare each query word is in a snapshot: FTS5 document frequencies, for answer confidence.

A question whose rare words the corpus never uses ("sourdough", "Kubernetes") is probably about
something the documents do not cover, however close its embedding lands to some passage.
"""

from __future__ import annotations

import sqlite3
from typing import Sequence


def document_frequencies(
    db: sqlite3.Connection, terms: Sequence[str], within: tuple[str, list] | None = None
) -> dict[str, int]:
    """Passages containing each term (FTS5 applies the index's Porter stemming to the term); with
    `within` (an SQL SELECT of chunk ids and its parameters) only among those passages, so a reader's
    answer confidence owes nothing to documents they may not read."""
    counts: dict[str, int] = {}
    restrict, params = (f" AND rowid IN ({within[0]})", list(within[1])) if within else ("", [])
    for term in terms:
        try:
            row = db.execute(
                f"SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?{restrict}",
                ('"' + term.replace('"', '""') + '"', *params),
            ).fetchone()
        except sqlite3.OperationalError:  # a term FTS5 cannot parse counts as unseen
            row = (0,)
        counts[term] = int(row[0])
    return counts
