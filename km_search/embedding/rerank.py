"""Optional second stage: a sentence-transformers CrossEncoder from a local folder (KM_RERANKER).

Off by default because no reranker model ships offline; any local CrossEncoder works.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

from km_search.errors import KmError


class Reranker:
    def __init__(self, model_path: str, batch_size: int = 16):
        path = Path(model_path).expanduser()
        if not (path / "config.json").exists():
            raise KmError(f"KM_RERANKER={model_path!r} is not a local CrossEncoder folder (no config.json there)")
        self.model_path = str(path)
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                from sentence_transformers import CrossEncoder

                self._model = CrossEncoder(self.model_path, device="cpu", local_files_only=True)
            return self._model

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        scores = self.model.predict([(query, t) for t in texts], batch_size=self.batch_size, show_progress_bar=False)
        return [float(s) for s in scores]
