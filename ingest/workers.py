"""The per-file work of ingestion (read, parse, chunk) and where it runs.

`ParsePool.parse` yields each file's outcome in order: a ParsedFile, Skipped (nothing to index, with
the reason), or the reason it failed.
Parsing runs in worker processes so that one file can only fail itself: a file that takes longer
than KM_PARSE_TIMEOUT_S gets its worker killed and replaced, a worker's address space is capped at
KM_PARSE_MEMORY_MB, and a worker that crashes (a segfault in a C library, SIGKILL) fails only the
file it was reading. Workers are forked from a forkserver that imports this module and never
torch, so they start in milliseconds and stay small.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import stat
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Callable, Iterator, Sequence

import numpy as np
import pebble

from km_search.errors import KmError, NothingToIndex, ParseError
from km_search.index.context import SentenceVectors, Windows
from km_search.settings import Settings, cpu_cores
from km_search.index.layout import SourceInfo
from km_search.types import Chunk, Document

from .chunking import chunk_document
from .discovery import SourceFile
from .metadata import finish_meta
from .parsers import parse_file
from .stubs import MAX_REDIRECT_WORDS, stub_reason


@dataclass(frozen=True)
class Skipped:
    """The outcome of a file with nothing to index (NothingToIndex): reported, not failed."""

    reason: str


@dataclass
class ParsedFile:
    doc: Document
    source: SourceInfo
    chunks: list[Chunk]
    vectors: np.ndarray | None = None
    windows: Windows | None = None
    sentences: SentenceVectors | None = None


def parse_one(file: SourceFile, settings: Settings, source: SourceInfo) -> ParsedFile:
    """Parse and chunk one file whose bytes `source` describes; raises with the reason it can't."""
    if source.size > settings.max_file_mb * 1024 * 1024:
        raise KmError(f"file is {source.size / 1048576:.0f} MB, over the {settings.max_file_mb:g} MB limit (KM_MAX_FILE_MB)")
    mode = os.stat(file.path).st_mode
    if not stat.S_ISREG(mode):  # reading a FIFO would block forever, a device never end
        raise KmError(f"not a regular file ({_KINDS.get(stat.S_IFMT(mode), 'special file')})")
    try:
        doc = parse_file(file.path, file.rel, max_pages=settings.max_pages)
    except NothingToIndex:
        raise
    except ParseError as exc:
        if why := stub_reason(file.path):
            raise NothingToIndex(why) from exc
        raise
    words = sum(len(s.text.split()) for s in doc.sections) if doc.format == "html" else MAX_REDIRECT_WORDS + 1
    if words <= MAX_REDIRECT_WORDS and (why := stub_reason(file.path, words)):  # a page that only redirects
        raise NothingToIndex(why)
    doc = replace(doc, meta=finish_meta(doc.meta, doc.path, doc.sections, file.defaults, file.contributors))
    chunks = chunk_document(doc, settings.chunk_words, settings.chunk_overlap, settings.pack_document_words,
                            settings.pack_words)
    if not chunks:
        raise KmError("no text to index")
    return ParsedFile(doc, source, chunks)


_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a named pipe", stat.S_IFSOCK: "a socket",
          stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}


