"""discover -> parse -> chunk -> embed -> publish a snapshot, with a progress bar and a per-file report.

`process_batch` is a function of a batch of files only (plus settings and an embedder), so the
same code can later run on Ray workers; `ingest` drives batches and writes the snapshot.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from km_search.embedding import Embedder
from km_search.errors import KmError, NothingToPublish
from km_search.settings import Settings
from km_search.store import SnapshotWriter, SourceInfo
from km_search.types import Chunk, Contributor, Document, DocumentMeta, Section

from . import gitlog
from .chunking import chunk_document
from .metadata import SIDECAR_NAMES, FolderDefaults, finish_meta, supersessions
from .parsers import parse_file, parser_for


@dataclass(frozen=True)
class SourceFile:
    path: Path  # absolute
    rel: str  # relative to its ingest root, forward slashes: what links and reports show
    root: Path | None = field(default=None, compare=False)  # the ingest root: sidecars above it do not apply
    defaults: Mapping[str, Any] = field(default_factory=dict, compare=False)  # merged _meta.yaml sidecars
    contributors: tuple[Contributor, ...] = field(default=(), compare=False)  # from git history


@dataclass
class FileOutcome:
    path: str
    status: str  # "indexed" | "failed"
    chunks: int = 0
    error: str | None = None


@dataclass
class ParsedFile:
    doc: Document
    source: SourceInfo
    chunks: list[Chunk]
    vectors: np.ndarray | None = None


@dataclass
class IngestReport:
    index: str
    snapshot: str | None = None
    documents: int = 0
    chunks: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    embedded_chunks: int = 0
    skipped: int = 0
    took_s: float = 0.0
    failed: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # metadata that could not be read (sidecars, git)
    files: list[FileOutcome] = field(default_factory=list)

    def to_json(self) -> dict:
        data = asdict(self)
        data["files"] = [asdict(f) for f in self.files]
        return data


def discover(roots: Sequence[Path]) -> tuple[list[SourceFile], int]:
    """Supported files under the roots, in a stable order, and how many other files were skipped.

    Hidden files and folders (.git, .DS_Store) and sidecar metadata files are not documents.
    With several roots, paths are prefixed with the root's folder name so they stay unique.
    """
    found: list[SourceFile] = []
    skipped = 0
    for root in roots:
        root = root.expanduser().resolve()
        if not root.exists():
            raise KmError(f"{root} does not exist")
        prefix = f"{root.name}/" if len(roots) > 1 and root.is_dir() else ""
        if root.is_file():
            candidates: Iterable[Path] = [root]
            base = root.parent
        else:
            candidates = _walk(root)
            base = root
        for path in candidates:
            if path.name in SIDECAR_NAMES:
                continue
            if parser_for(path) is None:
                skipped += 1
                continue
            found.append(SourceFile(path=path, rel=prefix + path.relative_to(base).as_posix(), root=base))
    found.sort(key=lambda f: f.rel)
    return found, skipped


def with_folder_metadata(files: Sequence[SourceFile], git_authors: bool = True) -> tuple[list[SourceFile], list[str]]:
    """The files with their folders' sidecar defaults and, inside git working trees, their commit
    authors (one `git log` per repository); plus warnings about metadata that could not be read."""
    resolvers: dict[Path, FolderDefaults] = {}
    out = []
    for f in files:
        root = f.root or f.path.parent
        resolver = resolvers.setdefault(root, FolderDefaults(root))
        out.append(replace(f, defaults=resolver(f.path.parent)))
    warnings = [w for r in resolvers.values() for w in r.warnings]
    if git_authors:
        found, git_warnings = gitlog.contributors([f.path for f in out])
        out = [replace(f, contributors=found.get(f.path, ())) for f in out]
        warnings.extend(git_warnings)
    return out, warnings


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


def parse_one(file: SourceFile, settings: Settings) -> ParsedFile:
    size = file.path.stat().st_size
    if size > settings.max_file_mb * 1024 * 1024:
        raise KmError(f"file is {size / 1048576:.0f} MB, over the {settings.max_file_mb:g} MB limit (KM_MAX_FILE_MB)")
    digest = hashlib.sha256()
    with open(file.path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    doc = parse_file(file.path, file.rel)
    doc = replace(doc, meta=finish_meta(doc.meta, doc.path, doc.sections, file.defaults, file.contributors))
    chunks = chunk_document(doc, settings.chunk_words, settings.chunk_overlap, settings.pack_sections)
    if not chunks:
        raise KmError("no text to index")
    return ParsedFile(doc, SourceInfo(str(file.path), digest.hexdigest(), size), chunks)


def process_batch(
    files: Sequence[SourceFile], settings: Settings, embedder: Embedder
) -> tuple[list[ParsedFile], list[FileOutcome]]:
    """Parse, chunk and embed a batch of files; a file that fails is reported and left out alone."""
    parsed: list[ParsedFile] = []
    failures: list[FileOutcome] = []
    for file in files:
        try:
            parsed.append(parse_one(file, settings))
        except Exception as exc:  # one bad file must never stop the run
            failures.append(FileOutcome(file.rel, "failed", error=_reason(exc)))
    texts = [c.indexed_text() for p in parsed for c in p.chunks]
    vectors = embedder.encode(texts)
    start = 0
    for p in parsed:
        p.vectors = vectors[start : start + len(p.chunks)]
        start += len(p.chunks)
    return parsed, failures


def _reason(exc: Exception) -> str:
    if isinstance(exc, (KmError, OSError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _batches(files: Sequence[SourceFile], size: int) -> Iterator[Sequence[SourceFile]]:
    for i in range(0, len(files), size):
        yield files[i : i + size]


def ingest(
    roots: Sequence[Path],
    settings: Settings,
    index: str | None = None,
    embedder: Embedder | None = None,
    progress: bool = True,
    batch_files: int = 16,
) -> IngestReport:
    """Build a new snapshot of `roots` and publish it; the previous snapshot serves until then."""
    started = time.perf_counter()
    index = index or settings.index
    embedder = embedder or Embedder(settings.model, settings.embed_batch_size)
    files, skipped = discover(roots)
    report = IngestReport(index=index, skipped=skipped)
    if not files:
        raise NothingToPublish(f"no supported documents under {', '.join(map(str, roots))}")
    files, report.warnings = with_folder_metadata(files, settings.git_authors)
    writer = SnapshotWriter(settings.index_path(index), _manifest(index, settings, embedder, roots))
    try:
        with _progress(progress, len(files)) as advance:
            for batch in _batches(files, batch_files):
                parsed, failures = process_batch(batch, settings, embedder)
                for p in parsed:
                    writer.add(p.doc, p.source, p.chunks, p.vectors)
                    report.files.append(FileOutcome(p.doc.path, "indexed", chunks=len(p.chunks)))
                report.files.extend(failures)
                advance(len(batch))
        report.files.sort(key=lambda f: f.path)
        report.failed = [{"path": f.path, "error": f.error or ""} for f in report.files if f.status == "failed"]
        if writer.documents == 0:
            raise NothingToPublish("every file failed; nothing was published", report=report)
        for doc_id, newer in supersessions(writer.records_of_type("decision")).items():
            writer.mark_superseded(doc_id, newer)
        report.snapshot = writer.publish(keep=settings.keep_snapshots).name
    except BaseException:
        writer.abort()
        raise
    report.documents = report.added = writer.documents
    report.chunks = report.embedded_chunks = writer.chunks
    report.took_s = round(time.perf_counter() - started, 2)
    return report


class _progress:
    """A rich progress bar on stderr, or nothing when output is for machines."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total = enabled, total

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("[bold]ingesting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=Console(stderr=True), transient=True,
        )
        self._bar.start()
        task = self._bar.add_task("ingest", total=self.total)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *exc):
        if self.enabled:
            self._bar.stop()
        return False


