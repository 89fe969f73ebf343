"""Retrieval evaluation: metrics (pure) and runners for passage-level (BEIR) and end-to-end sets.

Passage sets: corpus.jsonl, queries.jsonl, qrels.tsv; passages are indexed as given (no re-chunking).
End-to-end sets: a folder of documents, queries.jsonl and gold.jsonl with the answer text of each
question; a result counts when at least half of its 8-word shingles (or of the gold answer's, when
that is shorter) occur in the gold answer, i.e. the passage is mostly the answer or holds most of it.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence
from km_search.text import WORD

SHINGLE = 8


# ---- metrics -------------------------------------------------------------------------------


def ndcg_at(ranked: Sequence[str], relevant: dict[str, int], k: int = 10) -> float:
    gains = [relevant.get(doc, 0) for doc in ranked[:k]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    wanted = {d for d, g in relevant.items() if g > 0}
    return len(wanted.intersection(ranked[:k])) / len(wanted) if wanted else 0.0


def first_hit_rank(hits: Sequence[bool], k: int = 10) -> int | None:
    return next((i + 1 for i, hit in enumerate(hits[:k]) if hit), None)


def shingles(words: Sequence[str]) -> list[str]:
    if len(words) < SHINGLE:
        return [" ".join(words)] if words else []
    return [" ".join(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)]


class GoldAnswer:
    """Decides whether a returned passage is (mostly) the gold answer text."""

    def __init__(self, answer: str):
        self.words = WORD.findall(answer.lower())
        self.shingles = set(shingles(self.words))

    def matches(self, text: str) -> bool:
        words = WORD.findall(text.lower())
        if not words:
            return False
        sh = shingles(words)
        inside = sum(1 for s in sh if s in self.shingles)
        return inside / min(len(sh), max(1, len(self.words) - SHINGLE + 1)) >= 0.5


@dataclass
class QueryOutcome:
    query_id: str
    rank: int | None  # rank of the first relevant result within the top 10
    ndcg10: float | None = None
    recall10: float | None = None
    recall100: float | None = None
    latency_ms: float = 0.0


def summarize(outcomes: Sequence[QueryOutcome]) -> dict[str, float]:
    n = max(1, len(outcomes))
    latencies = sorted(o.latency_ms for o in outcomes) or [0.0]
    out = {
        "queries": len(outcomes),
        "Hit@1": sum(o.rank is not None and o.rank <= 1 for o in outcomes) / n,
        "Hit@5": sum(o.rank is not None and o.rank <= 5 for o in outcomes) / n,
        "Hit@10": sum(o.rank is not None for o in outcomes) / n,
        "MRR@10": sum(1 / o.rank for o in outcomes if o.rank) / n,
    }
    if outcomes and outcomes[0].ndcg10 is not None:
        out["nDCG@10"] = statistics.fmean(o.ndcg10 or 0.0 for o in outcomes)
        out["Recall@10"] = statistics.fmean(o.recall10 or 0.0 for o in outcomes)
        out["Recall@100"] = statistics.fmean(o.recall100 or 0.0 for o in outcomes)
    out["latency_p50_ms"] = statistics.median(latencies)
    out["latency_p95_ms"] = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    return {key: round(value, 4) if isinstance(value, float) else value for key, value in out.items()}


# ---- loading sets --------------------------------------------------------------------------


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        next(f)  # header
        for line in f:
            if line.strip():
                qid, doc, score = line.rstrip("\n").split("\t")
                qrels.setdefault(qid, {})[doc] = int(score)
    return qrels


# ---- runners -------------------------------------------------------------------------------

SearchFn = Callable[[str, int], list]  # (query, depth) -> Hits


def run_queries(queries: Iterable[dict], search: SearchFn, judge: Callable[[str, list], QueryOutcome]) -> list[QueryOutcome]:
    outcomes = []
    for q in queries:
        started = time.perf_counter()
        hits = search(q["text"], 100)
        latency = (time.perf_counter() - started) * 1000
        outcome = judge(q["_id"], hits)
        outcome.latency_ms = latency
        outcomes.append(outcome)
    return outcomes


Variants = dict[str, dict]  # name -> settings overrides, plus an optional "mode"


def _score_variants(settings, embedder, index: str, queries, judge, variants: Variants) -> dict[str, dict]:
    """Query one built index under each variant (query-time settings and retrieval mode)."""
    from km_search.service import SearchService

    results = {}
    for name, overrides in variants.items():
        overrides = dict(overrides)
        mode = overrides.pop("mode", "hybrid")
        # measuring must not fill a query log with the eval's own questions
        service = SearchService(settings.model_copy(update={**overrides, "query_log": False}), index, embedder=embedder)
        results[name] = summarize(run_queries(queries, lambda q, n: list(service.search(q, k=n, mode=mode).hits), judge))
    return results


def _retrieval_only(settings, index_dir: Path):
    """The settings of a throwaway index that only answers searches: no sentence vectors past the
    first pass, whatever KM_SENTENCE_VECTORS says (search reads only the first pass's: it is the same)."""
    return settings.model_copy(update={"index_dir": index_dir, "sentence_vectors": "first-pass"})


def evaluate_passages(set_dir: Path, settings, embedder, variants: Variants) -> dict[str, dict]:
    """Index a BEIR passage set as given (one chunk per passage) and score the ranking."""
    from ingest.pipeline import index_passages

    corpus = read_jsonl(set_dir / "corpus.jsonl")
    qrels = read_qrels(set_dir / "qrels.tsv")
    queries = [q for q in read_jsonl(set_dir / "queries.jsonl") if q["_id"] in qrels]
    with tempfile.TemporaryDirectory() as tmp:
        settings = _retrieval_only(settings, Path(tmp))
        passage_ids = index_passages(corpus, settings, "eval", embedder)

        def judge(qid: str, hits: list) -> QueryOutcome:
            ranked = [passage_ids[h.chunk_id] for h in hits]
            relevant = qrels[qid]
            return QueryOutcome(qid, first_hit_rank([relevant.get(r, 0) > 0 for r in ranked]),
                                ndcg_at(ranked, relevant), recall_at(ranked, relevant, 10), recall_at(ranked, relevant, 100))

        return _score_variants(settings, embedder, "eval", queries, judge, variants)


def evaluate_end_to_end(set_dir: Path, settings, embedder, variants: Variants, docs: Path | None = None) -> dict[str, dict]:
    """Ingest the set's documents through the real pipeline and score answers by text overlap."""
    from ingest.pipeline import ingest

    gold = {g["query_id"]: g for g in read_jsonl(set_dir / "gold.jsonl")}
    queries = [q for q in read_jsonl(set_dir / "queries.jsonl") if q["_id"] in gold]
    judges = {qid: GoldAnswer(g["answer"]) for qid, g in gold.items()}
    with tempfile.TemporaryDirectory() as tmp:
        settings = _retrieval_only(settings, Path(tmp))
        ingest([docs or set_dir / "docs"], settings, index="eval", embedder=embedder, progress=False)

        def judge(qid: str, hits: list) -> QueryOutcome:
            return QueryOutcome(qid, first_hit_rank([judges[qid].matches(h.text) for h in hits]))

        return _score_variants(settings, embedder, "eval", queries, judge, variants)
