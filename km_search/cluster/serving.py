"""A snapshot's shards served by Ray Serve, one deployment per shard, fanned out from `km serve`.

`km serve --ray` keeps what does not grow with the corpus: the HTTP API, auth, the page, the SQLite
reads and the ranking itself (search/retrieval.py, unchanged). What does grow, each shard's FAISS
index, BM25 postings and window vectors, lives in a Ray Serve deployment of that shard
(`ShardServer`). `RemoteSnapshot` is a Snapshot whose corpus-wide operations (FAISS search, BM25
scoring) go to those deployments, in parallel, and merge exactly as a local Snapshot merges its own shards, with the BM25 statistics of
the whole snapshot (passage count, mean length, document frequencies; read at the front from the
postings' term tables), so the hits are the same as `km serve` on the same snapshot.

A new snapshot gets its own deployments (`deploy`); the service swaps to it once every shard is up,
and the old ones are deleted when requests have had time to finish (`retire`): no gap in answers.
A call to a replica that died is retried until a replacement answers (Ray Serve starts one).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from km_search.errors import ClusterUnavailable
from km_search.index import dense
from km_search.index.context import ShardContext
from km_search.index.layout import MANIFEST
from km_search.index.lexical import LexicalIndex, LexicalScores, Postings
from km_search.index.snapshot import Snapshot, published
from km_search.settings import serving_environment

log = logging.getLogger("km_search.cluster")

SHARD_CPUS = 0.25  # what Ray schedules per replica: a shard's search is short and memory-bound
CALL_DEADLINE_S = 60.0  # a shard that does not answer for this long fails the request (503)
RETIRE_AFTER_S = 10.0  # the old snapshot's deployments outlive the swap by this (requests finish)
_SCORES_KEPT = 16  # BM25 score arrays a shard keeps for the queries in flight (`lexical_of` after `lexical_top`)


class ShardServer:
    """One shard of a snapshot, loaded on its own: what a Ray Serve replica runs. `corpus` is the
    whole snapshot's (passages, tokens), so its BM25 scores are the snapshot's."""

    def __init__(self, snapshot_path: str, number: int, corpus: tuple[int, int]):
        serving_environment()
        path = Path(snapshot_path)
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        self.snapshot = Snapshot.of_shards(path, manifest, [number], corpus)
        self._scores: OrderedDict[tuple, LexicalScores] = OrderedDict()
        self._lock = threading.Lock()

    def dense(self, vector: np.ndarray, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        return self.snapshot.dense_search(vector, n, allowed)

    def lexical_top(self, terms: list[int], idfs: list[float], heading_weight: float | None,
                    allowed: np.ndarray | None, n: int) -> list[tuple[int, float]]:
        scores = self._lexical(terms, idfs, heading_weight)
        lexical = self.snapshot.lexical
        return LexicalScores(scores.shard_ids, scores.scores, lexical.allowed_rows(allowed)).top(n)

    def lexical_of(self, terms: list[int], idfs: list[float], heading_weight: float | None, ids: np.ndarray) -> np.ndarray:
        return self._lexical(terms, idfs, heading_weight).of(ids)

    def document_frequencies(self, words: Sequence[str], allowed: np.ndarray | None) -> dict[str, int]:
        return self.snapshot.lexical.document_frequencies(words, allowed)

    def pid(self) -> int:
        return os.getpid()

    def _lexical(self, terms: list[int], idfs: list[float], heading_weight: float | None) -> LexicalScores:
        key = (tuple(terms), tuple(idfs), heading_weight)
        with self._lock:
            scores = self._scores.get(key)
            if scores is not None:
                self._scores.move_to_end(key)
                return scores
        scores = self.snapshot.lexical.scored_terms(terms, idfs, None, heading_weight)
        with self._lock:
            self._scores[key] = scores
            while len(self._scores) > _SCORES_KEPT:
                self._scores.popitem(last=False)
        return scores


class ShardClient(Protocol):
    """How the front calls one shard: `submit` starts a call, `result` waits for it."""

    def submit(self, method: str, *args: Any) -> Any: ...

    def result(self, pending: Any, method: str, *args: Any) -> Any: ...


class InProcessShard:
    """A shard served in this process (tests, and the equivalence of the merge without a cluster)."""

    def __init__(self, server: ShardServer):
        self.server = server

    def submit(self, method: str, *args: Any) -> Any:
        return getattr(self.server, method)(*args)

    def result(self, pending: Any, method: str, *args: Any) -> Any:
        return pending


class ServeShard:
    """A shard deployment on Ray Serve, called through its handle. A call whose replica died (or
    is being replaced) is sent again until a replica answers or CALL_DEADLINE_S passes."""

    def __init__(self, app: str):
        from ray import serve

        self.app = app
        self.handle = serve.get_app_handle(app)

    def submit(self, method: str, *args: Any) -> Any:
        return getattr(self.handle, method).remote(*args)

    def result(self, pending: Any, method: str, *args: Any) -> Any:
        deadline = time.monotonic() + CALL_DEADLINE_S
        while True:
            try:
                return pending.result(timeout_s=max(1.0, deadline - time.monotonic()))
            except Exception as exc:  # noqa: BLE001 - RayActorError, a replica being replaced, a timeout
                if time.monotonic() >= deadline:
                    raise ClusterUnavailable(f"shard {self.app} did not answer within {CALL_DEADLINE_S:g} s: {exc}") from exc
                log.warning("shard %s failed a call (%s); sending it again", self.app, type(exc).__name__)
                time.sleep(0.2)
                pending = self.submit(method, *args)


@dataclass
class _Shards:
    """The shards of a remote snapshot, each with the range of chunk ids it holds."""

    clients: list[ShardClient]
    ranges: list[tuple[int, int]]

    def within(self, allowed: np.ndarray | None) -> list[np.ndarray | None]:
        """The allowed chunk ids each shard could hold (None: all), so no shard gets all of them."""
        if allowed is None:
            return [None] * len(self.clients)
        return [allowed[(allowed >= lo) & (allowed <= hi)] for lo, hi in self.ranges]

    def each(self, method: str, args: Sequence[tuple]) -> list[Any]:
        """Call `method` on every shard at once (shard i with args[i]); their answers in shard order."""
        pending = [client.submit(method, *a) for client, a in zip(self.clients, args)]
        return [client.result(p, method, *a) for client, p, a in zip(self.clients, pending, args)]

    def all(self, method: str, *args: Any) -> list[Any]:
        return self.each(method, [args] * len(self.clients))


class RemoteScores:
    """One query's BM25 scores, kept on the shards: its top n and the score of any passage asked."""

    remote = True  # each question is a round of shard calls

    def __init__(self, shards: _Shards, terms: list[int], idfs: list[float], heading_weight: float | None,
                 allowed: np.ndarray | None):
        self.shards, self.key, self.allowed = shards, (terms, idfs, heading_weight), allowed

    def top(self, n: int) -> list[tuple[int, float]]:
        found = [pair for part in self.shards.each(
            "lexical_top", [(*self.key, a, n) for a in self.shards.within(self.allowed)]) for pair in part]
        found.sort(key=lambda pair: (-pair[1], pair[0]))  # as LexicalScores.top
        return found[:n]

    def of(self, ids: np.ndarray) -> np.ndarray:
        return np.sum(self.shards.all("lexical_of", *self.key, ids), axis=0, dtype=np.float32)


