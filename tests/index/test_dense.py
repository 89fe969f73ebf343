from types import SimpleNamespace

import numpy as np
import pytest

from km_search.index import dense as ann


def unit(rows: int, seed: int = 0, d: int = 128) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((20, d)).astype(np.float32)
    x = centers[rng.integers(0, 20, rows)] + 0.5 * rng.standard_normal((rows, d)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    vectors = unit(4000)
    ids = np.arange(4000, dtype=np.int64) * 3 + 7  # chunk ids are sparse, not row numbers
    queries = unit(20, seed=1)
    return vectors, ids, queries


def exact(vectors, ids, q, n, allowed=None):
    scores = vectors @ q
    keep = np.ones(len(ids), bool) if allowed is None else np.isin(ids, allowed)
    order = [i for i in np.argsort(-scores) if keep[i]][:n]
    return [int(ids[i]) for i in order]


def test_options_pick_flat_while_small_and_ivf_beyond():
    settings = SimpleNamespace(ann_exact_rows=50_000, ann_nprobe=0)
    assert ann.options(settings, 50_000) == {"kind": "flat"}
    big = ann.options(settings, 1_000_000)
    assert big["kind"] == "ivf_pq4" and big["nlist"] == 4096 and 1 <= big["nprobe"] <= big["nlist"]
    assert ann.options(SimpleNamespace(ann_exact_rows=0, ann_nprobe=7), 100_000)["nprobe"] == 7


@pytest.mark.parametrize("kind", ["flat", "ivf_sq8", "ivf_pq4"])
def test_search_returns_exact_cosines_and_the_true_neighbours(data, kind, tmp_path):
    vectors, ids, queries = data
    if kind == "ivf_pq4":  # 4-bit codes rank well what is near the query, as questions are to their passages
        rng = np.random.default_rng(5)
        near = vectors[rng.integers(0, len(vectors), 20)] + 0.3 * rng.standard_normal((20, vectors.shape[1]))
        queries = (near / np.linalg.norm(near, axis=1, keepdims=True)).astype(np.float32)
    opts = {"kind": kind, "nlist": 32, "nprobe": 32}
    built = ann.build_index(vectors, ids, opts)
    path = tmp_path / "shard-0000.faiss"
    ann.write_index(built, path)
    np.save(ann.sibling(path, "vectors"), built.vectors)
    np.save(ann.sibling(path, "ids"), built.ids)
    index = ann.read_index(path)
    assert index.kind == kind and index.ntotal == 4000
    for q in queries:
        found = ann.search(index, q, 10)
        assert [i for i, _ in found] == exact(vectors, ids, q, 10)  # all lists probed: exact after rescoring
        by_id = dict(zip(ids.tolist(), vectors @ q))
        assert all(abs(score - by_id[i]) < 1e-5 for i, score in found)


@pytest.mark.parametrize("kind", ["ivf_sq8", "ivf_pq4"])
def test_allowed_ids_are_honoured_small_and_large(data, kind):
    vectors, ids, queries = data
    index = ann.build_index(vectors, ids, {"kind": kind, "nlist": 32, "nprobe": 32})
    rng = np.random.default_rng(3)
    few = rng.choice(ids, 5, replace=False)
    found = ann.search(index, queries[0], 10, allowed=few)
    assert sorted(i for i, _ in found) == sorted(few.tolist())  # fewer allowed than asked: all of them
    many = rng.choice(ids, 3000, replace=False)
    old = ann.EXACT_ALLOWED
    ann.EXACT_ALLOWED = 100  # force the index path with a selector
    try:
        found = ann.search(index, queries[0], 10, allowed=many)
    finally:
        ann.EXACT_ALLOWED = old
    assert set(i for i, _ in found) <= set(many.tolist())
    assert [i for i, _ in found] == exact(vectors, ids, queries[0], 10, many)
    assert ann.search(index, queries[0], 10, allowed=np.array([], dtype=np.int64)) == []
    assert ann.search(index, queries[0], 10, allowed=np.array([1, 2], dtype=np.int64)) == []  # not in the shard


def test_flat_index_without_raw_vectors_still_searches_and_filters(data, tmp_path):
    vectors, ids, queries = data
    path = tmp_path / "shard.faiss"
    ann.write_index(ann.build_index(vectors, ids), path)
    index = ann.read_index(path)  # no .vectors.npy beside it
    assert [i for i, _ in ann.search(index, queries[1], 5)] == exact(vectors, ids, queries[1], 5)
    allowed = ids[::7]
    assert [i for i, _ in ann.search(index, queries[1], 5, allowed)] == exact(vectors, ids, queries[1], 5, allowed)


def test_recall_at_10_of_the_default_ivf_is_at_least_098(data):
    vectors, ids, queries = data
    opts = ann.options(SimpleNamespace(ann_exact_rows=0, ann_nprobe=0), len(vectors))
    index = ann.build_index(vectors, ids, {**opts, "nlist": 64})
    recall = np.mean([len({i for i, _ in ann.search(index, q, 10)} & set(exact(vectors, ids, q, 10))) / 10 for q in queries])
    assert recall >= 0.98
