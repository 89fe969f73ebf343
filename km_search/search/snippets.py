"""Highlighted snippets: the densest window of query terms in a passage, with <mark> around matches."""

from __future__ import annotations

import html
import re
from bisect import bisect_left
from functools import lru_cache

import numpy as np

from km_search.index.lexical import query_terms


@lru_cache(maxsize=256)
def _term_pattern(query: str) -> re.Pattern[str] | None:
    """One expression finding, in lower-cased text, the words that match a term of the query, up to
    the end of a word; a prefix match approximates stemming: 'deploy' marks 'deployment' and
    'deploys'. A match must also begin a word, which the caller checks against the word offsets it
    has: as a look-behind here it doubled the search. Made once per query: snippets are made for
    every hit of every search."""
    terms = query_terms(query)
    if not terms:
        return None
    alternatives = "|".join(re.escape(t[: max(4, len(t) - 2)]) + r"\w*" if len(t) >= 4 else re.escape(t)
                            for t in terms)
    return re.compile(rf"(?:{alternatives})(?!\w)")


def snippet(text: str, query: str, max_words: int = 40) -> str:
    """HTML-safe excerpt of `text` around the best cluster of query terms, matches in <mark>."""
    return highlight(text, query, max_words)[0]


def highlight(text: str, query: str, max_words: int = 40) -> tuple[str, list[int]]:
    """snippet() and where its marked words begin in `text` (which part of a passage matched).
    Only the matching words are looked at one by one (a passage has ~300 words, a query a few)."""
    word_starts, word_ends = word_spans(text)
    if not len(word_starts):
        return html.escape(text[:300]), []
    pattern = _term_pattern(query)
    lower = text.lower()
    if pattern is None:
        hits: list[int] = []
    elif len(lower) == len(text):  # offsets agree (a few characters lengthen when lower-cased)
        found = np.fromiter((m.start() for m in pattern.finditer(lower)), dtype=np.int64)
        positions = np.searchsorted(word_starts, found)
        hits = positions[word_starts[np.minimum(positions, len(word_starts) - 1)] == found].tolist()
    else:
        hits = [i for i, (start, end) in enumerate(zip(word_starts.tolist(), word_ends.tolist()))
                if pattern.fullmatch(text[start:end].lower())]
    best_start = _densest_window(hits, len(word_starts), max_words)
    end_index = min(len(word_starts), best_start + max_words) - 1
    lo, hi = int(word_starts[best_start]), int(word_ends[end_index])
    parts: list[str] = ["… " if lo > 0 else ""]
    marked: list[int] = []
    cursor = lo
    for i in hits:
        if best_start <= i <= end_index:
            start, end = int(word_starts[i]), int(word_ends[i])
            marked.append(start)
            parts.append(html.escape(text[cursor:start]))
            parts.append(f"<mark>{html.escape(text[start:end])}</mark>")
            cursor = end
    parts.append(html.escape(text[cursor:hi]))
    if hi < len(text):
        parts.append(" …")
    return "".join(parts), marked


_ASCII_WORD = np.array([chr(c).isalnum() or c == ord("_") for c in range(128)])


def word_spans(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Start and end offsets of the words `km_search.text.WORD` finds, from array operations on the
    code points: a snippet is made for every hit of every search, and a match object per word cost
    two thirds of it. `\\w` is `str.isalnum()` or `_`, so a character beyond ASCII is asked once."""
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)  # lone surrogates too
    wordy = np.zeros(len(codes) + 2, dtype=bool)  # padded: a word at either end still has two edges
    inner, ascii_ = wordy[1:-1], codes < 128
    inner[ascii_] = _ASCII_WORD[codes[ascii_]]
    if not ascii_.all():
        others = codes[~ascii_]
        distinct = np.unique(others)
        inner[~ascii_] = np.isin(others, distinct[[chr(c).isalnum() for c in distinct.tolist()]])
    edges = np.flatnonzero(wordy[1:] != wordy[:-1])
    return edges[0::2], edges[1::2]


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
