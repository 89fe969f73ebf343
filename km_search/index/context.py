"""What ranking knows of a passage beyond its one pooled vector: its windows and its neighbours.

Windows (late chunking): the embedder's token vectors, which it computes anyway to pool the passage
vector, are also pooled over consecutive runs of `WINDOW_TOKENS` tokens. A question answered by two
sentences inside a 200-word passage matches that window better than the average of the whole
passage, whose other sentences answer other questions. A passage's dense score mixes its pooled
cosine with its best window's (docs/quality.md: dev-set dense nDCG@10 0.540 -> 0.561 for the best
window alone, 0.653 for the default hybrid with neighbours). They cost no model time; they are
stored as int8 codes with a scale per window, about 5 windows of 388 bytes per 256-token passage.

Sentences: the same token vectors are pooled once more over each sentence the answer extractor
scores (its own splitter's spans, mapped to tokens by the tokenizer's character offsets), so `/ask`
compares the question with stored sentence vectors instead of embedding every candidate sentence at
query time. Each vector is stored with the character span of the passage text it pools, int8 like
the windows; a sentence the model never saw (past its token limit) has none and is embedded when asked.
Search's first-page lift reads the sentences of the text as prose, a list's or table's lines run
together (`prose_spans`): where those differ from the extractor's, both are stored.

Neighbours: long sections are cut into several passages, and an answer cut by a boundary leaves
evidence in both. A passage that continues the section of the chunk before it (same document,
same heading path, the next chunk id) is that chunk's neighbour; each passage borrows a share of its
best neighbour's score, so the passages around a strong match rise with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

WINDOW_TOKENS = 48
_FILES = ("offsets", "codes", "scales", "continues")
_SENTENCE_FILES = ("sentence_offsets", "sentence_spans", "sentence_codes", "sentence_scales")


def _spans(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The indices of runs [start, start + size) laid end to end."""
    before = np.cumsum(sizes) - sizes
    return np.repeat(starts - before, sizes) + np.arange(int(sizes.sum()))


