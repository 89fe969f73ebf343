"""The lexical (BM25) side of retrieval: term postings per shard, scored a term at a time with numpy.

Each dense shard has a lexical twin over the same rows (`shard-NNNN.bm25/`): the sorted 64-bit
hashes of its terms, each term's postings (row numbers in the shard and how often the term occurs
in the passage's heading and body), and every row's length in tokens. A query scores only the
postings of its own terms, so its cost follows how many passages hold them, with no work per
passage beyond that; statistics (passage count, mean length, document frequencies) are summed over
all shards, so a score does not depend on how the snapshot is sharded.

Analysis and scoring are SQLite FTS5's, which this replaced (format 4): the 'porter unicode61
remove_diacritics 2' tokens and FTS5's bm25() (heading occurrences weighted by `heading_weight`,
passage length counted over both columns) with its k1 and b (K1, B below: measured, kept). FTS5 called bm25() once per matching
row, ~0.7 us each, and questions match ~9% of passages: 125 ms a query at 1M passages.

The query side drops stopwords and question words ("why did we ...") that only add noise, and
matches any remaining term, so a passage holding most of them ranks first without requiring all.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from km_search.index.dense import locate, rows_of
from km_search.text import WORD

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

# BM25's term-frequency saturation and length normalization: FTS5's. 0.9 / 0.4 (Anserini's) scored
# better at passage level (hybrid nDCG@10 +0.4 / -0.1 / +2.6 points on the debian, python and django
# sets) but worse end to end on two of three (docs/quality.md, "BM25 constants"), so these stay.
K1, B = 1.2, 0.75
# An occurrence in the title or heading path counts as one in the body: twice (FTS5-era default, tuned at
# passage level on FAQ sets) lost to once on the bench of ten sets end to end (docs/quality.md, 2026-12-07).
HEADING_WEIGHT = 1.0
MAX_TF = 255  # occurrences stored per passage and column; BM25 saturates long before

_WORD = re.compile(r"[^\W_]+", re.UNICODE)  # unicode61: letters and digits; '_' separates
_FILES = ("terms", "offsets", "rows", "tf", "lengths")


def query_terms(query: str) -> list[str]:
    """Lower-cased content words of the query, in order, without duplicates."""
    seen: dict[str, None] = {}
    for token in WORD.findall(query.lower()):
        if token not in STOPWORDS and token not in seen:
            seen[token] = None
    if not seen:  # a query made only of stopwords still deserves an answer
        seen = dict.fromkeys(WORD.findall(query.lower()))
    return list(seen)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer  # PyStemmer: Snowball's C implementation of the original Porter algorithm

    return Stemmer.Stemmer("porter")


def _fold(text: str) -> str:
    """FTS5 unicode61's folding (lower-case, diacritics removed), which the postings must match
    exactly (tests compare with FTS5): not km_search.text.fold, which casefolds ('ß' -> 'ss')."""
    text = text.lower()
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def tokens(text: str) -> list[str]:
    """The indexed tokens of a text: lower-cased, diacritics removed, Porter-stemmed."""
    return _stemmer().stemWords(_WORD.findall(_fold(text)))


@lru_cache(maxsize=65536)
def term_hash(token: str) -> int:
    """A token's stable 64-bit name in the postings (the same in every process and shard)."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")


@dataclass
class Postings:
    """One shard's lexical index; row i is the shard's i-th chunk id in ascending order."""

    terms: np.ndarray  # uint64 term hashes, ascending
    offsets: np.ndarray  # int64, len(terms) + 1: term t's postings are [offsets[t], offsets[t+1])
    rows: np.ndarray  # int32 row numbers, ascending within a term
    tf: np.ndarray  # uint8 (postings, 2): occurrences in the heading, in the body
    lengths: np.ndarray  # uint32 tokens per row, heading and body

    @property
    def row_count(self) -> int:
        return len(self.lengths)

    def span(self, term: int) -> tuple[int, int]:
        i = int(np.searchsorted(self.terms, np.uint64(term)))
        if i < len(self.terms) and int(self.terms[i]) == term:
            return int(self.offsets[i]), int(self.offsets[i + 1])
        return 0, 0

    def save(self, folder: Path) -> None:
        folder.mkdir()
        for name in _FILES:
            np.save(folder / f"{name}.npy", getattr(self, name))

    @classmethod
    def load(cls, folder: Path) -> "Postings":
        """Memory-mapped: start-up reads nothing, and a query touches only its terms' postings."""
        return cls(**{name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in _FILES})


