"""Shared fixtures: a tiny hashing embedder for fast unit tests, the real bundled model loaded once."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class HashingEmbedder:
    """Bag of hashed words: texts sharing words get similar vectors. Counts its calls."""

    model_name = "hashing-test"
    max_tokens = 256
    dimension = 256

    def __init__(self) -> None:
        self.encoded = 0

    def encode(self, texts):
        self.encoded += len(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


@pytest.fixture
def fake_embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture(scope="session")
def real_embedder():
    from km_search.embedding import Embedder

    embedder = Embedder()
    embedder.encode(["load the model once per test session"])
    return embedder


@pytest.fixture
def settings(tmp_path):
    from km_search.settings import Settings

    return Settings(index_dir=tmp_path / "indexes")
