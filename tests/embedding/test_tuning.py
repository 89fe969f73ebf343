"""`km tune`: pairs mined from an index, and a real (short) fine-tune whose model then indexes and
answers through the normal pipeline."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from helpers import EXAMPLES, KM
from km_search.embedding.tuning import mine_pairs

ROWS = [
    ("Billing runbook", ("Billing runbook", "Rollback"),
     "Roll back a billing deploy with the release tool. Pick the previous tag from the list shown. "
     "Then watch the error rate on the billing dashboard for ten minutes."),
    ("Billing runbook", ("Billing runbook", "Tiny"), "Too short to teach anything."),
    ("Vacation policy", (), "Everyone gets twenty-five days of paid vacation a year. Unused days carry over "
     "until the end of March of the next year, after which they lapse."),
]


def test_pairs_are_headings_and_sentences_never_their_own_passage():
    pairs = mine_pairs(ROWS, seed=1)
    headings = {p.query: p.passage for p in pairs if p.kind == "heading"}
    assert headings == {"Billing runbook > Rollback": ROWS[0][2], "Vacation policy": ROWS[2][2]}
    cloze = [p for p in pairs if p.kind == "cloze"]
    assert len(cloze) == 2
    for pair in cloze:
        assert pair.query not in pair.passage and len(pair.query.split()) >= 6
    assert not any("Too short" in p.passage for p in pairs)
    assert len(mine_pairs(ROWS, max_pairs=1)) == 1


@pytest.mark.slow
def test_km_tune_writes_a_model_that_ingests_and_answers(workspace, ingest_report, tmp_path):
    root, docs, env = workspace
    out = tmp_path / "tuned"
    run = subprocess.run([*KM, "tune", str(out), "--index", "example", "--max-pairs", "24", "--batch-size", "8",
                          "--json"], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    info = json.loads(run.stdout)
    assert info["steps"] == 3 and info["pairs"] == 24 and (out / "km_tune.json").exists()

    from km_search.embedding.embedder import Embedder

    text = ["How do we roll back a billing deploy?"]
    tuned, base = Embedder(str(out)).encode(text)[0], Embedder().encode(text)[0]
    assert not np.allclose(tuned, base, atol=1e-4)  # the weights moved
    assert float(tuned @ base) > 0.9  # ...a little: a short run adapts, it does not wreck the model

    # torch: the tuned model works as any local model; an int8 export of it would only add minutes
    tuned_env = {**env, "KM_MODEL": str(out), "KM_EMBED_BACKEND": "torch", "KM_INDEX_DIR": str(tmp_path / "indexes"),
                 "KM_SENTENCE_VECTORS": "first-pass"}  # searched, never asked
    ingest = subprocess.run([*KM, "ingest", str(EXAMPLES), "--index", "tuned", "--json"], capture_output=True,
                            text=True, env=tuned_env, timeout=600)
    assert ingest.returncode == 0, ingest.stderr[-2000:]
    assert json.loads(ingest.stdout)["documents"] == ingest_report["documents"]  # the broken files failed there
    # a question the corpus answers (no document there is about rolling back a billing deploy)
    found = subprocess.run([*KM, "search", "why did billing move to PostgreSQL", "--index", "tuned", "--json"],
                           capture_output=True, text=True, env=tuned_env, timeout=300)
    assert found.returncode == 0, found.stderr[-2000:]
    assert any("billing" in h["doc_path"] for h in json.loads(found.stdout)["hits"][:3])


def test_tune_refuses_an_index_too_small_to_train_on(tmp_path, fake_embedder):
    env_dir = tmp_path / "indexes"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# One\n\nJust one short page with a few words in it for the test.\n")
    from ingest.pipeline import ingest
    from km_search.settings import Settings

    fake_embedder.model_name = "all-MiniLM-L6-v2"
    ingest([docs], Settings(index_dir=env_dir, parse_workers=0), index="small", embedder=fake_embedder, progress=False)
    run = subprocess.run([*KM, "tune", str(tmp_path / "out"), "--index", "small"], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "KM_INDEX_DIR": str(env_dir), "HF_HUB_OFFLINE": "1"}, timeout=120)
    assert run.returncode != 0 and "fewer than one batch" in run.stderr
