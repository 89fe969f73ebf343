"""Ingest and serving on a real local Ray cluster (2 CPUs, started once for this module): a Ray
ingest equals a local one, stays incremental and loses no file when a worker is killed; `km serve
--ray` answers as `km serve` over the same sharded snapshot and survives a shard replica killed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from helpers import EXAMPLES, start_server

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray")
QUERIES = [json.loads(line)["text"] for line in (EXAMPLES.parent / "eval" / "queries.jsonl").read_text().splitlines() if line]


@pytest.fixture(scope="module")
def cluster():
    context = ray.init(num_cpus=2, object_store_memory=256 * 1024 * 1024, include_dashboard=False,
                       log_to_driver=False)
    yield context.address_info["gcs_address"]
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    docs = tmp_path_factory.mktemp("ray") / "docs"
    shutil.copytree(EXAMPLES, docs)
    return docs


def _settings(tmp: Path, **update):
    from km_search.settings import Settings

    return Settings(index_dir=tmp / "indexes", **update)


def _processes(title: str) -> list[int]:
    """Pids of processes whose command line (Ray sets it to the actor's name) contains `title`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and title in (proc / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _rows(index_path: Path) -> tuple[list, list]:
    import sqlite3

    from km_search.index.layout import DATABASE
    from km_search.index.locks import current_snapshot_path

    db = sqlite3.connect(current_snapshot_path(index_path) / DATABASE)
    documents = db.execute("SELECT id, path, title, chunk_count FROM documents ORDER BY id").fetchall()
    chunks = db.execute("SELECT id, doc_id, text, source FROM chunks ORDER BY id").fetchall()
    return documents, chunks


def _top_sources(settings, index: str) -> list[list[str]]:
    from km_search.service import SearchService

    service = SearchService(settings, index).load()
    return [[h.source for h in service.search(q, k=10).hits] for q in QUERIES]


def test_a_ray_ingest_equals_the_local_one(cluster, corpus, tmp_path):
    from ingest.pipeline import ingest

    settings = _settings(tmp_path)
    local = ingest([corpus], settings, index="local", progress=False)
    on_ray = ingest([corpus], settings, index="ray", progress=False, ray_address="auto")
    assert (local.engine, on_ray.engine, on_ray.ray_workers) == ("local", "ray", 2)
    assert on_ray.documents == local.documents > 30 and on_ray.chunks == local.chunks and not on_ray.failed
    assert _rows(settings.index_path("ray")) == _rows(settings.index_path("local"))
    ray_top, local_top = _top_sources(settings, "ray"), _top_sources(settings, "local")
    same = sum(a == b for a, b in zip(ray_top, local_top))
    assert same >= 0.9 * len(QUERIES), f"{same} of {len(QUERIES)} questions got the same top 10"

    # Incremental: one changed file is the only one parsed and embedded again.
    changed = next(corpus.rglob("*.md"))
    changed.write_text(changed.read_text() + "\n\nAn added paragraph about quarterly budget reviews.\n")
    again = ingest([corpus], settings, index="ray", progress=False, ray_address="auto")
    assert (again.updated, again.added, again.unchanged) == (1, 0, local.documents - 1)
    rel = changed.relative_to(corpus).as_posix()
    assert again.embedded_chunks == next(f.chunks for f in again.files if f.path == rel) > 0


def test_a_worker_killed_mid_ingest_loses_no_file(cluster, corpus, tmp_path):
    from ingest.pipeline import ingest

    settings = _settings(tmp_path)
    result: dict = {}
    run = threading.Thread(target=lambda: result.update(report=ingest(
        [corpus], settings, index="killed", progress=False, ray_address="auto", batch_files=2)))
    run.start()
    deadline, killed = time.time() + 120, None
    while killed is None and run.is_alive() and time.time() < deadline:
        # Ray titles an actor's process after the method it is running: a batch is in flight there
        pids = _processes("ray::IngestWorker.process")
        if pids:
            try:
                os.kill(pids[-1], signal.SIGKILL)
                killed = pids[-1]
            except ProcessLookupError:  # finished meanwhile: look again
                continue
        time.sleep(0.02)
    run.join(300)
    assert killed is not None, "no Ray ingest worker was seen with a batch in flight"
    report = result["report"]
    expected = sum(1 for p in corpus.rglob("*") if p.is_file() and p.suffix in {".md", ".html", ".pdf", ".docx", ".txt"})
    assert not report.failed and report.documents >= expected - 1 > 30, report.failed


def _search(base: str, query: str) -> list[tuple[str, float]]:
    url = f"{base}/search?" + urllib.parse.urlencode({"q": query, "k": 10})
    hits = json.load(urllib.request.urlopen(url, timeout=60))["hits"]
    return [(h["source"], round(h["score"], 5)) for h in hits]


def test_km_serve_on_ray_answers_as_km_serve_and_survives_a_replica_killed(cluster, corpus, tmp_path):
    from km_search.index.snapshot import Snapshot

    env = {**os.environ, "KM_INDEX_DIR": str(tmp_path / "indexes"), "KM_SHARD_ROWS": "60", "HF_HUB_OFFLINE": "1",
           "KM_RELOAD_INTERVAL_S": "0"}
    subprocess.run([*__import__("helpers").KM, "ingest", str(corpus), "--index", "sharded"], env=env, check=True,
                   capture_output=True, timeout=600)
    shards = len(Snapshot.open(tmp_path / "indexes" / "sharded").manifest["shards"])
    assert shards >= 3
    local, local_proc = start_server("sharded", env, tmp_path / "local.log")
    remote, remote_proc = start_server("sharded", {**env, "KM_RAY_ADDRESS": cluster, "KM_RELOAD_INTERVAL_S": "0.5"},
                                       tmp_path / "ray.log")
    try:
        for query in QUERIES:
            assert _search(remote, query) == _search(local, query), query
        replicas = _processes("ServeReplica:km-sharded-")
        assert len(replicas) == shards, replicas
        os.kill(replicas[0], signal.SIGKILL)
        started = time.time()
        assert _search(remote, QUERIES[0]) == _search(local, QUERIES[0])  # retried until a replica answers
        assert time.time() - started < 60
        deadline = time.time() + 60
        while len(_processes("ServeReplica:km-sharded-")) < shards and time.time() < deadline:
            time.sleep(0.5)
        assert len(_processes("ServeReplica:km-sharded-")) == shards, "the killed replica was not replaced"

        # A new snapshot rolls in: its shards deploy while the old ones answer, then the old ones go.
        before = json.load(urllib.request.urlopen(remote + "/healthz", timeout=30))["snapshot"]
        (corpus / "new-note.md").write_text("# Parking\n\nThe bicycle parking moved to the north gate in 2024.\n")
        subprocess.run([*__import__("helpers").KM, "ingest", str(corpus), "--index", "sharded"], env=env, check=True,
                       capture_output=True, timeout=600)
        deadline, answered = time.time() + 120, 0
        while json.load(urllib.request.urlopen(remote + "/healthz", timeout=30))["snapshot"] == before:
            assert time.time() < deadline, "the new snapshot was not swapped in"
            assert _search(remote, QUERIES[answered % len(QUERIES)])  # every request answered meanwhile
            answered += 1
        assert _search(remote, "where is the bicycle parking")[0][0].startswith("new-note.md")
        now = len(Snapshot.open(tmp_path / "indexes" / "sharded").manifest["shards"])
        deadline = time.time() + 60  # the old snapshot's deployments are deleted after the swap
        while len(_processes("ServeReplica:km-sharded-")) != now and time.time() < deadline:
            time.sleep(0.5)
        assert len(_processes("ServeReplica:km-sharded-")) == now
    finally:
        for proc in (local_proc, remote_proc):
            proc.terminate()
            proc.wait(60)
    deadline = time.time() + 30  # a stopped front deletes its shard deployments
    while _processes("ServeReplica:km-sharded-") and time.time() < deadline:
        time.sleep(0.5)
    assert not _processes("ServeReplica:km-sharded-")


def test_a_file_that_keeps_killing_its_worker_fails_alone(cluster, corpus, tmp_path):
    """A batch whose worker dies on every try is split, and only the file doing it fails, with why."""
    from ingest.cluster import RayIngest
    from ingest.discovery import scan
    from ingest.pipeline import source_info

    files = scan([corpus]).files[:6]
    poison = files[2].rel

    @ray.remote(max_retries=0, num_cpus=0)  # the pool holds every CPU
    def crash():
        os._exit(1)

    class Poisoned(RayIngest):
        def _submit(self, batch):
            if any(file.rel == poison for file, _ in batch):
                return crash.remote()
            return super()._submit(batch)

    jobs = [(f, source_info(f)) for f in files]
    with Poisoned(_settings(tmp_path), "poisoned", "auto") as pool:
        done = list(pool.process([jobs[:3], jobs[3:]]))
    parsed = [p.doc.path for _, ok, _ in done for p in ok]
    failures = [f for _, _, bad in done for f in bad]
    assert sorted(parsed) == sorted(f.rel for f in files if f.rel != poison)
    assert [(f.path, f.status) for f in failures] == [(poison, "failed")]
    assert "died" in failures[0].error
