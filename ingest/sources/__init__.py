"""Where documents come from: one small interface behind folders (with their git history and the
index's uploads) and intranet web sites, so a new connector (Confluence, SharePoint, Drive…) is one
module here and never a change to the pipeline. docs/sources.md has the contract and a worked example.

A **Source** has `roots` (the identities recorded in the snapshot's manifest: a folder's absolute
path, a crawl's start URL) and `discover(ctx)`, which returns a `Discovery` of **SourceItems**
(`ingest.discovery.SourceFile`): plain frozen data, picklable, so a batch can be parsed anywhere the
item's `path` can be read (worker processes today, Ray tasks later). An item carries

- `rel`: its stable identity, the document path hits show (a folder-relative path, a page URL);
- `path`: a local file the parsers read (a crawler's downloaded temporary file), whose suffix picks
  the parser;
- change detection: `content_hash` when the source hashed the bytes, or `unchanged=True` when it
  knows without reading (an HTTP 304); neither: the pipeline compares size, mtime and hash as for files;
- `location` / `origin`: what the viewer links to and the root it belongs to, when not a local file;
- metadata hints: `defaults` (groups, project, type, tags, authors, as a _meta.yaml sidecar gives them)
  and `contributors` (git history).

Everything found in no source's Discovery is removed from the index, except what a source `kept`
(it failed this run: the indexed version stays). `finish(outcomes)`, when a source has it, is told
each path's final status after the run (the crawler keeps its ETags for the pages now indexed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

from km_search.settings import Settings

from ..discovery import Discovery, SourceFile, scan, with_folder_metadata

SourceItem = SourceFile  # the one item type every source yields

UPLOADS = "uploads"  # <index folder>/uploads/: documents added through POST /documents


class Previous(NamedTuple):
    """What the snapshot a run starts from holds of one document."""

    content_hash: str
    size: int
    mtime_ns: int | None
    meta_hash: str


@dataclass
class SourceContext:
    """What a source may use while it discovers: the index it feeds, the previous versions of its
    documents (empty on a full rebuild), a scratch folder that lives until the run's parsing is done."""

    index_path: Path
    settings: Settings
    previous: Mapping[str, Previous] = field(default_factory=dict)
    workdir: Path | None = None
    progress: bool = False


@runtime_checkable
class Source(Protocol):
    roots: Sequence[str]

    def discover(self, ctx: SourceContext) -> Discovery: ...


def is_url(value: object) -> bool:
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


def index_roots(roots: Sequence[Path], index_path: Path) -> tuple[list[Path], list[str] | None]:
    """The folders an index is built from: the given roots plus its uploads folder, with path prefixes."""
    roots = [Path(r).expanduser().resolve() for r in roots]
    uploads = index_path / UPLOADS
    if not uploads.is_dir() or not any(uploads.iterdir()):
        return roots, None
    prefixes = [f"{r.name}/" if len(roots) > 1 and r.is_dir() else "" for r in roots]
    return [*roots, uploads.resolve()], [*prefixes, f"{UPLOADS}/"]


class FolderSource:
    """Files under folders (and single files), with their sidecar metadata and git authors, plus the
    index's uploads folder: exactly what `km ingest PATH…` has always read (discovery.scan)."""

    def __init__(self, folders: Sequence[Path]):
        self.folders = [Path(f) for f in folders]
        self.roots = [str(f.expanduser().resolve()) for f in self.folders]

    def discover(self, ctx: SourceContext) -> Discovery:
        all_roots, prefixes = index_roots(self.folders, ctx.index_path)
        if not all_roots:
            return Discovery(files=[])
        found = scan(all_roots, prefixes)
        found.files, warnings = with_folder_metadata(found.files, ctx.settings.git_authors)
        found.warnings.extend(warnings)
        if ctx.workdir is not None:
            found.files, found.rejected = split_mailboxes(found.files, ctx.workdir, found.rejected)
        return found


def split_mailboxes(
    files: Sequence[SourceFile], workdir: Path, rejected: list[tuple[str, str]]
) -> tuple[list[SourceFile], list[tuple[str, str]]]:
    """Each message of an .mbox archive as an item of its own, `archive.mbox#msg=N`: one document per
    message, with its sender as author (so experts learn who wrote what) and its own change check
    (a message added to the archive embeds that message only). The message's bytes go to the scratch
    folder as an .eml file; the document keeps the archive as its location, which the viewer shows."""
    import hashlib

    from ..parsers.mail import is_blank_message, mbox_raw_messages
    from ..workers import reason

    out: list[SourceFile] = []
    for file in files:
        if file.path.suffix.lower() != ".mbox":
            out.append(file)
            continue
        try:
            messages = mbox_raw_messages(file.path)
        except Exception as exc:  # noqa: BLE001 - an unreadable archive fails alone, with its reason
            rejected.append((file.rel, reason(exc)))
            continue
        stem = hashlib.sha1(file.rel.encode()).hexdigest()[:12]
        for n, raw in messages:
            if is_blank_message(raw):
                continue
            eml = workdir / f"mbox-{stem}-{n}.eml"
            eml.write_bytes(raw)
            out.append(replace(file, path=eml, rel=f"{file.rel}#msg={n}", location=str(file.path),
                               content_hash=hashlib.sha256(raw).hexdigest()))
    return out, rejected


def sources_for(targets: Sequence[Path | str], settings: Settings) -> list[Source]:
    """`km ingest` arguments as sources: http(s) URLs are web sites to crawl, anything else a file or
    folder (all folders are one FolderSource, so their path prefixes work as before)."""
    folders = [Path(t) for t in targets if not is_url(t)]
    out: list[Source] = [FolderSource(folders)]  # always: it also reads the uploads folder
    if any(is_url(t) for t in targets):
        from .web import WebSource

        out.extend(WebSource(str(t), settings) for t in targets if is_url(t))
    return out


def discover_all(sources: Sequence[Source], ctx: SourceContext) -> Discovery:
    """Every source's Discovery as one, items in a stable order. Two sources yielding one identity:
    the first wins."""
    merged = Discovery(files=[])
    seen: set[str] = set()
    for source in sources:
        found = source.discover(ctx)
        for item in found.files:
            if item.rel not in seen:
                seen.add(item.rel)
                merged.files.append(item)
        merged.skipped += found.skipped
        merged.rejected.extend(found.rejected)
        merged.kept.extend(found.kept)
        merged.warnings.extend(found.warnings)
        for key, n in found.counts.items():
            merged.counts[key] = merged.counts.get(key, 0) + n
    merged.files.sort(key=lambda f: f.rel)
    merged.rejected.sort()
    return merged