def _manifest(index: str, settings: Settings, embedder: Embedder, roots: Sequence[Path | str]) -> dict:
    return {
        "name": index,
        "model": {"name": embedder.model_name, "max_tokens": embedder.max_tokens},
        "chunking": {"chunk_words": settings.chunk_words, "chunk_overlap": settings.chunk_overlap,
                     "pack_sections": settings.pack_sections},
        "roots": [str(Path(r).expanduser().resolve()) for r in roots],
    }


def index_passages(passages: Sequence[dict], settings: Settings, index: str, embedder: Embedder) -> dict[int, str]:
    """Publish ready-made passages (BEIR corpus rows: _id, title, text) one chunk each, unchunked.

    Used by `km eval` to score ranking on a passage-level set; returns chunk id -> passage id.
    """
    writer = SnapshotWriter(settings.index_path(index), _manifest(index, settings, embedder, []))
    chunk_to_passage: dict[int, str] = {}
    for start in range(0, len(passages), 256):
        batch = passages[start : start + 256]
        chunks = [
            Chunk(doc_path=p["_id"], ordinal=0, text=p["text"], source=p.get("source", p["_id"]),
                  title=p.get("title", ""), anchor=p.get("anchor"))
            for p in batch
        ]
        vectors = embedder.encode([c.indexed_text() for c in chunks])
        for i, (p, chunk) in enumerate(zip(batch, chunks)):
            doc = Document(p["_id"], "passage", (Section(chunk.text),), DocumentMeta(title=chunk.title))
            (chunk_id,) = writer.add(doc, SourceInfo(p["_id"], "", len(chunk.text)), [chunk], vectors[i : i + 1])
            chunk_to_passage[chunk_id] = p["_id"]
    writer.publish()
    return chunk_to_passage
