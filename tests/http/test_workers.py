"""`km serve --workers N` (issue #18): several processes on one socket, each building the app from the
settings, sharing the query log and following new snapshots on their own."""

import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from helpers import KM
from km_search.cli.serve import default_workers


def test_the_app_factory_builds_the_app_from_the_settings(tmp_path, monkeypatch):
    from fastapi import FastAPI

    from km_search.http.app import create_app
    from km_search.settings import get_settings

    monkeypatch.setenv("KM_INDEX_DIR", str(tmp_path))
    monkeypatch.setenv("KM_INDEX", "hr")
    get_settings.cache_clear()
    try:
        app = create_app()  # what each worker calls ("km_search.http.app:create_app", factory=True)
        assert isinstance(app, FastAPI) and app.state.service.index == "hr"
    finally:
        get_settings.cache_clear()


def test_the_default_is_one_process_per_core_at_most_four(monkeypatch):
    import km_search.cli.serve as serve

    for cores, expected in ((1, 1), (2, 2), (3, 3), (16, 4)):
        monkeypatch.setattr(serve, "cpu_cores", lambda n=cores: n)
        assert serve.default_workers() == expected


PROBE = """
import sys, threading
from km_search.settings import serving_environment
if sys.argv[1] == "serving":
    serving_environment()
import faiss
seen = []
worker = threading.Thread(target=lambda: seen.append(faiss.omp_get_max_threads()))  # a request's thread
worker.start(); worker.join()
print(seen[0])
"""


def test_a_serving_process_searches_on_one_openmp_thread(tmp_path):
    """FAISS splits a search by query; with one query, a second OpenMP thread only spins after it."""
    from km_search.settings import cpu_cores

    if cpu_cores() < 2:
        pytest.skip("needs two cores to tell one thread from the default")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}

    def threads(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True, check=True)
        return int(done.stdout)

    assert threads("serving") == 1
    assert threads("ingest") == cpu_cores()  # ingest keeps every core for FAISS


def test_a_single_process_knows_it_is_alone_whatever_km_workers_says(tmp_path, monkeypatch):
    """`--workers 1` with KM_WORKERS=4 in the environment: the one process embeds on every core."""
    import uvicorn

    import km_search.cli.serve as serve
    import km_search.http.app as http_app
    from km_search.settings import Settings

    seen = {}
    monkeypatch.setattr(serve, "_settings", lambda: Settings(index_dir=tmp_path, workers=4, auth="none"))
    monkeypatch.setattr(http_app, "create_app", lambda settings, service: seen.setdefault("workers", settings.workers))
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: None)
    monkeypatch.setenv("KM_WORKERS", "4")
    serve.serve(index="hr", host=None, port=None, workers=1, ray=None)
    assert seen["workers"] == 1 and os.environ["KM_WORKERS"] == "1"


def test_the_shared_socket_is_tcp_so_connections_get_nodelay():
    from km_search.cli.serve import _listening_socket

    sock = _listening_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP and sock.get_inheritable()
        sock.listen()
        client = socket.create_connection(sock.getsockname())
        accepted, _ = sock.accept()
        assert accepted.proto == socket.IPPROTO_TCP  # what asyncio checks before setting TCP_NODELAY
        accepted.close()
        client.close()
    finally:
        sock.close()


def _append(path: str, worker: int, count: int) -> None:
    from km_search.answers.querylog import QueryLog

    log = QueryLog(path)
    for i in range(count):
        assert log.record("search", f"worker {worker} query {i}", results=1, latency_ms=1.0) is not None
    log.close()


