"""BM25's k1, b and heading weight swept over the passage-level sets (docs/quality.md, "BM25 constants").

    .venv/bin/python bench/bm25_sweep.py [SET_DIR ...]

Each set's passages are indexed once per configuration through the product's own pipeline
(`km_search.evaluation.evaluate_passages`); passage and window vectors are embedded once and reused, since
only the lexical side changes. Prints hybrid and lexical nDCG@10 per set and configuration.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from km_search.index import lexical
from km_search.index.context import Windows
from km_search.embedding.embedder import Embedder
from evaluation.retrieval import evaluate_passages
from km_search.settings import Settings  # noqa: E402

CONFIGS = [  # (k1, b, heading weight)
    (1.2, 0.75, 2.0), (1.5, 0.75, 2.0), (1.2, 0.9, 2.0), (1.2, 0.5, 2.0), (1.2, 0.3, 2.0), (0.9, 0.75, 2.0),
    (0.9, 0.4, 2.0), (0.9, 0.3, 2.0), (0.9, 0.2, 2.0), (0.7, 0.4, 2.0), (0.9, 0.4, 1.5), (1.2, 0.75, 1.0),
    (1.2, 0.75, 3.0),
]
DEFAULT_SETS = [ROOT.parent / "shared" / "eval" / "debian_faq", ROOT / "evalsets" / "python_faq",
                ROOT / "evalsets" / "django_sqlalchemy_faq"]


def main(argv: list[str]) -> None:
    sets = [Path(a) for a in argv] or [s for s in DEFAULT_SETS if (s / "corpus.jsonl").exists()]
    settings = Settings()
    embedder = Embedder(settings.model, settings.embed_batch_size, backend=settings.embed_backend,
                        cache_dir=settings.cache_path())
    encoded: dict[str, tuple[np.ndarray, Windows]] = {}
    encode_passages = embedder.encode_passages

    def cached_encode_passages(texts):
        missing = [t for t in texts if t not in encoded]
        if missing:
            vectors, windows = encode_passages(missing)
            encoded.update((t, (vectors[i], windows.take(slice(i, i + 1)))) for i, t in enumerate(missing))
        if not texts:
            return encode_passages(texts)
        return np.stack([encoded[t][0] for t in texts]), Windows.join([encoded[t][1] for t in texts], embedder.dimension)

    embedder.encode_passages = cached_encode_passages  # type: ignore[method-assign]
    for k1, b, heading_weight in CONFIGS:
        lexical.K1, lexical.B, lexical.HEADING_WEIGHT = k1, b, heading_weight  # read by each new snapshot
        row = []
        for set_dir in sets:
            result = evaluate_passages(set_dir, settings, embedder, {"hybrid": {}, "lexical": {"mode": "lexical"}})
            row.append(f"{set_dir.name} {result['hybrid']['nDCG@10']:.3f} / {result['lexical']['nDCG@10']:.3f}")
        print(f"k1 {k1} b {b} heading {heading_weight}: " + " | ".join(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
