"""Shared fixtures: a tiny hashing embedder for fast unit tests, the real bundled model loaded once,
and for the end-to-end and browser tests the example corpus ingested with `km ingest` and served by
`km serve` (once per session), plus two intranet web servers that are other browser origins."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The shared fixtures model a single-user setup; access control has its own tests (test_auth*.py),
# which set KM_AUTH explicitly for the apps and servers they start.
os.environ["KM_AUTH"] = "none"

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

    def _vectors(self, texts):
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
    from km_search.embedding.embedder import Embedder

    embedder = Embedder()
    embedder.encode(["load the model once per test session"])
    return embedder


@pytest.fixture
def settings(tmp_path):
    from km_search.settings import Settings

    return Settings(index_dir=tmp_path / "indexes")


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    """The example corpus plus files that must fail alone: a corrupt PDF, an empty file, binary 'text'."""
    root = tmp_path_factory.mktemp("e2e")
    docs = root / "docs"
    shutil.copytree(EXAMPLES, docs)
    (docs / "broken").mkdir()
    (docs / "broken" / "corrupt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage" * 3)
    (docs / "broken" / "empty.md").write_text("")
    (docs / "broken" / "binary.txt").write_bytes(bytes(range(256)) * 8)
    env = {**os.environ, "KM_INDEX_DIR": str(root / "indexes"), "HF_HUB_OFFLINE": "1"}
    return root, docs, env


@pytest.fixture(scope="session")
def ingest_report(workspace):
    root, docs, env = workspace
    run = subprocess.run([*KM, "ingest", str(docs), "--index", "example", "--json"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


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


@pytest.fixture(scope="session")
def intranet(tmp_path_factory):
    """Two intranet web servers serving one folder: `allowed` is in the API's KM_CORS_ORIGINS, `blocked` is not."""
    folder = tmp_path_factory.mktemp("intranet")
    allowed, blocked = StaticSite(folder), StaticSite(folder)
    yield SimpleNamespace(folder=folder, allowed=allowed.origin, blocked=blocked.origin)
    allowed.close()
    blocked.close()


def start_server(index: str, env: dict, log_path: Path) -> tuple[str, subprocess.Popen]:
    """`km serve --index INDEX` as its own process on a free port, once /healthz says it is ready."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(log_path, "w")
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


@pytest.fixture(scope="session")
def server(workspace, ingest_report, intranet):
    """`km serve` over the example index, as its own process; browsers on `intranet.allowed` may call it."""
    root, docs, env = workspace
    base, proc = start_server("example", {**env, "KM_CORS_ORIGINS": intranet.allowed}, root / "serve.log")
    yield base
    proc.terminate()
    proc.wait(timeout=30)