def build_postings(passages: Iterable[tuple[str, str]]) -> Postings:
    """Postings of (heading, body) passages, row i being the i-th passage."""
    vocabulary: dict[str, int] = {}
    term_ids: list[list[int]] = []
    heading_sizes: list[int] = []
    for heading, body in passages:
        head = tokens(heading)
        term_ids.append([vocabulary.setdefault(t, len(vocabulary)) for t in head + tokens(body)])
        heading_sizes.append(len(head))
    count = len(term_ids)
    sizes = np.fromiter(map(len, term_ids), dtype=np.int64, count=count)
    # Term numbers in the order of their hashes, so postings come out sorted by hash, then row.
    hashes = np.fromiter(map(term_hash, vocabulary), dtype=np.uint64, count=len(vocabulary))
    by_hash = np.argsort(hashes)
    rank = np.empty(len(by_hash), dtype=np.int64)
    rank[by_hash] = np.arange(len(by_hash))
    flat = rank[np.fromiter(chain.from_iterable(term_ids), dtype=np.int64, count=int(sizes.sum()))]
    row = np.repeat(np.arange(count, dtype=np.int64), sizes)
    position = np.arange(len(flat)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    in_body = position >= np.repeat(np.asarray(heading_sizes, dtype=np.int64), sizes)
    # One key per (term, row, column); counting equal keys gives the occurrences.
    keys, counts = np.unique((flat * max(count, 1) + row) * 2 + in_body, return_counts=True)
    pairs, column = keys >> 1, keys & 1
    first = np.ones(len(pairs), dtype=bool)
    first[1:] = pairs[1:] != pairs[:-1]
    tf = np.zeros((int(first.sum()), 2), dtype=np.uint8)
    tf[np.cumsum(first) - 1, column] = np.minimum(counts, MAX_TF)
    term_of, row_of = np.divmod(pairs[first], max(count, 1))
    return _from_sorted(hashes[by_hash][term_of], row_of, tf, sizes)


def join_postings(parts: Sequence[tuple[Postings, np.ndarray | None]]) -> Postings:
    """One shard's postings from parts laid end to end (each part's rows after the previous parts'),
    each keeping only the rows its mask marks (None: all). What an incremental ingest does to a
    shard that lost rows or gained new ones, without analysing its passages again."""
    terms, rows, tfs, lengths = [], [], [], []
    offset = 0
    for postings, keep in parts:
        term_of = np.repeat(np.asarray(postings.terms), np.diff(postings.offsets))
        row_of, tf, length = np.asarray(postings.rows), np.asarray(postings.tf), np.asarray(postings.lengths)
        if keep is not None:
            held = keep[row_of]
            term_of, row_of, tf, length = term_of[held], (np.cumsum(keep) - 1)[row_of[held]], tf[held], length[keep]
        terms.append(term_of)
        rows.append(row_of.astype(np.int64) + offset)
        tfs.append(tf)
        lengths.append(length)
        offset += len(length)
    all_terms = np.concatenate(terms) if terms else np.empty(0, np.uint64)
    order = np.argsort(all_terms, kind="stable")  # by term; rows stay ascending within a term
    return _from_sorted(all_terms[order], np.concatenate(rows)[order] if rows else np.empty(0, np.int64),
                        np.concatenate(tfs)[order] if tfs else np.empty((0, 2), np.uint8),
                        np.concatenate(lengths) if lengths else np.empty(0, np.uint32))


def _from_sorted(terms: np.ndarray, rows: np.ndarray, tf: np.ndarray, lengths: np.ndarray) -> Postings:
    """Postings from one entry per (term, row), sorted by term hash, then row."""
    unique, starts = np.unique(terms, return_index=True)
    return Postings(terms=unique.astype(np.uint64), offsets=np.append(starts, len(terms)).astype(np.int64),
                    rows=rows.astype(np.int32), tf=tf.astype(np.uint8), lengths=lengths.astype(np.uint32))


class LexicalIndex:
    """The postings of all shards of a snapshot, with the corpus statistics BM25 needs."""

    def __init__(self, shards: Sequence[Postings], shard_ids: Sequence[np.ndarray],
                 k1: float | None = None, b: float | None = None, corpus: tuple[int, int] | None = None):
        """`corpus`: (passages, tokens) of the whole snapshot when these postings are only some of
        its shards (a shard served on its own, km_search/cluster/), so scores stay the snapshot's."""
        self.k1 = K1 if k1 is None else k1
        self.b = B if b is None else b
        self.shards = list(shards)
        self.shard_ids = list(shard_ids)  # chunk ids of each shard's rows, ascending
        self.total, self.tokens = corpus or (sum(p.row_count for p in self.shards),
                                             sum(int(p.lengths.sum(dtype=np.int64)) for p in self.shards))
        self._norms: list[np.ndarray] | None = None

    @property
    def norms(self) -> list[np.ndarray]:
        """The length normalization of each row, fixed for the snapshot's life (made at first use:
        an index that only counts terms, as a sharded service's front does, never needs it)."""
        if self._norms is None:
            average = self.tokens / self.total if self.total else 1.0
            self._norms = [(self.k1 * (1 - self.b + self.b * p.lengths / max(average, 1e-9))).astype(np.float32)
                           for p in self.shards]
        return self._norms

    def terms(self, query: str) -> list[int]:
        """The query's term hashes, as `scored` matches them."""
        hashes: dict[int, None] = {}
        for word in query_terms(query):
            for token in tokens(word):
                hashes.setdefault(term_hash(token), None)
        return list(hashes)

    def allowed_rows(self, allowed: np.ndarray | None) -> list[np.ndarray | None]:
        if allowed is None:
            return [None] * len(self.shards)
        return [rows_of(ids, allowed) for ids in self.shard_ids]

    def idf(self, term: int) -> float:
        df = sum(b - a for a, b in (p.span(term) for p in self.shards))
        return self.idf_of(df)

    def idf_of(self, df: int) -> float:
        value = math.log((self.total - df + 0.5) / (df + 0.5))
        return value if value > 0 else 1e-6  # as FTS5: a term in most passages still counts a little

    def search(
        self, query: str, n: int, allowed: np.ndarray | None = None, heading_weight: float | None = None
    ) -> list[tuple[int, float]]:
        """Top-n (chunk id, BM25 score), higher is better; only among the `allowed` chunk ids when given,
        so filters restrict the matches before the top n are taken."""
        return self.scored(query, allowed, heading_weight).top(n)

    def scored(self, query: str, allowed: np.ndarray | None = None, heading_weight: float | None = None) -> "LexicalScores":
        """Every passage's score for the query, shard by shard: its top n, and the score of any
        passage ranking asks about later (a neighbour of a candidate, a dense candidate)."""
        terms = self.terms(query)
        return self.scored_terms(terms, [self.idf(t) for t in terms], allowed, heading_weight)

    def scored_terms(self, terms: Sequence[int], idfs: Sequence[float], allowed: np.ndarray | None = None,
                     heading_weight: float | None = None) -> "LexicalScores":
        """`scored` for analysed terms and their idfs (a shard served alone gets the snapshot's)."""
        heading_weight = HEADING_WEIGHT if heading_weight is None else heading_weight
        per_shard = []
        for postings, norms in zip(self.shards, self.norms):
            scores = np.zeros(postings.row_count if terms else 0, dtype=np.float32)
            for term, idf in zip(terms, idfs):
                a, b = postings.span(term)
                if a == b:
                    continue
                rows = postings.rows[a:b]
                scores[rows] += self._bm25(postings.tf[a:b], norms[rows], idf, heading_weight)
            per_shard.append(scores)
        return LexicalScores(self.shard_ids, per_shard, self.allowed_rows(allowed))

    def _bm25(self, tf: np.ndarray, norms: np.ndarray, idf: float, heading_weight: float) -> np.ndarray:
        f = heading_weight * tf[:, 0].astype(np.float32) + tf[:, 1]
        return np.float32(idf * (self.k1 + 1)) * f / (f + norms)

    def document_frequencies(self, words: Sequence[str], allowed: np.ndarray | None = None) -> dict[str, int]:
        """Passages holding each word (after the index's analysis; a word that analyses to several
        tokens counts passages holding all of them); with `allowed`, only among those chunk ids, so a
        reader's answer confidence owes nothing to documents they may not read."""
        masks = []
        for postings, rows_allowed in zip(self.shards, self.allowed_rows(allowed)):
            mask = None
            if rows_allowed is not None:
                mask = np.zeros(postings.row_count, dtype=bool)
                mask[rows_allowed] = True
            masks.append(mask)
        counts: dict[str, int] = {}
        for word in words:
            hashes = [term_hash(t) for t in tokens(word)]
            total = 0
            for postings, mask in zip(self.shards, masks):
                held: np.ndarray | None = None
                for h in hashes:
                    a, b = postings.span(h)
                    rows = np.asarray(postings.rows[a:b])
                    held = rows if held is None else np.intersect1d(held, rows, assume_unique=True)
                if held is not None:
                    total += int(mask[held].sum()) if mask is not None else len(held)
            counts[word] = total
        return counts


@dataclass
class LexicalScores:
    """One query's BM25 score of every passage, per shard (0: no query term), and which rows the
    filters allow."""

    shard_ids: list[np.ndarray]
    scores: list[np.ndarray]
    allowed_rows: list[np.ndarray | None]
    remote = False  # held here: asking for scores costs microseconds

    def top(self, n: int) -> list[tuple[int, float]]:
        """The n best (chunk id, score) with a score above 0, among the allowed rows."""
        found: list[tuple[int, float]] = []
        for ids, scores, rows_allowed in zip(self.shard_ids, self.scores, self.allowed_rows):
            if not len(scores) or n <= 0:
                continue
            candidates = np.flatnonzero(scores) if rows_allowed is None else rows_allowed[scores[rows_allowed] > 0]
            if len(candidates) > n:
                candidates = candidates[np.argpartition(-scores[candidates], n - 1)[:n]]
            found.extend(zip(ids[candidates].tolist(), scores[candidates].tolist()))
        found.sort(key=lambda pair: (-pair[1], pair[0]))
        return found[:n]

    def of(self, ids: np.ndarray) -> np.ndarray:
        """The score of each of these chunk ids (0 for one not in the snapshot)."""
        out = np.zeros(len(ids), dtype=np.float32)
        for shard_ids, scores in zip(self.shard_ids, self.scores):
            held, rows = locate(shard_ids, ids)
            if len(scores) and len(held):
                out[held] = scores[rows]
        return out