def test_several_processes_append_to_one_query_log(tmp_path):
    from km_search.answers.querylog import QueryLog

    path = tmp_path / "querylog.sqlite"
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_append, args=(str(path), w, 60)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    import sqlite3

    log = QueryLog(path)

    rows = sqlite3.connect(path).execute("SELECT count(*), count(DISTINCT id) FROM queries").fetchone()
    assert rows == (180, 180)
    query_id = sqlite3.connect(path).execute("SELECT id FROM queries LIMIT 1").fetchone()[0]
    assert log.add_feedback(query_id, helpful=True)  # feedback may reach another process than the query


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_workers_serve_share_the_log_and_the_rate_limit_and_all_swap_to_a_new_snapshot(tmp_path, workspace, ingest_report):
    root, docs, env = workspace
    shutil.copytree(root / "indexes", tmp_path / "indexes")
    # the copy must not carry the reader files of the session's own server, which is alive and reads the old snapshot
    shutil.rmtree(tmp_path / "indexes" / "example" / ".readers", ignore_errors=True)
    corpus = tmp_path / "docs"
    shutil.copytree(docs, corpus, ignore=shutil.ignore_patterns("broken"))
    env = {**env, "KM_INDEX_DIR": str(tmp_path / "indexes"), "KM_RELOAD_INTERVAL_S": "0.2", "KM_RATE_LIMIT": "600"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "serve.log", "w")
    env.pop("KM_WORKERS", None)
    # the default: one process per core, at most 4 (2 on a 2-core box); asked for on a 1-core box
    workers = [] if default_workers() >= 2 else ["--workers", "2"]
    proc = subprocess.Popen([*KM, "serve", "--index", "example", "--port", str(port), *workers],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        readers = tmp_path / "indexes" / "example" / ".readers"
        deadline = time.time() + 120
        while time.time() < deadline:  # both workers up: each holds the snapshot it serves
            try:
                _get(base + "/healthz")
                if len(_held(readers, proc.pid)) >= 2:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.3)
        else:
            pytest.fail("workers did not start: " + (tmp_path / "serve.log").read_text()[-2000:])
        for i in range(20):  # new connections: the kernel spreads them over the workers
            assert _get(f"{base}/search?q=postgres+billing+{i}&k=3")["hits"] is not None
        db = tmp_path / "indexes" / "example" / "querylog.sqlite"
        import sqlite3

        assert sqlite3.connect(db).execute("SELECT count(*) FROM queries WHERE query LIKE 'postgres billing %'").fetchone()[0] == 20

        (corpus / "zanzibar.md").write_text("# Zanzibar quorum\n\nThe zanzibar quorum protocol needs five voters.\n")
        done = subprocess.run([*KM, "ingest", str(corpus), "--index", "example", "--json"], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        snapshot = json.loads(done.stdout)["snapshot"]
        deadline = time.time() + 30
        while time.time() < deadline:  # every worker's own follower swaps it in
            held = list(_held(readers, proc.pid).values())
            if len(held) >= 2 and all(h == snapshot for h in held):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"workers still hold {held}, not {snapshot}")
        for _ in range(10):
            hits = _get(f"{base}/search?q=zanzibar+quorum+voters&k=3")["hits"]
            assert hits and "zanzibar" in hits[0]["text"].lower()

        # one limit for both processes: 600 a minute in all, not 600 each (new connections reach both)
        answered = refused = 0
        for _ in range(1000):
            try:
                urllib.request.urlopen(f"{base}/stats", timeout=30).close()
                answered += 1
            except urllib.error.HTTPError as exc:
                assert exc.code == 429 and int(exc.headers["Retry-After"]) >= 1
                refused += 1
        assert refused > 200 and answered < 800, (answered, refused)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()


def _held(readers: Path, parent: int) -> dict[int, str]:
    """pid -> the snapshot each live worker holds. A reader file is written atomically, so a
    `.<pid>.<token>.tmp` may sit beside it, and a file may go between listing and reading it."""
    held = {}
    for p in readers.iterdir():
        if not p.name.isdigit() or int(p.name) == parent or not _alive(int(p.name)):
            continue
        try:
            held[int(p.name)] = p.read_text().split()[0]
        except (FileNotFoundError, IndexError):
            continue
    return held


def _alive(pid: int) -> bool:
    """A reader file of a worker that died (and was replaced) is not a worker holding a snapshot."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