class RemoteLexical:
    """The lexical side of a remote snapshot: terms and idfs here, scoring on the shards."""

    def __init__(self, front: LexicalIndex, shards: _Shards):
        self.front, self.shards, self.total = front, shards, front.total

    def scored(self, query: str, allowed: np.ndarray | None = None, heading_weight: float | None = None) -> RemoteScores:
        terms = self.front.terms(query)
        return RemoteScores(self.shards, terms, [self.front.idf(t) for t in terms], heading_weight, allowed)

    def search(self, query: str, n: int, allowed: np.ndarray | None = None,
               heading_weight: float | None = None) -> list[tuple[int, float]]:
        return self.scored(query, allowed, heading_weight).top(n)

    def document_frequencies(self, words: Sequence[str], allowed: np.ndarray | None = None) -> dict[str, int]:
        parts = self.shards.each("document_frequencies", [(list(words), a) for a in self.shards.within(allowed)])
        return {w: sum(p[w] for p in parts) for w in words}


@dataclass
class RemoteSnapshot(Snapshot):
    """A snapshot whose shards are served elsewhere; the database and manifest are read here."""

    remote: _Shards | None = None
    apps: list[str] = field(default_factory=list)  # the Ray Serve applications of its shards

    @classmethod
    def over(cls, path: Path, manifest: dict[str, Any], clients: Sequence[ShardClient], apps: Sequence[str] = ()) -> "RemoteSnapshot":
        """What the front reads itself, memory-mapped, touching only a query's candidates: the
        shards' ids, stored vectors, windows and section continuity (the context step and the
        feedback read a few hundred rows), and the postings' term tables (document frequencies).
        What scans a whole shard, the FAISS search and BM25 scoring, is the shards' work."""
        entries = manifest.get("shards", [])
        ids = [np.load(path / s["ids"], mmap_mode="r") for s in entries]
        remote = _Shards(list(clients), [(int(i[0]), int(i[-1])) if len(i) else (0, -1) for i in ids])
        shards = [dense.ShardIndex(None, dense.open_vectors(path / s["vectors"]), i) for s, i in zip(entries, ids)]
        front = LexicalIndex([Postings.load(path / s["bm25"]) for s in entries], ids)
        return cls(path=path, manifest=manifest, shards=shards, lexical=RemoteLexical(front, remote),
                   contexts=[ShardContext.load(path / s["context"]) for s in entries], remote=remote, apps=list(apps))

    @property
    def _shards(self) -> _Shards:
        assert self.remote is not None
        return self.remote

    def dense_search(self, vector: np.ndarray, n: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        if allowed is not None and not len(allowed):
            return []
        found = [pair for part in self._shards.each("dense", [(vector, n, a) for a in self._shards.within(allowed)])
                 for pair in part]
        found.sort(key=lambda pair: -pair[1])  # as Snapshot.dense_search: stable, in shard order
        return found[:n]


def corpus_of(path: Path, manifest: dict[str, Any]) -> tuple[int, int]:
    """(passages, tokens) over all shards of a snapshot: the BM25 statistics every shard scores with."""
    lengths = [np.load(path / s["bm25"] / "lengths.npy", mmap_mode="r") for s in manifest.get("shards", [])]
    return sum(len(x) for x in lengths), sum(int(x.sum(dtype=np.int64)) for x in lengths)


def _app_name(index: str, snapshot_id: str, number: int) -> str:
    return f"km-{index}-{snapshot_id}-shard-{number:04d}"


def deploy(index_path: Path, index: str) -> RemoteSnapshot:
    """Start one Ray Serve deployment per shard of the published snapshot and wait until every one
    answers; the snapshot that results fans out to them. Connect to the cluster first."""
    from ray import serve

    path, manifest = published(index_path, index)
    corpus = corpus_of(path, manifest)
    serve.start(proxy_location="Disabled")  # km serve is the HTTP front; joins a running Serve as is
    shard = serve.deployment(ShardServer, name="shard", ray_actor_options={"num_cpus": SHARD_CPUS},
                             health_check_period_s=1.0, health_check_timeout_s=10.0)
    apps = [_app_name(index, manifest["snapshot"], n) for n in range(len(manifest.get("shards", [])))]
    started = time.perf_counter()
    serve.run_many([serve.RunTarget(shard.bind(str(path), n, corpus), name=app, route_prefix=None)
                    for n, app in enumerate(apps)])
    log.info("serving snapshot %s: %d shard deployments up in %.1f s", manifest["snapshot"], len(apps),
             time.perf_counter() - started)
    return RemoteSnapshot.over(path, manifest, [ServeShard(app) for app in apps], apps)


def retire(snapshot: Snapshot, after_s: float = RETIRE_AFTER_S) -> None:
    """Delete the deployments of a snapshot no longer served: in the background once its last
    requests had time to end, or now (`after_s` 0: the server is stopping)."""
    apps = getattr(snapshot, "apps", [])

    def delete() -> None:
        from ray import serve

        time.sleep(after_s)
        try:
            for app in apps:
                serve.delete(app, _blocking=False)
            deadline = time.monotonic() + 30
            while set(apps) & set(serve.status().applications) and time.monotonic() < deadline:
                time.sleep(0.2)  # the controller deletes them; a stopping server must not exit first
        except Exception:  # noqa: BLE001 - the cluster went away; nothing left to free
            log.exception("could not delete the shard deployments %s", ", ".join(apps))

    if apps and after_s:
        threading.Thread(target=delete, name="km-retire-shards", daemon=True).start()
    elif apps:
        delete()
