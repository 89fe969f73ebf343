"""bench/candidates.py: the dumped candidates, ordered as search orders them, score what the bench measures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_dump_reorders_to_what_the_product_measures_with_and_without_the_lift(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    import candidates
    import evaluation.retrieval as er
    from genres import sets
    from km_search.embedding.embedder import Embedder
    from km_search.settings import Settings

    (name, set_dir, docs), = sets(["example_corpus"])
    embedder = Embedder.from_settings(Settings())
    questions = candidates.dump_set(set_dir, docs, tmp_path / "indexes", name, 100, embedder)
    assert len(questions) == 40 and all(q.candidates for q in questions)
    measured = er.evaluate_end_to_end(set_dir, Settings(), embedder, {"default": {}, "no lift": {"sentence_weight": 0.0}},
                                      docs=docs)
    rounded = 5e-5  # the summary rounds to 4 places
    assert candidates.mrr_at_10(questions, candidates.product_order) == pytest.approx(measured["default"]["MRR@10"], abs=rounded)
    assert candidates.mrr_at_10(questions, lambda q: q.candidates) == pytest.approx(measured["no lift"]["MRR@10"], abs=rounded)
    # the lift moves this set's first pages (docs/quality.md: 0.749 -> 0.759), so the two orders differ
    assert measured["default"]["MRR@10"] != measured["no lift"]["MRR@10"]
