"""`km ingest --watch`: keep an index current as files change.

watchfiles batches a burst of file events (an editor's save, a `git pull`, a copied folder) into one
set; each set triggers one incremental ingest, which re-processes only what changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from km_search.embedding.embedder import Embedder
from km_search.errors import KmError
from km_search.settings import Settings

from .metadata import SIDECAR_NAMES
from .parsers import format_of
from .pipeline import IngestReport, ingest


def relevant(change: object, path: str) -> bool:
    """Document files and metadata sidecars; not editors' swap files or hidden folders."""
    p = Path(path)
    if any(part.startswith(".") for part in p.parts):
        return False
    return p.name in SIDECAR_NAMES or format_of(p) is not None or not p.suffix


def watch(
    roots: Sequence[Path],
    settings: Settings,
    index: str | None,
    on_report: Callable[[IngestReport | KmError], None],
    debounce_ms: int = 1000,
    stop_event=None,
) -> None:
    """Ingest once, then again after every burst of changes under the roots, until interrupted."""
    from watchfiles import watch as watch_changes

    embedder = Embedder.from_settings(settings, index)
    run = lambda: ingest(roots, settings, index=index, embedder=embedder, progress=False)  # noqa: E731
    started = False
    # The watcher starts first and the first ingest runs at its first (empty) yield, so a change
    # made while that ingest runs is held by the watcher and handled next, never missed.
    for changes in watch_changes(*roots, watch_filter=relevant, debounce=debounce_ms, stop_event=stop_event,
                                 raise_interrupt=False, yield_on_timeout=True, rust_timeout=200):
        if not started or changes:
            started = True
            on_report(_attempt(run))


def _attempt(run: Callable[[], IngestReport]) -> IngestReport | KmError:
    try:
        return run()
    except KmError as exc:  # e.g. every file failed: keep watching, the last snapshot keeps serving
        return exc