def reason(exc: BaseException) -> str:
    """What a report shows for a file that failed."""
    if isinstance(exc, (KmError, OSError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


Work = Callable[[SourceFile, Settings, SourceInfo], ParsedFile]


def default_workers() -> int:
    """One parse worker per CPU core this process may use, but one: the main process embeds."""
    return max(1, cpu_cores() - 1)


class ParsePool:
    """Parses files in worker processes (in this process with KM_PARSE_WORKERS=0); a context manager
    around a run. `parse(jobs)` submits every job at once and returns an iterator over the outcomes
    in job order, so the caller can submit the next batch before it embeds the current one.

    `work` is what runs for each job; tests swap in ones that hang, crash or eat memory.
    As with any multiprocessing code, each worker imports the program's main module, which must
    keep its work under `if __name__ == "__main__":` (the `km` command does).
    """

    def __init__(self, settings: Settings, work: Work = parse_one):
        self.settings = settings
        self.work = work
        self.workers = default_workers() if settings.parse_workers is None else settings.parse_workers
        self._pool: pebble.ProcessPool | None = None

    def __enter__(self) -> "ParsePool":
        if self.workers > 0:
            self._pool = pebble.ProcessPool(
                max_workers=self.workers, initializer=_start_worker, initargs=(self.settings,), context=_context()
            )
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.stop()  # also kills workers still busy with files nobody will collect
            self._pool.join()
            self._pool = None

    def parse(self, jobs: Sequence[tuple[SourceFile, SourceInfo]]) -> Iterator[ParsedFile | Skipped | str]:
        """Each job's ParsedFile, Skipped, or the reason it failed, in the order given."""
        if self._pool is None:
            if self.workers > 0:
                raise RuntimeError("use ParsePool as a context manager: `with ParsePool(settings) as pool`")
            return (_run(self.work, file, self.settings, source) for file, source in jobs)
        timeout = self.settings.parse_timeout_s
        futures = [self._pool.schedule(_run_in_worker, args=(self.work, file, source), timeout=timeout) for file, source in jobs]
        return (self._outcome(f) for f in futures)

    def _outcome(self, future: Future) -> ParsedFile | Skipped | str:
        try:
            return future.result()
        except TimeoutError:
            return f"parsing took longer than {self.settings.parse_timeout_s:g} s (KM_PARSE_TIMEOUT_S); its worker was stopped"
        except pebble.ProcessExpired as exc:
            return died(exc.exitcode, self.settings.parse_memory_mb)
        except Exception as exc:  # noqa: BLE001 - e.g. a result too large to send back
            return reason(exc)


def died(exitcode: int | None, memory_mb: int) -> str:
    """The reason for a file whose worker died under it."""
    if exitcode is not None and exitcode < 0:
        try:
            how = f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-exitcode}"
    else:
        how = f"exited with status {exitcode}"
    hint = ""
    if exitcode in (-signal.SIGKILL, -signal.SIGABRT) and memory_mb:
        hint = f" (out of memory? each worker may use {memory_mb} MB, KM_PARSE_MEMORY_MB)"
    return f"the parser crashed on this file: its worker process {how}{hint}"


def memory_reason(memory_mb: int) -> str:
    return f"parsing needed more memory than a parse worker may use ({memory_mb} MB, KM_PARSE_MEMORY_MB)"


def _run(work: Work, file: SourceFile, settings: Settings, source: SourceInfo) -> ParsedFile | Skipped | str:
    """One job, never raising: exceptions become reasons (they may not even unpickle in the parent)."""
    try:
        return work(file, settings, source)
    except NothingToIndex as exc:
        return Skipped(str(exc))
    except MemoryError:
        return memory_reason(settings.parse_memory_mb)
    except Exception as exc:  # noqa: BLE001 - one bad file must never stop the run
        return reason(exc)


_worker_settings: Settings | None = None


def _start_worker(settings: Settings) -> None:
    """Worker initializer: keep the settings, cap the address space, no core dumps from crashes."""
    global _worker_settings
    _worker_settings = settings
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if settings.parse_memory_mb:
        cap = settings.parse_memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def _run_in_worker(work: Work, file: SourceFile, source: SourceInfo) -> ParsedFile | Skipped | str:
    assert _worker_settings is not None
    return _run(work, file, _worker_settings, source)


def _context() -> multiprocessing.context.BaseContext:
    """Workers fork from a forkserver that has imported this module: forking the ingest process itself
    would copy torch and its threads, and spawning would re-import the parsers for every worker."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])  # takes effect when the forkserver starts, once per process
    return ctx
