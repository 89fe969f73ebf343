"""discover -> plan -> parse -> chunk -> embed -> publish a snapshot, with a progress bar and a report.

Ingest is incremental: a run starts from the published snapshot and re-parses and re-embeds only the
files whose bytes or inherited metadata changed, drops the documents of deleted files and carries
everything else over (SnapshotWriter with a base). A full rebuild happens when there is no
compatible snapshot (another model, chunking, format or km-search version) or when asked (`full`).

The work on a batch of files is two functions of the batch only: `ParsePool.parse` (parse and
chunk, in worker processes) and `embed_batch`, so the same code can later run on Ray workers;
`ingest` plans, drives batches and writes the snapshot.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tempfile
import time
from contextlib import ExitStack, closing
from dataclasses import asdict, dataclass, field, replace
from itertools import groupby
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from km_search import __version__
from km_search.index import dense
from km_search.answers.extractive import embedded_spans, prose_spans
from km_search.index.context import SentenceVectors, Windows
from km_search.embedding.embedder import Embedder
from km_search.errors import NothingToPublish
from km_search.settings import Settings
from km_search.index.layout import DATABASE, FORMAT_VERSION, MANIFEST, SourceInfo
from km_search.index.writer import SnapshotWriter
from km_search.index.locks import current_snapshot_path, index_lock
from km_search.types import Chunk, Document, DocumentMeta, Section

from .progress import progress as ingest_progress
from .discovery import SourceFile, scan, with_folder_metadata  # noqa: F401 - scan: part of this module's API
from .sources import UPLOADS, Previous, Source, SourceContext, discover_all, index_roots, is_url, sources_for  # noqa: F401
from .chunking import PASSAGE_TEXT
from .metadata import superseding, supersessions
from .workers import ParsedFile, ParsePool, Skipped, reason

EXCLUDED = "excluded.json"  # <index folder>/excluded.json: paths deleted through DELETE /documents/{id}


@dataclass
class FileOutcome:
    path: str
    status: str  # "added" | "updated" | "unchanged" | "removed" | "failed" | "skipped" (nothing to index)
    chunks: int = 0
    error: str | None = None


@dataclass
class IngestReport:
    index: str
    snapshot: str | None = None
    documents: int = 0  # in the published snapshot
    chunks: int = 0  # in the published snapshot
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    embedded_chunks: int = 0  # embedded by this run
    skipped: int = 0  # files of unsupported formats (not parsed at all)
    full_rebuild: str | None = None  # why every file was processed, when it was
    took_s: float = 0.0
    engine: str = "local"  # "local" | "ray": where files were parsed and embedded
    ray_workers: int = 0  # Ray actors that parsed and embedded (engine "ray")
    failed: list[dict[str, str]] = field(default_factory=list)
    skipped_files: list[dict[str, str]] = field(default_factory=list)  # {path, reason}: nothing to index
    warnings: list[str] = field(default_factory=list)  # metadata that could not be read (sidecars, git)
    crawl: dict[str, int] = field(default_factory=dict)  # URLs counted, not indexed: robots_disallowed, out_of_scope…
    files: list[FileOutcome] = field(default_factory=list)

    def to_json(self) -> dict:
        data = asdict(self)
        data["files"] = [asdict(f) for f in self.files]
        return data


@dataclass(frozen=True)
class Job:
    """A file to (re)process, with what we know of its bytes."""

    file: SourceFile
    source: SourceInfo
    status: str  # "added" | "updated"


@dataclass
class Plan:
    """What a run changes relative to the snapshot it starts from."""

    base: Path | None
    jobs: list[Job] = field(default_factory=list)
    unchanged: list[tuple[str, SourceInfo, bool]] = field(default_factory=list)  # (path, source, mtime moved)
    removed: list[str] = field(default_factory=list)
    failed: list[FileOutcome] = field(default_factory=list)  # unreadable before parsing
    full_rebuild: str | None = None

    @property
    def empty(self) -> bool:
        return self.base is not None and not self.jobs and not self.removed


def embed_batch(jobs, results, embedder: Embedder, all_sentences: bool = True) -> tuple[list[ParsedFile], list[FileOutcome]]:
    """Embed the passages of a parsed batch (`results` of ParsePool.parse for `jobs`); a file that
    failed to parse, or had nothing to index, is reported and left out alone."""
    parsed: list[ParsedFile] = []
    failures: list[FileOutcome] = []
    for (file, _), result in zip(jobs, results):
        if isinstance(result, Skipped):
            failures.append(FileOutcome(file.rel, "skipped", error=result.reason))
        elif isinstance(result, str):
            failures.append(FileOutcome(file.rel, "failed", error=result))
        else:
            parsed.append(result)
    vectors, windows, sentences = encode_chunks([c for p in parsed for c in p.chunks], embedder, all_sentences)
    start = 0
    for p in parsed:
        rows = slice(start, start + len(p.chunks))
        p.vectors, p.windows, p.sentences = vectors[rows], windows.take(rows), sentences.take(rows)
        start += len(p.chunks)
    return parsed, failures


def encode_chunks(chunks: Sequence[Chunk], embedder: Embedder,
                  all_sentences: bool = True) -> tuple[np.ndarray, Windows, SentenceVectors]:
    """One forward pass per chunk: its vector, its windows, and the vectors of the sentences an answer
    scores in its text (the extractor's own spans, `embedded_spans`) and of those search's lift reads
    (`prose_spans`), pooled from the tokens of its indexed text (heading context line, newline, text)
    and stored by their offsets in the text, the lift's first.

    The model sees a passage's first `max_tokens` tokens only: the sentences after those are pooled
    from one more pass over the rest of the passage under the same context line, so /ask embeds none;
    without `all_sentences` (KM_SENTENCE_VECTORS=first-pass) they are left to /ask. Passage and window
    vectors come from the first pass alone, so search is the same either way."""
    texts = [c.indexed_text() for c in chunks]
    shifts = [len(t) - len(c.text) for t, c in zip(texts, chunks)]
    wanted = [embedded_spans(c.text) for c in chunks]
    searched = [prose_spans(c.text) for c in chunks]
    vectors, windows, per_chunk = embedder.encode_for_index(
        texts, [[(a + shift, b + shift) for a, b in sorted({*mine, *lift})]
                for mine, lift, shift in zip(wanted, searched, shifts)])
    found: list[dict[tuple[int, int], np.ndarray]] = [
        {(int(a) - shift, int(b) - shift): v for (a, b), v in zip(spans, pooled)}
        for (spans, pooled), shift in zip(per_chunk, shifts)]
    first_pass = [set(spans) for spans in found]
    while all_sentences:
        rest = [(row, [span for span in wanted[row] if span not in found[row]]) for row in range(len(chunks))]
        rest = [(row, spans) for row, spans in rest if spans]
        if not rest:
            break
        # the rest of each passage from its first sentence left out, under the passage's context line
        tails = [(row, spans, min(a for a, _ in spans)) for row, spans in rest]
        tail_texts = [texts[row][: shifts[row]] + chunks[row].text[first:] for row, _, first in tails]
        _, _, pooled = embedder.encode_for_index(
            tail_texts, [[(a - first + shifts[row], b - first + shifts[row]) for a, b in spans] for row, spans, first in tails])
        progress = False
        for (row, _, first), (spans, vecs) in zip(tails, pooled):
            for (a, b), v in zip(spans, vecs):
                found[row][(int(a) + first - shifts[row], int(b) + first - shifts[row])] = v
                progress = True
        if not progress:  # spans without tokens (text the tokenizer drops): embedded when asked
            break
        for row, spans, first in tails:
            if not any(span in found[row] for span in spans):
                wanted[row] = [span for span in wanted[row] if span in found[row]]
    dimension = vectors.shape[1] if vectors.ndim == 2 else 0
    per_row, counts = [], []
    for row in range(len(chunks)):
        # the lift reads the prose sentences the first pass pooled (those inside the model's token limit)
        lift = [span for span in searched[row] if span in first_pass[row]]
        read = set(lift)
        spans = lift + [span for span in embedded_spans(chunks[row].text) if span in found[row] and span not in read]
        per_row.append((np.asarray(spans, dtype=np.int32).reshape(-1, 2),
                        np.stack([found[row][span] for span in spans]) if spans else np.zeros((0, dimension), np.float32)))
        counts.append(len(lift))
    return vectors, windows, SentenceVectors.of(per_row, dimension, counts)


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def meta_hash(file: SourceFile) -> str:
    """Fingerprint of what a document inherits besides its bytes: a sidecar or git change re-parses it."""
    data = {"defaults": file.defaults, "contributors": [asdict(c) for c in file.contributors]}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:32]


def source_info(file: SourceFile, max_bytes: float | None = None) -> SourceInfo:
    """What identifies this version of the file. A file over the size limit is not read at all (the
    parse step rejects it): its size and modification time stand in for the hash."""
    st = file.path.stat()
    if file.content_hash is not None:  # hashed by its source (a downloaded page): no modification time
        return SourceInfo(file.location or str(file.path), file.content_hash, st.st_size, None,
                          file.origin or str(file.root or file.path.parent), meta_hash(file))
    if max_bytes is not None and st.st_size > max_bytes:
        digest = f"size:{st.st_size}:mtime:{st.st_mtime_ns}"
    else:
        digest = content_hash(file.path)
    return SourceInfo(file.location or str(file.path), digest, st.st_size, st.st_mtime_ns,
                      file.origin or str(file.root or file.path.parent), meta_hash(file))


def _batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def excluded_paths(index_path: Path) -> dict[str, str]:
    """Documents deleted through the API: path -> content hash of the file when it was deleted."""
    try:
        return dict(json.loads((index_path / EXCLUDED).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return {}


def _still_excluded(file: SourceFile, excluded: dict[str, str]) -> bool:
    """A deleted document stays out until its file changes."""
    if file.rel not in excluded:
        return False
    if file.unchanged:
        return True
    try:
        return (file.content_hash or content_hash(file.path)) == excluded[file.rel]
    except OSError:
        return True


def new_manifest(index: str, settings: Settings, embedder: Embedder, roots: Sequence[Path | str]) -> dict:
    """The manifest of a snapshot built from scratch: what loading checks (model, backend, chunking)."""
    return {
        "name": index,
        "km_search": __version__,
        "model": {"name": embedder.model_name, "backend": embedder.backend, "max_tokens": embedder.max_tokens},
        "chunking": {"chunk_words": settings.chunk_words, "chunk_overlap": settings.chunk_overlap,
                     "pack_document_words": settings.pack_document_words, "pack_words": settings.pack_words,
                     "embedded_context": Chunk.EMBEDDED_CONTEXT, "passage_text": PASSAGE_TEXT},
        "roots": [str(r) if is_url(r) else str(Path(r).expanduser().resolve()) for r in roots],
    }


def reusable_base(index_path: Path, manifest: dict) -> tuple[Path | None, str | None]:
    """The published snapshot a run may start from, or None and why everything must be processed."""
    base = current_snapshot_path(index_path)
    if base is None:
        return None, None
    old = json.loads((base / MANIFEST).read_text(encoding="utf-8"))
    for key, what in (("format_version", "snapshot format"), ("km_search", "km-search version"),
                      ("chunking", "chunking settings")):
        expected = FORMAT_VERSION if key == "format_version" else manifest[key]
        if old.get(key) != expected:
            return None, f"{what} changed ({old.get(key)} -> {expected})"
    for key in ("name", "backend"):
        before, now = old.get("model", {}).get(key), manifest["model"].get(key)
        if before != now:
            return None, f"embedding model {key} changed ({before} -> {now})"
    return base, None


def previous_documents(base: Path | None) -> dict[str, Previous]:
    """path -> what `base` holds of that document (nothing without a base)."""
    if base is None:
        return {}
    db = sqlite3.connect(f"file:{base / DATABASE}?mode=ro", uri=True)
    try:
        return {r[0]: Previous(*r[1:]) for r in db.execute(
            "SELECT path, content_hash, size, mtime_ns, meta_hash FROM documents")}
    finally:
        db.close()


def plan_changes(files: Sequence[SourceFile], base: Path | None, max_bytes: float | None = None,
                 kept: Sequence[tuple[str, str]] = ()) -> Plan:
    """Compare the files found with the documents of `base`: which to add, update, keep or remove.

    Size and modification time unchanged means unchanged; otherwise the content hash decides, so a
    touched but identical file is not re-embedded. An item its source says is unchanged (HTTP 304)
    is kept as indexed; one it hashed itself is compared by that hash. `kept` (path, why): items a
    source could not read this run, reported failed, their indexed versions left as they are.
    """
    previous = previous_documents(base)
    plan = Plan(base=base)
    for file in files:
        old = previous.get(file.rel)
        if file.unchanged:
            if old is not None:
                plan.unchanged.append((file.rel, SourceInfo(file.location or file.rel, old[0], old[1], old[2]), False))
            else:
                plan.failed.append(FileOutcome(file.rel, "failed", error="its source says it is unchanged, but it is not indexed"))
            continue
        try:
            if file.content_hash is not None:
                source = source_info(file, max_bytes)
                if old and old[0] == source.content_hash and old[3] == source.meta_hash:
                    plan.unchanged.append((file.rel, source, False))
                else:
                    plan.jobs.append(Job(file, source, "updated" if old else "added"))
                continue
            st = file.path.stat()
            fingerprint = meta_hash(file)
            if old and old[1] == st.st_size and old[2] == st.st_mtime_ns and old[3] == fingerprint:
                plan.unchanged.append((file.rel, SourceInfo(str(file.path), old[0], st.st_size, st.st_mtime_ns), False))
                continue
            source = source_info(file, max_bytes)
        except OSError as exc:
            plan.failed.append(FileOutcome(file.rel, "failed", error=reason(exc)))
            continue
        if old and old[0] == source.content_hash and old[3] == source.meta_hash:
            plan.unchanged.append((file.rel, source, True))
        else:
            plan.jobs.append(Job(file, source, "updated" if old else "added"))
    plan.failed.extend(FileOutcome(path, "failed", error=why) for path, why in kept)
    found = {f.rel for f in files} | {path for path, _ in kept}
    plan.removed = sorted(p for p in previous if p not in found)
    return plan


def ingest(
    roots: Sequence[Path],
    settings: Settings,
    index: str | None = None,
    embedder: Embedder | None = None,
    progress: bool = True,
    batch_files: int = 16,
    full: bool = False,
    sources: Sequence[Source] | None = None,
    ray_address: str | None = None,
) -> IngestReport:
    """Bring the index up to date with `roots` (folders, files, http(s) URLs of sites to crawl; or
    the given `sources`, ingest/sources/) and publish a new snapshot when anything changed.
    With `ray_address`, files are parsed and embedded on that Ray cluster (ingest/cluster.py).

    The previous snapshot serves until the new one is complete; killing the run at any point leaves
    it in place. A file that fails keeps its previous version in the index, if it had one.
    """
    started = time.perf_counter()
    index = index or settings.index
    index_path = settings.index_path(index)
    embedder = embedder or Embedder.from_settings(settings, index)
    sources = list(sources) if sources is not None else sources_for(roots, settings)
    with index_lock(index_path), tempfile.TemporaryDirectory(prefix="km-ingest-") as workdir:
        manifest = new_manifest(index, settings, embedder, [r for s in sources for r in s.roots])
        base, why = reusable_base(index_path, manifest) if not full else (None, "asked for (--full)")
        ctx = SourceContext(index_path, settings, previous_documents(base), Path(workdir), progress)
        found = discover_all(sources, ctx)
        excluded = excluded_paths(index_path)
        files = [f for f in found.files if not _still_excluded(f, excluded)]
        report = IngestReport(index=index, skipped=found.skipped, warnings=found.warnings, crawl=found.counts)
        if not files:
            detail = f" ({found.kept[0][0]}: {found.kept[0][1]})" if found.kept else ""
            raise NothingToPublish(f"no supported documents under {', '.join(map(str, roots))}{detail}")
        plan = plan_changes(files, base, settings.max_file_mb * 1024 * 1024, kept=found.kept)
        plan.full_rebuild = why
        # Links out of the root, pipes, unreadable files: reported; an indexed one becomes removed.
        plan.failed.extend(FileOutcome(rel, "failed", error=why) for rel, why in found.rejected)
        apply_plan(plan, index_path, manifest, settings, embedder, report, progress, batch_files, ray_address)
        outcomes = {f.path: f.status for f in report.files}
        for source in sources:
            if hasattr(source, "finish"):
                source.finish(outcomes)
    report.took_s = round(time.perf_counter() - started, 2)
    return report


def apply_plan(plan: Plan, index_path: Path, manifest: dict, settings: Settings, embedder: Embedder,
               report: IngestReport, progress: bool = False, batch_files: int = 16, ray_address: str | None = None) -> None:
    """Process the plan's jobs and publish the result (nothing is published when nothing changed)."""
    report.full_rebuild = plan.full_rebuild
    report.unchanged = len(plan.unchanged)
    report.files.extend(FileOutcome(path, "unchanged") for path, _, _ in plan.unchanged)
    if plan.empty:
        report.files.extend(plan.failed)
        _finish(report, plan.base)
        return
    writer = SnapshotWriter(index_path, manifest, shard_rows=settings.shard_rows, base=plan.base,
                            index_options=lambda rows: dense.options(settings, rows))
    try:
        for path in plan.removed:
            writer.remove(path)
            report.files.append(FileOutcome(path, "removed"))
        report.removed = len(plan.removed)
        for path, source, moved in plan.unchanged:
            if moved:
                writer.touch(path, source)
        report.files.extend(plan.failed)
        if plan.jobs:
            _process_jobs(plan.jobs, writer, settings, embedder, report, progress, batch_files, ray_address)
        report.files.sort(key=lambda f: f.path)
        _list_problems(report)
        report.added = sum(f.status == "added" for f in report.files)
        report.updated = sum(f.status == "updated" for f in report.files)
        if writer.documents == 0:
            why = "every file failed" if not report.skipped_files else "no file had text to index (failed or skipped)"
            raise NothingToPublish(f"{why}; nothing was published", report=report)
        if not report.added and not report.updated and not report.removed and plan.base is not None:
            writer.abort()  # only failures: the published snapshot stays as it is
            _finish(report, plan.base)
            return
        records, groups = writer.records_of_type("decision"), writer.groups_of_type("decision")
        for doc_id, newer in supersessions(records, groups).items():
            writer.mark_superseded(doc_id, newer)
        for doc_id, older in superseding(records, groups).items():
            writer.mark_supersedes(doc_id, older)
        published = writer.publish(keep=settings.keep_snapshots)
    except BaseException:
        writer.abort()
        raise
    _finish(report, published)


def _local_batches(batches: Sequence[Sequence[tuple[SourceFile, SourceInfo]]], settings: Settings,
                   embedder: Embedder) -> Iterator[tuple[Sequence, list[ParsedFile], list[FileOutcome]]]:
    """Parse in worker processes, embed here: batch i+1 parses while batch i embeds."""
    with ParsePool(settings) as pool:
        pending = pool.parse(batches[0])
        for i, batch in enumerate(batches):
            results = list(pending)
            if i + 1 < len(batches):
                pending = pool.parse(batches[i + 1])
            yield batch, *embed_batch(batch, results, embedder, settings.sentence_vectors == "all")


def _process_jobs(jobs: Sequence[Job], writer: SnapshotWriter, settings: Settings, embedder: Embedder,
                  report: IngestReport, progress: bool, batch_files: int, ray_address: str | None = None) -> None:
    """Parse and embed batch by batch (here, or on a Ray cluster), adding each file to the writer
    in job order, so ids do not depend on where the work ran."""
    status = {j.file.rel: j.status for j in jobs}
    batches = list(_batches([(j.file, j.source) for j in jobs], batch_files))
    with ExitStack() as stack:
        if ray_address:
            from .cluster import RayIngest

            cluster = stack.enter_context(RayIngest(settings, writer.manifest["name"], ray_address))
            report.engine, report.ray_workers = "ray", cluster.workers
            done = cluster.process(batches)
        else:
            done = stack.enter_context(closing(_local_batches(batches, settings, embedder)))
        advance = stack.enter_context(ingest_progress(progress, len(jobs), "ingesting", "files"))
        for batch, parsed, failures in done:
            for p in parsed:
                writer.add(p.doc, p.source, p.chunks, p.vectors, p.windows, p.sentences)
                report.files.append(FileOutcome(p.doc.path, status[p.doc.path], chunks=len(p.chunks)))
                report.embedded_chunks += len(p.chunks)
            for outcome in failures:  # a page that became a redirect stub leaves the index
                if outcome.status == "skipped" and status[outcome.path] == "updated" and writer.remove(outcome.path):
                    report.removed += 1
            report.files.extend(failures)
            advance(len(batch))


def _finish(report: IngestReport, snapshot: Path | None) -> None:
    """Fill the report's totals from the snapshot that now serves."""
    if snapshot is None:
        return
    manifest = json.loads((snapshot / MANIFEST).read_text(encoding="utf-8"))
    report.snapshot = snapshot.name
    report.documents = manifest["counts"]["documents"]
    report.chunks = manifest["counts"]["chunks"]
    report.files.sort(key=lambda f: f.path)
    _list_problems(report)


def _list_problems(report: IngestReport) -> None:
    """The report's `failed` and `skipped_files` lists from its per-file outcomes."""
    report.failed = [{"path": f.path, "error": f.error or ""} for f in report.files if f.status == "failed"]
    report.skipped_files = [{"path": f.path, "reason": f.error or ""} for f in report.files if f.status == "skipped"]


def index_passages(passages: Sequence[dict], settings: Settings, index: str, embedder: Embedder) -> dict[int, str]:
    """Publish ready-made passages (BEIR corpus rows: _id, title, text, optional source) one chunk
    each, unchunked. Consecutive rows of one `source` are one document, in order, each under its
    title as heading, so passages of one section are neighbours, as chunks of an ingested one are.

    Used by `km eval` to score ranking on a passage-level set; returns chunk id -> passage id.
    """
    index_path = settings.index_path(index)
    chunk_to_passage: dict[int, str] = {}
    chunks = [
        Chunk(doc_path=p["_id"], ordinal=0, text=p["text"], source=p.get("source", p["_id"]),
              heading_path=(p.get("title", ""),), anchor=p.get("anchor"), title="")
        for p in passages
    ]
    with index_lock(index_path):
        writer = SnapshotWriter(index_path, new_manifest(index, settings, embedder, []), shard_rows=settings.shard_rows)
        encoded = [encode_chunks(chunks[i : i + 256], embedder, settings.sentence_vectors == "all")
                   for i in range(0, len(chunks), 256)]
        vectors = np.concatenate([v for v, _, _ in encoded]) if encoded else np.zeros((0, 0), np.float32)
        windows = Windows.join([w for _, w, _ in encoded], vectors.shape[1])
        sentences = SentenceVectors.join([s for _, _, s in encoded], vectors.shape[1])
        for _, group in groupby(range(len(passages)), key=lambda i: passages[i].get("source", passages[i]["_id"])):
            rows = list(group)
            first = passages[rows[0]]["_id"]  # unique, unlike a source that may come back later
            parts = [replace(chunks[i], doc_path=first, ordinal=n) for n, i in enumerate(rows)]
            doc = Document(first, "passage", tuple(Section(c.text, c.heading_path, c.anchor) for c in parts), DocumentMeta(title=""))
            span = slice(rows[0], rows[-1] + 1)
            ids = writer.add(doc, SourceInfo(first, "", sum(len(c.text) for c in parts)), parts, vectors[span],
                             windows.take(span), sentences.take(span))
            chunk_to_passage.update(zip(ids, (passages[i]["_id"] for i in rows)))
        writer.publish()
    return chunk_to_passage
