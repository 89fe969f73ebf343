"""The lexical (BM25) side of retrieval, on the snapshot's SQLite FTS5 table.

FTS5 stems with Porter at index time; the query side drops stopwords and question words
("why did we ...") that only add noise to BM25, and ORs the remaining terms so that a passage
matching most of them ranks first instead of requiring all of them.
"""

from __future__ import annotations

import re
import sqlite3

STOPWORDS = frozenset(
    """a about above after again against all am an and any are aren't as at be because been before
    being below between both but by can can't cannot could couldn't did didn't do does doesn't doing
    don't down during each few for from further had hadn't has hasn't have haven't having he he'd he'll
    he's her here here's hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't
    it it's its itself let's me more most mustn't my myself no nor not of off on once only or other
    ought our ours ourselves out over own same shan't she she'd she'll she's should shouldn't so some
    such than that that's the their theirs them themselves then there there's these they they'd
    they'll they're they've this those through to too under until up very was wasn't we we'd we'll
    we're we've were weren't what what's when when's where where's which while who who's whom why
    why's with won't would wouldn't you you'd you'll you're you've your yours yourself yourselves
    also just get got may might must shall will""".split()
)

_TOKEN = re.compile(r"\w+", re.UNICODE)


def query_terms(query: str) -> list[str]:
    """Lower-cased content words of the query, in order, without duplicates."""
    seen: dict[str, None] = {}
    for token in _TOKEN.findall(query.lower()):
        if token not in STOPWORDS and token not in seen:
            seen[token] = None
    if not seen:  # a query made only of stopwords still deserves an answer
        seen = dict.fromkeys(_TOKEN.findall(query.lower()))
    return list(seen)


def fts_expression(query: str) -> str | None:
    """An FTS5 MATCH expression ORing the quoted terms; None when nothing is searchable."""
    terms = query_terms(query)
    if not terms:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def lexical_search(
    db: sqlite3.Connection, query: str, n: int, heading_weight: float = 2.0,
    within: tuple[str, list] | None = None,
) -> list[tuple[int, float]]:
    """Top-n (chunk id, BM25 score), higher is better.

    `within` is an SQL SELECT of the chunk ids allowed (and its parameters): filters restrict the
    matches before the top n are taken.
    """
    expression = fts_expression(query)
    if expression is None:
        return []
    restrict, params = (f" AND rowid IN ({within[0]})", list(within[1])) if within else ("", [])
    rows = db.execute(
        "SELECT rowid, bm25(chunks_fts, ?, 1.0) AS rank FROM chunks_fts WHERE chunks_fts MATCH ?"
        f"{restrict} ORDER BY rank LIMIT ?",
        (heading_weight, expression, *params, n),
    ).fetchall()
    return [(int(row[0]), -float(row[1])) for row in rows]
