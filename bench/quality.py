"""Retrieval quality of every configuration tried, on the passage-level sets: `make quality-configs`.

Writes bench/quality.json and the tables in docs/quality.md (between the BEGIN/END markers).
Sets: the shared dev set (../shared/eval/debian_faq, when present), the sets under evalsets/, and
the example corpus' own set. Ingest-time settings (chunking) need one index each; query-time
settings (fusion, weights, feedback, mode) are compared on the same index.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from km_search.embedding.embedder import Embedder
from evaluation.retrieval import evaluate_end_to_end, evaluate_passages
from km_search.settings import Settings  # noqa: E402

NO_CONTEXT = {"window_weight": 0.0, "dense_neighbor_weight": 0.0, "lexical_neighbor_weight": 0.0}
QUERY_VARIANTS = {
    "lexical (BM25)": {"mode": "lexical", **NO_CONTEXT},
    "dense (FAISS flat)": {"mode": "dense", **NO_CONTEXT},
    "dense + windows + neighbours": {"mode": "dense"},
    "RRF k=60": {"fusion": "rrf"},
    "convex 0.7, pooled vectors only (before windows)": NO_CONTEXT,
    "convex 0.7 + windows": {"dense_neighbor_weight": 0.0, "lexical_neighbor_weight": 0.0},
    "convex 0.7 + neighbours": {"window_weight": 0.0},
    "convex 0.6": {"dense_weight": 0.6},
    "convex 0.7 + windows + neighbours (default)": {},
    "convex 0.8": {"dense_weight": 0.8},
    "default + dense feedback (3 passages)": {"feedback_passages": 3},
}
CHUNKINGS = {
    "150/30": {"chunk_words": 150, "chunk_overlap": 30},
    "200/40": {"chunk_words": 200, "chunk_overlap": 40},
    "300/60": {"chunk_words": 300, "chunk_overlap": 60},
}


def sets(only: list[str] | None) -> list[tuple[str, Path, Path | None]]:
    found = []
    shared = ROOT.parent / "shared" / "eval" / "debian_faq"
    if shared.exists():
        found.append(("debian_faq", shared, None))
    for folder in sorted((ROOT / "evalsets").iterdir()):
        if (folder / "queries.jsonl").exists():
            found.append((folder.name, folder, None))
    found.append(("example_corpus", ROOT / "examples" / "eval", ROOT / "examples" / "corpus"))
    return [s for s in found if not only or s[0] in only]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sets", help="comma-separated set names (default: all)")
    parser.add_argument("--chunkings", default=",".join(CHUNKINGS), help="chunkings to compare end to end")
    parser.add_argument("--out", default=str(ROOT / "bench" / "quality.json"))
    args = parser.parse_args()
    base = Settings()
    rows = []
    with tempfile.TemporaryDirectory(prefix="km-quality-"):
        for name, set_dir, docs in sets(args.sets.split(",") if args.sets else None):
            # the default backend from the machine's export cache (KM_CACHE_DIR), as `km ingest` uses it
            embedder = Embedder(backend=base.embed_backend, cache_dir=base.cache_path())
            if (set_dir / "qrels.tsv").exists():
                started = time.time()
                for variant, metrics in evaluate_passages(set_dir, base, embedder, QUERY_VARIANTS).items():
                    rows.append({"set": name, "kind": "passages", "chunking": "as given", "variant": variant, **metrics})
                print(f"{name} passages: {time.time() - started:.0f} s", file=sys.stderr, flush=True)
            for chunking in args.chunkings.split(","):
                started = time.time()
                settings = base.model_copy(update=CHUNKINGS[chunking])
                for variant, metrics in evaluate_end_to_end(set_dir, settings, embedder, QUERY_VARIANTS, docs=docs).items():
                    rows.append({"set": name, "kind": "e2e", "chunking": chunking, "variant": variant, **metrics})
                print(f"{name} e2e {chunking}: {time.time() - started:.0f} s", file=sys.stderr, flush=True)
            Path(args.out).write_text(json.dumps(rows, indent=1))
    write_tables(rows)


def write_tables(rows: list[dict]) -> None:
    lines = []
    for kind, columns in (("passages", ["nDCG@10", "Recall@10", "Recall@100", "MRR@10"]),
                          ("e2e", ["Hit@1", "Hit@5", "Hit@10", "MRR@10"])):
        subset = [r for r in rows if r["kind"] == kind]
        if not subset:
            continue
        lines.append(f"\n### {'Passage level (passages indexed as given)' if kind == 'passages' else 'End to end (documents ingested by the product)'}\n")
        lines.append("| set | chunking | configuration | " + " | ".join(columns) + " | p50 ms |")
        lines.append("|---" * (len(columns) + 4) + "|")
        for r in subset:
            lines.append(f"| {r['set']} | {r['chunking']} | {r['variant']} | "
                         + " | ".join(f"{r[c]:.3f}" for c in columns) + f" | {r['latency_p50_ms']:.0f} |")
    doc = ROOT / "docs" / "quality.md"
    text = doc.read_text() if doc.exists() else "<!-- BEGIN RESULTS -->\n<!-- END RESULTS -->\n"
    head, _, rest = text.partition("<!-- BEGIN RESULTS -->")
    _, _, tail = rest.partition("<!-- END RESULTS -->")
    doc.write_text(head + "<!-- BEGIN RESULTS -->\n" + "\n".join(lines) + "\n<!-- END RESULTS -->" + tail)


if __name__ == "__main__":
    main()
