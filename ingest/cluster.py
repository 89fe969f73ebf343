"""Ingest on a Ray cluster (`km ingest --ray`, docs/scale-out.md): the driver discovers, plans and
writes the snapshot as a local run does; batches of files are parsed and embedded by a pool of
`IngestWorker` actors, each loading the model once.

A batch travels with its files' bytes (no shared file system needed; bounded in flight, so the
object store never holds the corpus) and comes back as the same `embed_batch` result a local run
makes, in batch order, so the snapshot gets the same documents, chunks and ids. Inside a worker,
parsing runs in its own ParsePool: the same per-file time and memory limits as a local run, and a
parser that crashes fails only its file. A worker that dies is restarted by Ray and its batch sent
again; a batch that keeps killing workers is split, so the file doing it fails alone, with the reason.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Iterator, Sequence

from km_search.settings import Settings

from .discovery import SourceFile
from .workers import ParsePool, reason

log = logging.getLogger("km_search.ingest")

WORKER_RESTARTS = 4  # times Ray restarts a worker that died, over the run
BATCH_RETRIES = 2  # times a batch is sent again after its worker died, before it is split
IN_FLIGHT_PER_WORKER = 2  # batches queued per worker: one parsing while one embeds


class IngestWorker:
    """One Ray actor: a parse pool and the model, loaded once, turning batches into embedded files."""

    def __init__(self, settings: Settings, index: str, threads: int):
        from km_search.embedding.embedder import Embedder

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.settings = settings.model_copy(update={"parse_workers": 1, "embed_threads": threads})
        self.pool = ParsePool(self.settings).__enter__()
        self.embedder = Embedder.from_settings(self.settings, index)
        self.embedder.encode(["load the model"])  # the export comes from the machine's cache, made once
        self.scratch = Path(tempfile.mkdtemp(prefix="km-ray-ingest-"))

    def process(self, batch: Sequence[tuple[SourceFile, object]], contents: Sequence[bytes | None]):
        """`embed_batch` of the batch, its files written here from the bytes the driver sent."""
        from .pipeline import embed_batch

        folder = Path(tempfile.mkdtemp(dir=self.scratch))
        try:
            local = []
            for n, ((file, source), data) in enumerate(zip(batch, contents)):
                if data is not None:  # None: over the size limit, which parsing reports from its size
                    path = folder / str(n) / file.path.name
                    path.parent.mkdir()
                    path.write_bytes(data)
                    file = replace(file, path=path)
                local.append((file, source))
            parsed, failures = embed_batch(local, list(self.pool.parse(local)), self.embedder,
                                           self.settings.sentence_vectors == "all")
            return parsed, failures
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def pid(self) -> int:
        return os.getpid()


def _contents(batch: Sequence[tuple[SourceFile, object]], max_bytes: float) -> list[bytes | None]:
    out: list[bytes | None] = []
    for file, source in batch:
        try:
            out.append(None if source.size > max_bytes else file.path.read_bytes())
        except OSError:
            out.append(None)  # parsing it there reports the same error a local run would
    return out


class RayIngest:
    """The worker pool of one `km ingest --ray` run; `process` yields (batch, parsed, failures) in
    batch order, as the local loop in pipeline.py does."""

    def __init__(self, settings: Settings, index: str, address: str):
        import ray

        from km_search.cluster.connect import connect

        resources = connect(address)
        cpus = max(1, int(resources.get("CPU", 1)))
        self.workers = settings.ray_workers or cpus
        threads = max(1, cpus // self.workers)
        actor = ray.remote(num_cpus=min(threads, cpus), max_restarts=WORKER_RESTARTS, max_task_retries=BATCH_RETRIES,
                           max_concurrency=IN_FLIGHT_PER_WORKER)(IngestWorker)
        self.settings = settings
        self.actors = [actor.remote(settings, index, threads) for _ in range(self.workers)]
        self._next = 0

    def close(self) -> None:
        import ray

        for a in self.actors:
            try:
                ray.kill(a)
            except Exception:  # noqa: BLE001 - the cluster is already gone with its actors
                pass

    def __enter__(self) -> "RayIngest":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _submit(self, batch):
        actor = self.actors[self._next % len(self.actors)]
        self._next += 1
        return actor.process.remote(batch, _contents(batch, self.settings.max_file_mb * 1024 * 1024))

    def process(self, batches: Sequence[Sequence[tuple[SourceFile, object]]]) -> Iterator[tuple]:
        import ray

        pending: deque = deque()
        todo = iter(batches)
        for batch in todo:
            pending.append((batch, self._submit(batch)))
            if len(pending) >= self.workers * IN_FLIGHT_PER_WORKER:
                break
        while pending:
            batch, ref = pending.popleft()
            try:
                parsed, failures = ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.ObjectLostError) as exc:
                parsed, failures = self._alone(batch, exc)
            yield batch, parsed, failures
            nxt = next(todo, None)
            if nxt is not None:
                pending.append((nxt, self._submit(nxt)))

    def _alone(self, batch, exc: BaseException):
        """A batch whose workers kept dying: each file sent on its own, so the one doing it fails alone."""
        import ray

        from .pipeline import FileOutcome

        log.warning("a worker died %d times on a batch of %d files (%s); sending them one by one",
                    BATCH_RETRIES + 1, len(batch), type(exc).__name__)
        parsed, failures = [], []
        for job in batch:
            try:
                p, f = ray.get(self._submit([job]))
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as again:
                f, p = [FileOutcome(job[0].rel, "failed", error=(
                    f"the Ray worker parsing or embedding this file died {BATCH_RETRIES + 1} times "
                    f"({type(again).__name__}: {reason(again).splitlines()[0]})"))], []
            parsed.extend(p)
            failures.extend(f)
        return parsed, failures
