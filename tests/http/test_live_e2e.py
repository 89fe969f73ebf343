"""Live index updates end to end, with the real model and real processes: a `km serve` keeps
answering while `km ingest` runs, is killed with SIGKILL, reruns and publishes; the server swaps
to the new snapshot without a restart; `km ingest --watch` follows edits; admins upload and
delete documents over HTTP. Queries from another thread run throughout and must all succeed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from types import SimpleNamespace

import httpx
import pytest

from helpers import EXAMPLES, KM, start_server

pytestmark = pytest.mark.slow


def _km(env, *args, timeout=600):
    run = subprocess.run([*KM, *args], capture_output=True, text=True, env=env, timeout=timeout)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = tmp_path_factory.mktemp("live")
    docs = root / "docs"
    shutil.copytree(EXAMPLES, docs)
    env = {**os.environ, "KM_INDEX_DIR": str(root / "indexes"), "HF_HUB_OFFLINE": "1", "KM_AUTH": "none",
           "KM_RELOAD_INTERVAL_S": "0.3", "KM_KEEP_SNAPSHOTS": "2", "KM_RATE_LIMIT": "0"}
    first = json.loads(_km(env, "ingest", str(docs), "--index", "live", "--json").stdout)
    base, proc = start_server("live", env, root / "serve.log")
    client = httpx.Client(base_url=base, timeout=60)
    yield SimpleNamespace(root=root, docs=docs, env=env, first=first, base=base, client=client,
                          index=root / "indexes" / "live")
    client.close()
    proc.terminate()
    proc.wait(timeout=30)


class Prober:
    """Queries the server without pause from a thread; remembers every failure and snapshot seen."""

    def __init__(self, base: str):
        self.client = httpx.Client(base_url=base, timeout=60)
        self.ok = 0
        self.failures: list[str] = []
        self.snapshots: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        queries = ["how do we roll back a billing deploy", "postgres migration lessons", "vacation policy"]
        i = 0
        while not self._stop.is_set():
            try:
                r = self.client.get("/search", params={"q": queries[i % 3], "k": 5})
                h = self.client.get("/healthz")
                if r.status_code != 200 or not r.json()["hits"] or h.status_code != 200:
                    self.failures.append(f"{r.status_code} {r.text[:200]} / {h.status_code}")
                else:
                    self.ok += 1
                    self.snapshots.add(h.json()["snapshot"])
            except httpx.HTTPError as exc:
                self.failures.append(repr(exc))
            i += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=60)
        self.client.close()


def _wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _serving(live) -> str:
    return live.client.get("/healthz").json()["snapshot"]


def _top_paths(live, q, k=5):
    return [h["doc_path"] for h in live.client.get("/search", params={"q": q, "k": k}).json()["hits"]]


def test_sigkill_mid_ingest_keeps_serving_and_the_rerun_publishes_while_queries_run(live):
    current = (live.index / "CURRENT").read_text().strip()
    assert _serving(live) == current == live.first["snapshot"]
    with Prober(live.base) as prober:
        proc = subprocess.Popen([*KM, "ingest", str(live.docs), "--index", "live", "--full", "--json"],
                                env=live.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _wait_for(lambda: any((live.index / "snapshots").glob(".unfinished-*")), what="ingest to start writing")
        time.sleep(1.5)  # mid-way: parsing and embedding
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        assert (live.index / "CURRENT").read_text().strip() == current  # the last complete snapshot
        assert _serving(live) == current
        assert _top_paths(live, "vacation policy")

        target = live.docs / "billing" / "howto-deploy-billing.md"
        if not target.exists():
            target = next(live.docs.rglob("*.md"))
        target.write_text(target.read_text() + "\n\n## Narwhal rollback\n\nThe narwhal rollback drill runs every Thursday.\n")
        report = json.loads(_km(live.env, "ingest", str(live.docs), "--index", "live", "--json").stdout)
        assert (report["updated"], report["added"], report["removed"]) == (1, 0, 0)
        assert report["embedded_chunks"] < report["chunks"] / 4
        assert not list((live.index / "snapshots").glob(".unfinished-*"))  # the killed run's leftovers
        _wait_for(lambda: _serving(live) == report["snapshot"], what="the server to swap snapshots")
        rel = target.relative_to(live.docs).as_posix()
        assert _top_paths(live, "narwhal rollback drill", k=3)[0] == rel
        time.sleep(1)
    assert prober.failures == []
    assert prober.ok > 10 and {current, report["snapshot"]} <= prober.snapshots


def test_watch_follows_edits_and_the_server_picks_them_up(live):
    proc = subprocess.Popen([*KM, "ingest", str(live.docs), "--index", "live", "--watch", "--json"],
                            env=live.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        assert first["added"] == 0 and first["embedded_chunks"] == 0
        note = live.docs / "engineering" / "okapi-notes.md"
        note.parent.mkdir(exist_ok=True)
        note.write_text("# Okapi feeding schedule\n\nThe okapi in the office gets fed at noon by the on-call engineer.\n")
        update = json.loads(proc.stdout.readline())
        assert update["added"] == 1 and update["failed"] == []
        _wait_for(lambda: _serving(live) == update["snapshot"], what="the server to swap snapshots")
        assert _top_paths(live, "who feeds the okapi", k=3)[0] == "engineering/okapi-notes.md"
        note.unlink()
        removal = json.loads(proc.stdout.readline())
        assert removal["removed"] == 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_upload_and_delete_documents_over_http(live):
    body = b"# Capybara onboarding\n\nNew hires meet the capybara mascot on their first Friday.\n"
    r = live.client.post("/documents", files={"file": ("capybara.md", body, "text/markdown")},
                         data={"project": "culture", "tags": "onboarding,mascot"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["path"].startswith("uploads/") and created["path"].endswith("/capybara.md")
    assert created["embedded_chunks"] == 1
    hits = live.client.get("/search", params={"q": "capybara mascot", "k": 3, "project": "culture"}).json()["hits"]
    assert hits and hits[0]["doc_id"] == created["doc_id"] and "onboarding" in hits[0]["tags"]
    viewer = live.client.get(f"/documents/{created['doc_id']}")
    assert viewer.status_code == 200 and "capybara" in viewer.text.lower()

    bad = live.client.post("/documents", files={"file": ("scan.pdf", b"%PDF-1.7 not really", "application/pdf")})
    assert bad.status_code == 422 and "scan.pdf" in bad.json()["error"]
    odd = live.client.post("/documents", files={"file": ("tool.exe", b"MZ\x90\x00", "application/octet-stream")})
    assert odd.status_code == 415
    uploads = live.index / "uploads"
    assert len(list(uploads.iterdir())) == 1  # the refused files left nothing behind

    # a re-ingest of the folders keeps the upload
    report = json.loads(_km(live.env, "ingest", str(live.docs), "--index", "live", "--json").stdout)
    assert created["path"] in {f["path"] for f in report["files"] if f["status"] == "unchanged"}

    gone = live.client.delete(f"/documents/{created['doc_id']}")
    assert gone.status_code == 200 and gone.json()["path"] == created["path"]
    hits = live.client.get("/search", params={"q": "capybara mascot"}).json()["hits"]
    assert "capybara" not in json.dumps(hits).lower()
    assert live.client.get(f"/documents/{created['doc_id']}").status_code == 404
    assert live.client.delete(f"/documents/{created['doc_id']}").status_code == 404
    assert not list(uploads.iterdir())


def test_upload_with_a_malformed_group_is_refused(live):
    r = live.client.post("/documents", files={"file": ("x.md", b"# X\n\nSome text here.\n", "text/markdown")},
                         data={"groups": "hr, bad group!"})
    assert r.status_code == 422 and "group name" in r.json()["error"]
