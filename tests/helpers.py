"""What tests share beyond fixtures: paths, the `km` command, a hashing fake embedder, a `km serve`
process and a static web site on 127.0.0.1. Imported as `helpers` (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "corpus"
KM = [sys.executable, "-m", "km_search.cli"]


class HashingEmbedder:
    """Bag of hashed words: texts sharing words get similar vectors. Counts its calls."""

    model_name = "hashing-test"
    backend = "test"
    max_tokens = 256
    dimension = 256

    def __init__(self) -> None:
        self.encoded = 0

    def encode_query(self, text):
        return self.encode([text])[0]

    def match_index(self, model_info) -> None:
        pass

    def encode(self, texts):
        self.encoded += len(texts)
        return self._vectors(texts)

    def encode_passages(self, texts):
        """Vectors, and windows of 8 words each, as the real embedder's windows of tokens."""
        from km_search.index.context import Windows

        runs = [[" ".join(w[i : i + 8]) for i in range(0, len(w), 8)] for w in (t.split() for t in texts)]
        return self.encode(texts), Windows.of([self._vectors(r) for r in runs], self.dimension)

    def encode_for_index(self, texts, spans):
        """encode_passages, and each span's vector as `encode` gives it: stored sentences score as embedded ones."""
        vectors, windows = self.encode_passages(texts)
        sentences = [(np.asarray(s, dtype=np.int32).reshape(-1, 2), self._vectors([t[a:b] for a, b in s]))
                     for t, s in zip(texts, spans)]
        return vectors, windows, sentences

    def _vectors(self, texts):
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class StaticSite:
    """A folder served over HTTP on its own port of 127.0.0.1: a browser origin of its own."""

    def __init__(self, folder: Path):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def start_server(index: str, env: dict, log_path: Path) -> tuple[str, subprocess.Popen]:
    """`km serve --index INDEX` as its own process on a free port, once /healthz says it is ready."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(log_path, "w")
    env = {"KM_WORKERS": "1", **env}  # one process (one model) a test server; tests/http/test_workers.py runs more
    proc = subprocess.Popen([*KM, "serve", "--index", index, "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(base + "/healthz", timeout=2).status == 200:
                return base, proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    pytest.fail("km serve did not become healthy: " + log_path.read_text()[-2000:])
