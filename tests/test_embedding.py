import shutil

import numpy as np
import pytest

from km_search.embedding import Embedder, ModelNotFound, resolve_model_path


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
