"""Keeping a running server on the newest snapshot: a thread that notices a new CURRENT and swaps it in.

Ingest (`km ingest`, `--watch`, uploads) may run in another process; publishing is an atomic rename
of CURRENT, so polling that one small file is cheap and never sees a half-written snapshot. The swap
itself is SearchService.load: new requests get the new snapshot at once, requests already running
finish on the old one.
"""

from __future__ import annotations

import logging
import threading

from km_search.errors import KmError

log = logging.getLogger("km_search.live")


class SnapshotFollower:
    """Polls the index every `interval_s` seconds and loads a newly published snapshot."""

    def __init__(self, service, interval_s: float):
        self.service = service
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="km-snapshot-follower", daemon=True)

    def start(self) -> "SnapshotFollower":
        if self.interval_s > 0:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                if self.service.reload_if_changed():
                    log.info("now serving snapshot %s", self.service.retriever.snapshot.snapshot_id)
            except KmError as exc:  # e.g. a snapshot built with another model: keep serving the old one
                log.error("not switching to the new snapshot: %s", exc)
            except Exception:  # never let the thread die: the next poll tries again
                log.exception("checking for a new snapshot failed")
