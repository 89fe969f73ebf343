"""Who may touch an index folder: the one ingest that writes it (`index_lock`), the serving processes
that still read a snapshot (`hold_snapshots`), and garbage collection of the snapshots nobody needs."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from typing import Iterable

from km_search.errors import KmError
from km_search.index.layout import CURRENT, MANIFEST, write_atomic


class index_lock:
    """Held by whoever writes a snapshot of this index, so two ingests never interleave.

    An flock: the kernel releases it when the holder dies, even by SIGKILL, so a crash never
    leaves the index locked.
    """

    def __init__(self, index_path: Path, wait: bool = True):
        self.path = index_path / ".ingest.lock"
        self.wait = wait

    def __enter__(self) -> "index_lock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not self.wait:
                self._file.close()
                raise KmError(f"another ingest is writing index '{self.path.parent.name}'; try again when it ends")
            fcntl.flock(self._file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


def hold_snapshots(index_path: Path, snapshot_ids: Iterable[str]) -> None:
    """Tell garbage collection which snapshots this process still reads (one file per process)."""
    folder = index_path / ".readers"
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / str(os.getpid()), "\n".join(snapshot_ids) + "\n")


def release_snapshots(index_path: Path) -> None:
    (index_path / ".readers" / str(os.getpid())).unlink(missing_ok=True)


def _held_snapshots(index_path: Path) -> set[str]:
    """Snapshots named by live reader processes; files of dead processes are removed."""
    held: set[str] = set()
    for entry in (index_path / ".readers").glob("*"):
        try:
            os.kill(int(entry.name), 0)
        except ProcessLookupError:
            entry.unlink(missing_ok=True)
            continue
        except (ValueError, PermissionError):
            pass
        try:
            held.update(line.strip() for line in entry.read_text(encoding="utf-8").splitlines() if line.strip())
        except OSError:
            continue
    return held


def current_snapshot_path(index_path: Path) -> Path | None:
    try:
        name = (index_path / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    path = index_path / "snapshots" / name
    return path if (path / MANIFEST).exists() else None


def collect_garbage(index_path: Path, keep: int) -> list[str]:
    """Delete all but the newest `keep` published snapshots, never the current one nor one that a
    serving process still reads (`hold_snapshots`)."""
    current = current_snapshot_path(index_path)
    held = _held_snapshots(index_path)
    published = sorted(
        (p for p in (index_path / "snapshots").iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    removed = []
    for old in published[: max(0, len(published) - keep)]:
        if (current is not None and old.name == current.name) or old.name in held:
            continue
        shutil.rmtree(old, ignore_errors=True)
        removed.append(old.name)
    return removed
