"""The performance bench's pure helpers (bench/bench.py): no timing, no model, no server."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("km_bench", ROOT / "bench" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["km_bench"] = module
    spec.loader.exec_module(module)
    return module


def test_percentile_takes_the_value_at_the_rank(bench):
    values = [float(v) for v in range(1, 101)]
    assert bench.pct(values, 50) == 51.0
    assert bench.pct(values, 99) == 100.0
    assert bench.pct(list(reversed(values)), 0) == 1.0
    assert bench.pct([7.0], 95) == 7.0


def test_sizes_parse(bench, monkeypatch):
    assert bench.parse_size("10k") == 10_000
    assert bench.parse_size("1m") == 1_000_000
    assert bench.parse_size("2500") == 2500
    monkeypatch.setenv("BENCH_SIZES", "10k, 1M")
    assert bench.sizes() == [10_000, 1_000_000]
    assert bench.size_name(1_000_000) == "1M" and bench.size_name("100000") == "100k"


def test_shaped_synthetic_vectors_look_like_the_sample_they_are_shaped_on(bench):
    rng = np.random.default_rng(0)
    sample = rng.standard_normal((4000, 16)) * np.geomspace(1.0, 0.02, 16) + 0.4  # a mean, few strong directions
    sample = (sample / np.linalg.norm(sample, axis=1, keepdims=True)).astype(np.float32)
    shape = bench.shape_of(sample)
    shaped, isotropic = bench.synthetic_vectors(4000, shape), bench.synthetic_vectors(4000, d=16)
    assert shaped.shape == (4000, 16) and np.allclose(np.linalg.norm(shaped, axis=1), 1.0, atol=1e-5)

    def pair_cosine(v):
        a, b = rng.integers(0, len(v), (2, 2000))
        return float(np.median((v[a] * v[b]).sum(axis=1)))

    assert abs(pair_cosine(shaped) - pair_cosine(sample)) < 0.15 < abs(pair_cosine(isotropic) - pair_cosine(sample))
    queries = bench.synthetic_queries(shaped, 50, shape)
    assert np.median((queries @ shaped.T).max(axis=1)) > 0.5  # every question has a close passage


def test_exact_top_and_recall(bench):
    vectors = bench.synthetic_vectors(3000, d=16)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    queries = bench.synthetic_queries(vectors, 5)
    truth = bench.exact_top(vectors, queries)
    brute = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    assert (truth == brute).all()
    assert bench.recall_at_10(truth.tolist(), truth) == 1.0
    assert bench.recall_at_10([row[:5].tolist() for row in truth], truth) == 0.5


RESULTS = {
    "taken": "2026-01-01 10:00", "quick": False,
    "machine": {"cpu": "Test CPU", "cpus": 2, "memory_gib": 24, "load_start": [0.1, 0.2, 0.3], "load_end": [0.4, 0.5, 0.6]},
    "embed": {"openvino-int8": {"passages_per_s": 120.0, "query_ms": 2.5, "load_or_export_s": 1.0, "loadavg": 0.5}},
    "ingest": {"corpus": {
        "files_limit": None, "loadavg": 0.4, "speedup": 4.0, "speedup_first_run": 3.0, "modified_files": 5,
        "km_first": {"files": 500, "passages": 8000, "took_s": 100.0, "passages_per_s": 80.0, "pages_per_s": 5.0, "loadavg": 0.3},
        "km": {"files": 500, "passages": 8000, "took_s": 75.0, "passages_per_s": 106.7, "pages_per_s": 6.67, "loadavg": 0.3},
        "km_incremental": {"updated": 5, "embedded": 90, "took_s": 3.0, "share_of_full": 0.04, "loadavg": 0.3},
        "naive": {"files": 500, "passages": 7900, "took_s": 300.0, "passages_per_s": 26.3, "pages_per_s": 1.67},
        "real_recall": {"passages": 8000, "queries": 140, "opts": {"kind": "ivf_sq8", "nlist": 256, "nprobe": 16}, "recall@10": 0.99},
    }},
    "http": {"1000000": {
        "passages": 1_000_000, "startup_to_first_answer_s": 1.5,
        "build": {"build_s": 80.0, "database_s": 40.0, "dense_index_s": 40.0, "disk_bytes_per_passage": 3000.0},
        "dense": {"shards": [{"rows": 500_000, "kind": "ivf_sq8", "nlist": 2048, "nprobe": 64}], "loadavg": 0.2,
                  "sweep": [{"nprobe": [32], "recall@10": 0.97, "dense_ms_100": 1.0, "default": False},
                            {"nprobe": [64], "recall@10": 0.99, "dense_ms_100": 2.0, "default": True}]},
        "search": {"p50_ms": 20.0, "p95_ms": 30.0, "p99_ms": 35.0, "repeated_query_p50_ms": 15.0, "loadavg": 0.3,
                   "wrk_4_clients": {"requests_per_s": 150.0, "p50_ms": 25.0, "p90_ms": 40.0, "p99_ms": 60.0, "loadavg": 1.9}},
        "ask": {"p50_ms": 30.0, "p95_ms": 40.0, "p99_ms": 50.0, "repeated_query_p50_ms": 25.0, "loadavg": 0.3,
                "wrk_4_clients": None},
        "memory": {"VmRSS": 2**30, "RssAnon": 2**29, "rss_bytes_per_passage": 1073.7, "anon_bytes_per_passage": 536.9},
    }},
}


def test_tables_render_every_part(bench):
    text = bench.tables(RESULTS)
    assert "| `openvino-int8` | 120.0 | 2.5 ms | 0.5 |" in text
    assert "4.0x" in text and "3.0x" in text and "4.0% of the full run" in text
    assert "| corpus | 8000 | 140 | `ivf_sq8` nlist 256 nprobe 16 | 0.99 |" in text
    assert "| 1M | /search | 20.0 / 30.0 / 35.0 ms | 15.0 ms | 150.0 | 25.0 / 40.0 / 60.0 ms |" in text
    assert "**64: 0.99 (2.0 ms)**" in text and "1.5 s" in text and "1024 MiB" in text
    assert "Test CPU" in text and "[0.4, 0.5, 0.6]" in text
    for line in text.splitlines():  # every table row has as many cells as its header
        if line.startswith("|"):
            assert line.count("|") >= 5


def test_write_doc_replaces_only_the_marked_block(bench, tmp_path):
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\nintro\n\n<!-- bench:begin -->\nold\n<!-- bench:end -->\n\noutro\n")
    bench.write_doc(RESULTS, doc)
    bench.write_doc(RESULTS, doc)
    text = doc.read_text()
    assert text.startswith("# Performance\n\nintro\n") and text.endswith("\n\noutro\n")
    assert "old" not in text and text.count("<!-- bench:begin -->") == 1
    assert bench.tables(RESULTS) in text


def test_partial_results_render(bench):
    assert "openvino-int8" in bench.tables({"embed": RESULTS["embed"]})
    assert bench.tables({}).startswith("Last run None")


def test_the_first_ingest_and_real_index_tables(bench):
    """Issue #18's rows: the first ingest (warm and cold export cache) against the naive script, and
    /search on the real index at 1 and 4 clients per worker count."""
    run = {"files": 40, "passages": 600, "took_s": 10.0, "loadavg": 1.0}
    results = {
        "first_ingest": {"pages": 40, "naive": {"took_s": 40.0, "passages": 500}, "km_warm_cache": run,
                         "km_cold_cache": {**run, "took_s": 50.0}, "speedup_warm_cache": 4.0, "speedup_cold_cache": 0.8},
        "http_real": {"passages": 7969, "workers_2": {
            "one_client": {"p50_ms": 15.0, "p99_ms": 25.0, "loadavg": 2.0},
            "wrk_1_client": {"p50_ms": 16.0, "p99_ms": 26.0, "requests_per_s": 50.0},
            "wrk_4_clients": {"p50_ms": 29.0, "p90_ms": 49.0, "p99_ms": 75.0, "requests_per_s": 128.0, "loadavg": 3.0}}},
    }
    text = bench.tables(results)
    assert "First `km ingest` of 40 HTML pages" in text and "| 4.0x |" in text and "| 0.8x |" in text
    assert "7969 passages" in text and "| 2 | 15.0 / 25.0 ms |" in text and "29.0 / 49.0 / 75.0 ms, 128.0" in text
    assert set(bench.PARTS) >= {"first_ingest", "http_real"}


def test_the_ask_to_search_ratio_on_the_real_index(bench):
    """Issue #17's row: /ask p50 over /search p50, both asked in turn in one run."""
    row = {"search": {"p50_ms": 10.0, "p95_ms": 20.0}, "ask": {"p50_ms": 25.0, "p95_ms": 60.0},
           "ask_to_search_p50": 2.5, "loadavg": 1.5, "taken": "2026-12-02 17:06"}
    text = bench.tables({"http_real": {"passages": 7969, "workers_1": {
        "one_client": {"p50_ms": 10.0, "p99_ms": 25.0, "loadavg": 1.0}, "ask_vs_search": row}}})
    assert "/ask vs /search on the same real index" in text
    assert "| 1 | 10.0 / 20.0 ms | 25.0 / 60.0 ms | 2.5x | 1.5 | 2026-12-02 17:06 |" in text


