"""Quality regression: `km eval` on the example corpus' labelled set must stay above recorded floors.

Floors sit a little under what the default configuration measured (docs/quality.md); a change that
drops below them made search worse and should be looked at, not the floor lowered.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the real model, a server or worker processes: make test-fast skips it

ROOT = Path(__file__).resolve().parents[2]
FLOORS = {"hybrid": {"Hit@5": 0.85, "Hit@10": 0.92, "MRR@10": 0.65}, "lexical": {"Hit@10": 0.85}, "dense": {"Hit@10": 0.85}}


def test_km_eval_on_the_example_set_stays_above_its_floors(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "km_search.cli", "eval", str(ROOT / "examples" / "eval"),
         "--docs", str(ROOT / "examples" / "corpus"), "--modes", "hybrid,dense,lexical", "--json"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "KM_INDEX_DIR": str(tmp_path)},
    )
    assert run.returncode == 0, run.stderr
    results = {r["mode"]: r for r in json.loads(run.stdout)["results"]}
    assert results["hybrid"]["queries"] == 40
    for mode, floors in FLOORS.items():
        for metric, floor in floors.items():
            assert results[mode][metric] >= floor, f"{mode} {metric} fell to {results[mode][metric]} (floor {floor})"
    # fusion has to earn its keep over either retriever alone
    assert results["hybrid"]["MRR@10"] >= max(results["dense"]["MRR@10"], results["lexical"]["MRR@10"])
