"""Shared fixtures: a tiny hashing embedder for fast unit tests, the real bundled model loaded once,
and for the end-to-end and browser tests the example corpus ingested with `km ingest` and served by
`km serve` (once per session), plus two intranet web servers that are other browser origins."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from types import SimpleNamespace

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The shared fixtures model a single-user setup; access control has its own tests (test_auth*.py),
# which set KM_AUTH explicitly for the apps and servers they start.
os.environ["KM_AUTH"] = "none"

from helpers import EXAMPLES, KM, HashingEmbedder, StaticSite, start_server  # noqa: E402


@pytest.fixture
def fake_embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture(scope="session")
def real_embedder():
    from km_search.embedding.embedder import Embedder

    embedder = Embedder()
    embedder.encode(["load the model once per test session"])
    return embedder


@pytest.fixture(scope="session")
def export_cache():
    """The cache of exported graphs that every embedder of the session shares, as on a user's machine:
    an export is keyed by model and backend (calibrated on shipped text, not the corpus), so one
    export serves every test; tests/embedding/test_export_cache.py covers exporting afresh."""
    from km_search.settings import Settings

    return Settings().cache_path()


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


@pytest.fixture(scope="session")
def intranet(tmp_path_factory):
    """Two intranet web servers serving one folder: `allowed` is in the API's KM_CORS_ORIGINS, `blocked` is not."""
    folder = tmp_path_factory.mktemp("intranet")
    allowed, blocked = StaticSite(folder), StaticSite(folder)
    yield SimpleNamespace(folder=folder, allowed=allowed.origin, blocked=blocked.origin)
    allowed.close()
    blocked.close()


@pytest.fixture(scope="session")
def server(workspace, ingest_report, intranet):
    """`km serve` over the example index, as its own process; browsers on `intranet.allowed` may call it."""
    root, docs, env = workspace
    base, proc = start_server("example", {**env, "KM_CORS_ORIGINS": intranet.allowed}, root / "serve.log")
    yield base
    proc.terminate()
    proc.wait(timeout=30)