def test_the_ray_tables(bench):
    """Issue #20's rows: local vs Ray ingest (1 and 2 workers), and km serve vs km serve --ray."""
    run = {"passages": 1000, "took_s": 20.0, "loadavg": 1.0, "passages_per_s": 50.0}
    serve = {"startup_to_first_answer_s": 3.0, "one_client": {"p50_ms": 12.0, "p99_ms": 20.0, "loadavg": 1.0},
             "wrk_1_client": {"p50_ms": 13.0, "p99_ms": 21.0, "requests_per_s": 70.0},
             "wrk_4_clients": {"p50_ms": 30.0, "p99_ms": 60.0, "requests_per_s": 120.0, "loadavg": 2.0}}
    results = {"ray": {"pages": 120, "cpus": 2, "shards": 4, "shard_rows": 250, "ingest_local": run,
                       "ingest_ray_1_workers": {**run, "took_s": 25.0, "ratio_to_local": 0.8},
                       "ingest_ray_2_workers": {**run, "took_s": 40.0, "ratio_to_local": 0.5},
                       "serve_local": serve, "serve_ray": {**serve, "startup_to_first_answer_s": 9.5}}}
    text = bench.tables(results)
    assert "120 HTML pages" in text and "| 25.0 s | 50.0 | 0.8x |" in text and "| 0.5x |" in text
    assert "4 shards of 250 passages" in text and "| `km serve --ray auto` | 9.5 s | 12.0 / 20.0 ms |" in text
    assert "ray" in bench.PARTS
