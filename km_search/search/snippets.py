"""Highlighted snippets: the densest window of query terms in a passage, with <mark> around matches."""

from __future__ import annotations

import html
import re
from itertools import accumulate

from km_search.index.lexical import query_terms
from km_search.text import WORD


def _matcher(terms: list[str]):
    """Whether a lower-cased word matches a term; a prefix match approximates stemming: 'deploy'
    marks 'deployment' and 'deploys'. One regular expression for all terms: snippets are made for
    every hit of every search."""
    if not terms:
        return lambda word: False
    pattern = re.compile("|".join(re.escape(t[: max(4, len(t) - 2)]) + r"\w*" if len(t) >= 4 else re.escape(t)
                                  for t in terms))
    return lambda word: pattern.fullmatch(word) is not None


def snippet(text: str, query: str, max_words: int = 40) -> str:
    """HTML-safe excerpt of `text` around the best cluster of query terms, matches in <mark>."""
    return highlight(text, query, max_words)[0]


def highlight(text: str, query: str, max_words: int = 40) -> tuple[str, list[int]]:
    """snippet() and where its marked words begin in `text` (which part of a passage matched)."""
    matches = _matcher(query_terms(query))
    words = list(WORD.finditer(text))
    if not words:
        return html.escape(text[:300]), []
    hit = [matches(m.group().lower()) for m in words]
    before = list(accumulate(hit, initial=0))  # before[i]: matches among the first i words
    best_start, best_count = 0, -1
    for start in range(0, max(1, len(words) - max_words + 1)):
        count = before[min(len(words), start + max_words)] - before[start]
        if count > best_count:
            best_start, best_count = start, count
    end_index = min(len(words), best_start + max_words) - 1
    lo, hi = words[best_start].start(), words[end_index].end()
    parts: list[str] = ["… " if lo > 0 else ""]
    marked: list[int] = []
    cursor = lo
    for i in range(best_start, end_index + 1):
        if hit[i]:
            m = words[i]
            marked.append(m.start())
            parts.append(html.escape(text[cursor : m.start()]))
            parts.append(f"<mark>{html.escape(m.group())}</mark>")
            cursor = m.end()
    parts.append(html.escape(text[cursor:hi]))
    if hi < len(text):
        parts.append(" …")
    return "".join(parts), marked
