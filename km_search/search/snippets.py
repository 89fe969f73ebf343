"""Highlighted snippets: the densest window of query terms in a passage, with <mark> around matches."""

from __future__ import annotations

import html
import re
from bisect import bisect_left
from functools import lru_cache

from km_search.index.lexical import query_terms
from km_search.text import WORD


@lru_cache(maxsize=256)
def _term_pattern(query: str) -> re.Pattern[str] | None:
    """One expression finding, in lower-cased text, the whole words that match a term of the query; a
    prefix match approximates stemming: 'deploy' marks 'deployment' and 'deploys'. Made once per
    query: snippets are made for every hit of every search."""
    terms = query_terms(query)
    if not terms:
        return None
    alternatives = "|".join(re.escape(t[: max(4, len(t) - 2)]) + r"\w*" if len(t) >= 4 else re.escape(t)
                            for t in terms)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def snippet(text: str, query: str, max_words: int = 40) -> str:
    """HTML-safe excerpt of `text` around the best cluster of query terms, matches in <mark>."""
    return highlight(text, query, max_words)[0]


def highlight(text: str, query: str, max_words: int = 40) -> tuple[str, list[int]]:
    """snippet() and where its marked words begin in `text` (which part of a passage matched).
    Only the matching words are looked at one by one (a passage has ~300 words, a query a few)."""
    words = [m.span() for m in WORD.finditer(text)]
    if not words:
        return html.escape(text[:300]), []
    starts = [start for start, _ in words]
    pattern = _term_pattern(query)
    lower = text.lower()
    if pattern is None:
        hits: list[int] = []
    elif len(lower) == len(text):  # offsets agree (a few characters lengthen when lower-cased)
        hits = [bisect_left(starts, m.start()) for m in pattern.finditer(lower)]
    else:
        hits = [i for i, (start, end) in enumerate(words) if pattern.fullmatch(text[start:end].lower())]
    best_start = _densest_window(hits, len(words), max_words)
    end_index = min(len(words), best_start + max_words) - 1
    lo, hi = words[best_start][0], words[end_index][1]
    parts: list[str] = ["… " if lo > 0 else ""]
    marked: list[int] = []
    cursor = lo
    for i in hits:
        if best_start <= i <= end_index:
            start, end = words[i]
            marked.append(start)
            parts.append(html.escape(text[cursor:start]))
            parts.append(f"<mark>{html.escape(text[start:end])}</mark>")
            cursor = end
    parts.append(html.escape(text[cursor:hi]))
    if hi < len(text):
        parts.append(" …")
    return "".join(parts), marked


def _densest_window(hits: list[int], words: int, width: int) -> int:
    """The first word of the earliest window of `width` words holding the most hits (word indices,
    ascending). Such a window starts at 0 or right where a hit comes in at its end."""
    last = max(0, words - width)
    best_start, best_count = 0, -1
    for start in sorted({0, *(min(last, max(0, h - width + 1)) for h in hits)}):
        count = bisect_left(hits, start + width) - bisect_left(hits, start)
        if count > best_count:
            best_start, best_count = start, count
    return best_start
