import shutil

import numpy as np
import pytest

from km_search.embedding.embedder import Embedder, ModelNotFound, resolve_model_path

pytestmark = pytest.mark.slow  # the real model, a server or worker processes: make test-fast skips it


def test_bundled_model_gives_normalized_vectors_that_rank_by_meaning(real_embedder):
    vectors = real_embedder.encode(["How do I reset my password?", "Steps to change a forgotten password", "Quarterly revenue grew"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert real_embedder.encode([]).shape == (0, 384)


def test_any_local_model_folder_is_selectable_by_path(tmp_path, real_embedder):
    local = tmp_path / "my-model"
    shutil.copytree(resolve_model_path("all-MiniLM-L6-v2"), local)
    embedder = Embedder(str(local))
    assert np.allclose(embedder.encode(["same text"]), real_embedder.encode(["same text"]), atol=1e-5)


def test_a_missing_model_says_what_to_do(tmp_path):
    with pytest.raises(ModelNotFound, match="neither 'all-MiniLM-L6-v2' nor a local sentence-transformers model folder"):
        resolve_model_path(str(tmp_path / "nowhere"))
    with pytest.raises(ModelNotFound, match="cannot be downloaded"):
        Embedder("sentence-transformers/some-hub-model").encode(["x"])


def test_query_vectors_are_cached(real_embedder):
    first = real_embedder.encode_query("a repeated question about billing")
    assert real_embedder.encode_query("a repeated question about billing") is first
    assert np.allclose(first, real_embedder.encode(["a repeated question about billing"])[0], atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("backend,closeness", [("openvino", 0.9999), ("onnx-int8", 0.97), ("openvino-int8", 0.95)])
def test_exported_backends_agree_with_torch(real_embedder, export_cache, backend, closeness):
    texts = ["How do I reset my password?", "Steps to change a forgotten password", "Quarterly revenue grew",
             "The billing service moved to PostgreSQL because replication lagged behind."] * 5
    leftovers = set(export_cache.rglob(".tmp-*"))  # the shared cache may hold an interrupted run's
    embedder = Embedder(backend=backend, cache_dir=export_cache)
    vectors = embedder.encode(texts)
    reference = real_embedder.encode(texts)
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (vectors * reference).sum(axis=1).min() >= closeness
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert embedder.describe()["backend"] == backend and embedder.max_tokens == real_embedder.max_tokens
    assert set(export_cache.rglob(".tmp-*")) <= leftovers  # exports land whole, by rename


def test_queries_follow_the_backend_the_index_was_built_with(export_cache):
    embedder = Embedder(backend="openvino-int8", cache_dir=export_cache)
    embedder.match_index({"name": "all-MiniLM-L6-v2", "backend": "onnx"})
    assert embedder.backend == "onnx"
    embedder.match_index({"name": "all-MiniLM-L6-v2"})  # built before backends were recorded: unchanged
    assert embedder.backend == "onnx"
    with pytest.raises(ValueError, match="not one of"):
        Embedder(backend="tensorrt")


def test_backend_and_export_folder_come_from_settings(tmp_path):
    from km_search.settings import Settings

    settings = Settings(index_dir=tmp_path, cache_dir=tmp_path / "cache", embed_backend="onnx-int8", embed_threads=1)
    embedder = Embedder.from_settings(settings, "hr")
    assert embedder.backend == "onnx-int8" and embedder.cache_dir == tmp_path / "cache" and embedder.threads == 1
    assert embedder.legacy_dir == tmp_path / "hr" / "models"  # an older index's own export, if it has one


def test_batches_hold_texts_of_like_length():
    from km_search.embedding.embedder import _batches_of_like_length

    lengths = [80, 8, 60, 45, 30, 79, 12, 10]
    order = np.argsort([-n for n in lengths], kind="stable")
    batches = list(_batches_of_like_length(order, lengths, size=2))
    assert [i for b in batches for i in b] == order.tolist()  # every text once, longest first
    assert batches == [[0, 5], [2, 3], [4], [6, 7], [1]]  # at most 2, none under 3/4 of its longest
    assert list(_batches_of_like_length(np.array([0, 1]), [5, 5], size=32)) == [[0, 1]]


def test_batches_are_split_until_every_stream_has_one():
    from km_search.embedding.embedder import _split_for

    lengths = [40, 38, 36, 35, 12]
    assert _split_for([[0, 1, 2, 3], [4]], lengths, 2) == [[0, 1, 2, 3], [4]]  # already one each
    assert _split_for([[0, 1, 2, 3]], lengths, 2) == [[0, 1], [2, 3]]
    assert _split_for([[0, 1, 2, 3], [4]], lengths, 3) == [[0, 1], [2, 3], [4]]  # the costliest halved
    assert _split_for([[4]], lengths, 2) == [[4]]  # one text stays whole


@pytest.mark.slow
def test_a_servers_query_runtime_runs_concurrent_calls_side_by_side(export_cache):
    from concurrent.futures import ThreadPoolExecutor

    from km_search.settings import cpu_cores

    embedder = Embedder(backend="openvino-int8", cache_dir=export_cache, threads=1)  # what km serve uses
    texts = ["Why did we move billing to PostgreSQL?", "lag",
             "The billing service moved to PostgreSQL because replication lagged behind the primary by minutes "
             "during the nightly batch, and invoices were sent twice when a replica was promoted.",
             "Who approves laptop requests?", "Rotate the on-call schedule every Monday at ten."]
    one_by_one = np.stack([embedder.encode([t])[0] for t in texts])
    assert np.allclose(embedder.encode(texts), one_by_one, atol=1e-6)  # batches of like length, run side by side
    with ThreadPoolExecutor(4) as pool:  # concurrent requests: the same vectors
        assert np.allclose(np.stack(list(pool.map(lambda t: embedder.encode([t])[0], texts))), one_by_one, atol=1e-6)
    # a compiled model runs one call per stream at a time: one stream per core, one thread each
    compiled = embedder.runtime.compiled
    assert int(compiled.get_property("NUM_STREAMS")) == cpu_cores()
    assert int(compiled.get_property("INFERENCE_NUM_THREADS")) == cpu_cores()
    assert compiled.get_property("ENABLE_CPU_PINNING") is False  # other processes share the cores


def test_a_server_process_embeds_on_its_share_of_the_cores(tmp_path):
    from km_search.settings import Settings, cpu_cores

    def streams(**overrides):
        return Embedder.from_settings(Settings(index_dir=tmp_path, **overrides), queries=True).streams

    assert streams() == cpu_cores()  # one process: a stream per core
    assert streams(workers=cpu_cores()) == 1  # a process per core (km serve's default): one each
    assert streams(workers=64) == 1
    assert Embedder.from_settings(Settings(index_dir=tmp_path), queries=False).streams is None  # ingest