def pool_windows(tokens: np.ndarray, size: int = WINDOW_TOKENS) -> np.ndarray:
    """Unit mean vectors of consecutive `size`-token runs of one text's token vectors (special tokens
    already dropped); the last run ends at the text's end, so every window spans `size` tokens."""
    count, dimension = tokens.shape
    if count <= size:
        pooled = tokens.mean(axis=0, keepdims=True) if count else np.zeros((0, dimension), np.float32)
    else:
        full = count // size
        pooled = tokens[: full * size].reshape(full, size, dimension).mean(axis=1)
        if count % size:
            pooled = np.concatenate([pooled, tokens[count - size :].mean(axis=0, keepdims=True)])
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def pool_spans(tokens: np.ndarray, offsets: np.ndarray, spans: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Unit mean vectors of the tokens inside each character span of the text (special tokens already
    dropped; `offsets` (tokens, 2): each token's characters). A span is pooled only when every one of
    its characters came before the end of the last token: past the model's token limit the text was
    cut, and a span without tokens has nothing to pool. Returns (the spans pooled (k, 2), their vectors)."""
    dimension = tokens.shape[1]
    if not len(spans) or not len(tokens):
        return np.zeros((0, 2), np.int32), np.zeros((0, dimension), np.float32)
    starts, ends = np.asarray(offsets[:, 0]), np.asarray(offsets[:, 1])
    seen = int(ends.max())
    kept, pooled = [], []
    for a, b in spans:
        if b > seen:
            continue
        lo, hi = int(np.searchsorted(starts, a, "left")), int(np.searchsorted(ends, b, "right"))
        if hi <= lo:
            continue
        kept.append((a, b))
        pooled.append(tokens[lo:hi].mean(axis=0))
    if not kept:
        return np.zeros((0, 2), np.int32), np.zeros((0, dimension), np.float32)
    vectors = np.stack(pooled)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return np.asarray(kept, dtype=np.int32), vectors.astype(np.float32)


@dataclass
class Windows:
    """The window vectors of a run of passages: row i's windows are [offsets[i], offsets[i+1])."""

    offsets: np.ndarray  # int64 (rows + 1,)
    codes: np.ndarray  # int8 (windows, d): the unit vector divided by its scale, rounded
    scales: np.ndarray  # float32 (windows,)

    @property
    def rows(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def of(cls, per_row: Sequence[np.ndarray], dimension: int) -> "Windows":
        """From float window vectors, one (k, d) array per passage (k may be 0)."""
        sizes = np.fromiter((len(w) for w in per_row), dtype=np.int64, count=len(per_row))
        vectors = np.concatenate(list(per_row)) if sizes.sum() else np.zeros((0, dimension), np.float32)
        scales = np.maximum(np.abs(vectors).max(axis=1) if len(vectors) else np.zeros(0), 1e-12) / 127.0
        codes = np.rint(vectors / scales[:, None]).astype(np.int8)
        return cls(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64), codes, scales.astype(np.float32))

    @classmethod
    def none(cls, rows: int, dimension: int) -> "Windows":
        """Passages without windows (an embedder that has no token vectors): ranked by their pooled vector."""
        return cls(np.zeros(rows + 1, np.int64), np.zeros((0, dimension), np.int8), np.zeros(0, np.float32))

    def take(self, rows: np.ndarray) -> "Windows":
        """The windows of these rows (a slice, a mask or row numbers), in that order."""
        rows = np.arange(self.rows)[rows]
        starts, ends = np.asarray(self.offsets)[rows], np.asarray(self.offsets)[rows + 1]
        sizes = ends - starts
        picked = _spans(starts, sizes)
        return Windows(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                       np.asarray(self.codes)[picked], np.asarray(self.scales)[picked])

    @staticmethod
    def join(parts: Sequence["Windows"], dimension: int) -> "Windows":
        if not parts:
            return Windows.none(0, dimension)
        offsets = [np.zeros(1, np.int64)]
        for part in parts:
            offsets.append(np.asarray(part.offsets[1:]) + offsets[-1][-1])
        return Windows(np.concatenate(offsets), np.concatenate([np.asarray(p.codes) for p in parts]),
                       np.concatenate([np.asarray(p.scales) for p in parts]))

    def best(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The best window cosine of each of these rows with the query; NaN for a row without windows."""
        starts, ends = np.asarray(self.offsets)[rows], np.asarray(self.offsets)[rows + 1]
        sizes = ends - starts
        out = np.full(len(rows), np.nan, dtype=np.float32)
        has = sizes > 0
        if not has.any():
            return out
        starts, sizes = starts[has], sizes[has]
        picked = _spans(starts, sizes)
        cosines = (np.asarray(self.codes[picked], dtype=np.float32) @ query) * np.asarray(self.scales[picked])
        out[has] = np.maximum.reduceat(cosines, np.cumsum(sizes) - sizes)
        return out


@dataclass
class SentenceVectors:
    """The sentence vectors of a run of passages: row i's are [vectors.offsets[i], vectors.offsets[i+1]),
    each with the (start, end) characters of the passage text it pools. A row's first `searched[i]`
    are those search's lift reads: its prose sentences pooled from the passage's own forward pass.
    The rest are the answer extractor's own (lines, list items) and those pooled from a pass over the
    passage's tail (KM_SENTENCE_VECTORS=all), which search never reads, so it ranks the same either way."""

    vectors: Windows  # int8 codes and scales, laid out per row as windows are
    spans: np.ndarray  # int32 (sentences, 2)
    searched: np.ndarray  # int64 (rows,)

    @property
    def rows(self) -> int:
        return self.vectors.rows

    @classmethod
    def of(cls, per_row: Sequence[tuple[np.ndarray, np.ndarray]], dimension: int,
           searched: Sequence[int] | None = None) -> "SentenceVectors":
        """From (spans (k, 2), float vectors (k, d)) per passage (k may be 0), and how many of each
        passage's sentences, its first, search reads (None: all)."""
        spans = [np.asarray(s, dtype=np.int32).reshape(-1, 2) for s, _ in per_row]
        counts = [len(s) for s in spans] if searched is None else list(searched)
        return cls(Windows.of([v for _, v in per_row], dimension),
                   np.concatenate(spans) if spans else np.zeros((0, 2), np.int32), np.asarray(counts, dtype=np.int64))

    @classmethod
    def none(cls, rows: int, dimension: int) -> "SentenceVectors":
        """Passages without stored sentences (an embedder without token vectors): embedded when asked."""
        return cls(Windows.none(rows, dimension), np.zeros((0, 2), np.int32), np.zeros(rows, np.int64))

    def take(self, rows: np.ndarray) -> "SentenceVectors":
        """The sentences of these rows (a slice, a mask or row numbers), in that order."""
        rows = np.arange(self.rows)[rows]
        starts, ends = np.asarray(self.vectors.offsets)[rows], np.asarray(self.vectors.offsets)[rows + 1]
        return SentenceVectors(self.vectors.take(rows), np.asarray(self.spans)[_spans(starts, ends - starts)],
                               np.asarray(self.searched)[rows])

    @staticmethod
    def join(parts: Sequence["SentenceVectors"], dimension: int) -> "SentenceVectors":
        return SentenceVectors(Windows.join([p.vectors for p in parts], dimension),
                               np.concatenate([np.asarray(p.spans) for p in parts]) if parts else np.zeros((0, 2), np.int32),
                               np.concatenate([np.asarray(p.searched) for p in parts]) if parts else np.zeros(0, np.int64))

    def of_row(self, row: int, searched: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(spans (k, 2), float32 unit vectors (k, d)) of one row, decoded from int8; with
        `searched`, only those search's lift reads."""
        a, b = int(self.vectors.offsets[row]), int(self.vectors.offsets[row + 1])
        if searched:
            b = min(b, a + int(self.searched[row]))
        vectors = np.asarray(self.vectors.codes[a:b], dtype=np.float32) * np.asarray(self.vectors.scales[a:b])[:, None]
        return np.asarray(self.spans[a:b]), vectors


@dataclass
class ShardContext:
    """Per row of a shard: its windows, whether it continues the section of the chunk id before it,
    and its sentence vectors."""

    windows: Windows
    continues: np.ndarray  # bool (rows,)
    sentences: SentenceVectors

    def save(self, folder: Path) -> None:
        folder.mkdir()
        s = self.sentences
        arrays = {"offsets": self.windows.offsets, "codes": self.windows.codes, "scales": self.windows.scales,
                  "continues": self.continues, "sentence_offsets": s.vectors.offsets, "sentence_spans": s.spans,
                  "sentence_codes": s.vectors.codes, "sentence_scales": s.vectors.scales,
                  "sentence_first_pass": s.searched}  # the file keeps its first name
        for name in (*_FILES, *_SENTENCE_FILES, "sentence_first_pass"):
            np.save(folder / f"{name}.npy", arrays[name])

    @classmethod
    def load(cls, folder: Path) -> "ShardContext":
        """Memory-mapped: a query reads only its candidates' windows and sentences."""
        # plain arrays over the mapping: indexing a np.memmap costs ~10 us of wrapping per call
        a = {name: np.asarray(np.load(folder / f"{name}.npy", mmap_mode="r")) for name in (*_FILES, *_SENTENCE_FILES)}
        # snapshots written before 2026-12-07 do not say which sentences search reads: all of them, in
        # the default first-pass mode (an index built with KM_SENTENCE_VECTORS=all before then lets
        # search read its tails' sentences too, until it is rebuilt)
        first = folder / "sentence_first_pass.npy"
        searched = np.load(first) if first.exists() else np.diff(a["sentence_offsets"])
        sentences = SentenceVectors(Windows(a["sentence_offsets"], a["sentence_codes"], a["sentence_scales"]),
                                    a["sentence_spans"], searched)
        return cls(Windows(a["offsets"], a["codes"], a["scales"]), a["continues"], sentences)


def borrow_from_neighbors(scores: np.ndarray, previous: np.ndarray, following: np.ndarray, weight: float) -> np.ndarray:
    """Each score plus `weight` times its best neighbour's; `previous`/`following` index into `scores`
    (-1: no neighbour there, or its score is unknown)."""
    padded = np.append(scores, -np.inf)
    best = np.maximum(padded[previous], padded[following])
    return scores + weight * np.where(np.isfinite(best), best, 0.0).astype(scores.dtype)
