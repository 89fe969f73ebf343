"""Every bench question's top candidates, dumped once, so a ranking idea is tried in seconds, not runs.

    .venv/bin/python bench/candidates.py [--sets a,b] [--index-dir DIR] [--depth 100] [--out FILE]

For each end-to-end set of the bench (bench/genres.py `sets`), the set's documents are ingested with
the default Settings into DIR (kept: a second run reuses them; default a temporary folder) and every
labelled question is ranked without the first page's sentence lift (`Retriever.rank(...,
sentences=False)`). Each candidate keeps what ranking knows of it: the fused, dense and lexical
scores, its best first-pass sentence cosine, its document, heading path, text, and whether the
e2e_score.py rule counts it as the gold answer. Written as a pickle (default
bench/candidates.pkl, not committed): {set: [Question]}.

Then, in Python (with bench/ on sys.path):

    from candidates import load, mrr_at_10, product_order
    sets = load("bench/candidates.pkl")
    mrr_at_10(sets["python_faq"], product_order)                        # what the bench measures
    mrr_at_10(sets["python_faq"], lambda q: sorted(q.candidates, key=lambda c: -c.dense))

`product_order` re-applies the lift exactly as search does (fusion.lift_by over the first page), so
its MRR@10 equals `km eval SET --kind e2e` on every set (tests/test_bench.py checks one). How it was
used: docs/quality.md, "the first page lifted by its best sentences".
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


@dataclass
class Candidate:
    chunk_id: int
    fused: float  # the fused score before the first page's sentence lift
    dense: float | None  # None: not among the dense candidates
    lexical: float | None  # None: not among the lexical candidates
    best_sentence: float  # best cosine of its first-pass sentence vectors with the question (NaN: none)
    gold: bool  # the e2e_score.py rule counts it as the gold answer
    doc_path: str
    heading_path: tuple[str, ...]
    text: str


@dataclass
class Question:
    query_id: str
    text: str
    candidates: list[Candidate]  # in fused order, best first


def dump_set(set_dir: Path, docs: Path, index_dir: Path, index: str, depth: int, embedder) -> list[Question]:
    """Ingest `docs` into `index_dir/index` unless it is there, then every labelled question's top `depth`."""
    from genres import labelled
    from ingest.pipeline import ingest
    from km_search.service import SearchService
    from km_search.settings import Settings

    settings = Settings(index_dir=index_dir, query_log=False)
    if not (index_dir / index / "CURRENT").exists():
        ingest([docs], settings, index=index, embedder=embedder, progress=False)
    retriever = SearchService(settings, index, embedder=embedder).retriever
    questions, judges = labelled(set_dir)
    out = []
    for q in questions:
        ranked = retriever.rank(q["text"], depth, sentences=False)
        ids = [cid for cid, *_ in ranked]
        rows = retriever.snapshot.chunk_rows(ids)
        best = retriever.snapshot.best_sentence_scores(retriever.embedder.encode_query(q["text"]), ids)
        candidates = [
            Candidate(cid, fused, dense, lexical, float(sentence), judges[q["_id"]].matches(rows[cid]["text"]),
                      rows[cid]["doc_path"], tuple(json.loads(rows[cid]["heading_path"])), rows[cid]["text"])
            for (cid, fused, dense, lexical), sentence in zip(ranked, best)]
        out.append(Question(q["_id"], q["text"], candidates))
    return out


def product_order(question: Question) -> list[Candidate]:
    """The candidates in the order search gives them: the first page lifted by its best sentences."""
    from km_search.search.fusion import lift_by
    from km_search.search.retrieval import FIRST_PAGE
    from km_search.settings import Settings

    head = question.candidates[:FIRST_PAGE]
    lifted = lift_by([(i, c.fused) for i, c in enumerate(head)], [c.best_sentence for c in head],
                     Settings().sentence_weight)
    return [head[i] for i, _ in lifted] + question.candidates[FIRST_PAGE:]


def mrr_at_10(questions: Sequence[Question], order: Callable[[Question], Sequence[Candidate]]) -> float:
    """MRR@10 of an ordering of each question's candidates, by the bench's rule."""
    total = 0.0
    for question in questions:
        total += next((1 / rank for rank, c in enumerate(order(question)[:10], 1) if c.gold), 0.0)
    return total / max(1, len(questions))


def load(path: Path | str) -> dict[str, list[Question]]:
    with open(path, "rb") as f:
        return pickle.load(f)


def main(argv=None) -> int:
    from genres import sets
    from km_search.embedding.embedder import Embedder
    from km_search.settings import Settings

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", help="comma-separated set names (default: all)")
    ap.add_argument("--index-dir", type=Path, help="where the sets' indexes are built and kept (default: a temporary folder)")
    ap.add_argument("--depth", type=int, default=100, help="candidates kept per question")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "candidates.pkl")
    args = ap.parse_args(argv)
    import candidates  # this file as a module, not __main__: the pickle then loads from anywhere

    embedder = Embedder.from_settings(Settings())
    dumped = {}
    with tempfile.TemporaryDirectory(prefix="km-candidates-") as tmp:
        index_dir = args.index_dir or Path(tmp)
        for name, set_dir, docs in sets(args.sets.split(",") if args.sets else None):
            dumped[name] = candidates.dump_set(set_dir, docs, index_dir, name, args.depth, embedder)
            print(f"{name}: {len(dumped[name])} questions, MRR@10 {mrr_at_10(dumped[name], product_order):.4f}",
                  file=sys.stderr, flush=True)
    with open(args.out, "wb") as f:
        pickle.dump(dumped, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
