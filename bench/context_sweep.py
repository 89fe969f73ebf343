"""Window and neighbour weights swept over the labelled sets (docs/quality.md, "Windows and neighbours").

    .venv/bin/python bench/context_sweep.py [SET_DIR ...]

Each set is indexed once at passage level (its passages as given) and once end to end (its
documents through the product's parsing and 300-word chunking); every configuration is a query-time
setting compared on the same index (`km_search.evaluation`). Prints nDCG@10 / MRR@10 per passage
set and Hit@10 / MRR@10 end to end, default openvino-int8 backend.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from km_search.embedding.embedder import Embedder
from evaluation.retrieval import evaluate_end_to_end, evaluate_passages
from km_search.settings import Settings  # noqa: E402

CONFIGS = [  # (window weight, dense neighbour weight, lexical neighbour weight)
    (0.0, 0.0, 0.0), (0.7, 0.0, 0.0), (0.0, 0.2, 0.15), (0.0, 0.3, 0.3), (0.5, 0.2, 0.15), (0.7, 0.2, 0.0),
    (0.7, 0.2, 0.1), (0.7, 0.2, 0.15), (0.7, 0.2, 0.2), (0.7, 0.3, 0.3), (0.8, 0.2, 0.15), (1.0, 0.2, 0.15),
]
DEFAULT_SETS = [ROOT.parent / "shared" / "eval" / "debian_faq", ROOT / "evalsets" / "python_faq",
                ROOT / "evalsets" / "django_sqlalchemy_faq", ROOT / "evalsets" / "git_faq"]


def main(argv: list[str]) -> None:
    sets = [Path(a) for a in argv] or [s for s in DEFAULT_SETS if (s / "corpus.jsonl").exists()]
    settings = Settings()
    variants = {config: {"window_weight": config[0], "dense_neighbor_weight": config[1],
                         "lexical_neighbor_weight": config[2]} for config in CONFIGS}
    table: dict[tuple, list[str]] = {config: [] for config in CONFIGS}
    with tempfile.TemporaryDirectory(prefix="km-context-sweep-"):
        for set_dir in sets:
            embedder = Embedder(settings.model, settings.embed_batch_size, backend=settings.embed_backend,
                                cache_dir=settings.cache_path())
            passages = evaluate_passages(set_dir, settings, embedder, variants)
            end_to_end = evaluate_end_to_end(set_dir, settings, embedder, variants)
            for config in CONFIGS:
                p, e = passages[config], end_to_end[config]
                table[config].append(f"{p['nDCG@10']:.3f} / {p['MRR@10']:.3f}, {e['Hit@10']:.3f} / {e['MRR@10']:.3f}")
            print(f"{set_dir.name} done", file=sys.stderr, flush=True)
    print("| windows / dense neighbours / lexical neighbours | " + " | ".join(s.name for s in sets) + " |")
    print("|---" * (len(sets) + 1) + "|")
    for config, cells in table.items():
        print(f"| {config[0]} / {config[1]} / {config[2]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
