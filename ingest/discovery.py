"""Which files an ingest run covers: walking the roots, and the folder metadata each file inherits."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from km_search.errors import KmError
from km_search.types import Contributor

from . import gitlog
from .metadata import SIDECAR_NAMES, FolderDefaults
from .parsers import format_of


@dataclass(frozen=True)
class SourceFile:
    path: Path  # absolute
    rel: str  # relative to its ingest root, forward slashes: what links and reports show
    root: Path | None = field(default=None, compare=False)  # the ingest root: sidecars above it do not apply
    defaults: Mapping[str, Any] = field(default_factory=dict, compare=False)  # merged _meta.yaml sidecars
    contributors: tuple[Contributor, ...] = field(default=(), compare=False)  # from git history
    # What sources other than folders (ingest/sources/) say of an item, docs/sources.md:
    location: str = field(default="", compare=False)  # where it lives when not at `path` (a page's URL): recorded, linked to
    origin: str = field(default="", compare=False)  # the source root it came from when not a folder (the crawl's start URL)
    content_hash: str | None = field(default=None, compare=False)  # known already (the downloaded bytes' sha256)
    unchanged: bool = field(default=False, compare=False)  # the source knows it has not changed (HTTP 304): `path` unread


@dataclass
class Discovery:
    files: list[SourceFile]  # to parse, in a stable order
    skipped: int = 0  # files of types no parser reads
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (path as reports show it, why it is not read)
    # Sources other than folders (ingest/sources/): what failed this run but keeps its indexed version
    # (a page that timed out), what they counted without reading (robots_disallowed, out_of_scope…), warnings.
    kept: list[tuple[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def scan(roots: Sequence[Path], prefixes: Sequence[str] | None = None) -> Discovery:
    """Supported files under the roots, in a stable order; how many other files were skipped; and the
    paths that look like documents but will not be read, each with the reason.

    Hidden files and folders (.git, .DS_Store) and sidecar metadata files are not documents.
    With several roots, paths are prefixed with the root's folder name so they stay unique, unless
    `prefixes` gives each root's prefix.

    Symbolic links are followed only to files inside their ingest root: a file reached both directly
    and through links is indexed once, under its own path (under the first link's path when the walk
    does not reach it directly, e.g. in a hidden folder). Links to anything outside the root, broken
    links and link loops are rejected with the reason. Folder links are not followed (what they point
    to inside the root is walked anyway, so loops cannot hang the walk). Named pipes, sockets,
    devices, unreadable files and unreadable folders are rejected too: nothing downstream blocks on them.
    """
    out = Discovery(files=[])
    for i, root in enumerate(roots):
        root = root.expanduser().resolve()
        if not root.exists():
            raise KmError(f"{root} does not exist")
        if prefixes is not None:
            prefix = prefixes[i]
        else:
            prefix = f"{root.name}/" if len(roots) > 1 and root.is_dir() else ""
        unreadable: list[tuple[Path, str]] = []
        if root.is_file():
            candidates: Iterable[Path] = [root]
            base = root.parent
        else:
            candidates = _walk(root, unreadable)
            base = root
        for path in candidates:
            if path.name in SIDECAR_NAMES:
                continue
            if format_of(path) is None:
                out.skipped += 1
                continue
            rel = prefix + path.relative_to(base).as_posix()
            why = _why_not_readable(path, base)
            if why:
                out.rejected.append((rel, why))
            else:
                out.files.append(SourceFile(path=path, rel=rel, root=base))
        out.rejected.extend((prefix + p.relative_to(base).as_posix(), why) for p, why in unreadable)
    out.files = _once_per_file(out.files)
    out.files.sort(key=lambda f: f.rel)
    out.rejected.sort()
    return out


def _why_not_readable(path: Path, root: Path) -> str | None:
    """Why a candidate file must not be read (None when it may): links leaving the root, broken
    links, loops, files that are not regular files, files this user may not read."""
    try:
        if path.is_symlink():
            target = os.path.realpath(path)
            if not _inside(target, root):
                return f"symbolic link to {target}, outside the ingest root: not followed"
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop: not followed"
        if exc.errno == errno.ENOENT:
            return "broken symbolic link: its target does not exist"
        return f"cannot read file: {exc.strerror or exc}"
    if not stat.S_ISREG(mode):
        return f"not a regular file ({_KINDS.get(stat.S_IFMT(mode), 'a special file')})"
    if not os.access(path, os.R_OK):
        return "cannot read file: permission denied"
    return None


_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a named pipe", stat.S_IFSOCK: "a socket",
          stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}


def _inside(target: str, root: Path) -> bool:
    return os.path.commonpath([target, str(root)]) == str(root)


def _once_per_file(files: list[SourceFile]) -> list[SourceFile]:
    """Drop links to files already found: the file itself wins, else the first link by path."""
    direct = {str(f.path) for f in files if not f.path.is_symlink()}
    seen: set[str] = set()
    out = []
    for f in sorted(files, key=lambda f: f.rel):
        if f.path.is_symlink():
            real = os.path.realpath(f.path)
            if real in direct or real in seen:
                continue
            seen.add(real)
        out.append(f)
    return out


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


def _walk(root: Path, unreadable: list[tuple[Path, str]]) -> Iterator[Path]:
    """Candidate files under root, sorted; folder links outside the root and folders that cannot be
    listed go to `unreadable` with the reason."""

    def failed(exc: OSError) -> None:
        if exc.filename and Path(exc.filename) != root:
            unreadable.append((Path(exc.filename), f"cannot read folder: {exc.strerror or exc}"))
        elif exc.filename:
            raise KmError(f"cannot read {root}: {exc.strerror or exc}") from exc

    for dirpath, dirnames, filenames in os.walk(root, onerror=failed):
        kept = []
        for name in sorted(d for d in dirnames if not d.startswith(".")):
            folder = Path(dirpath) / name
            if folder.is_symlink():  # os.walk does not descend into it; say so when it leaves the root
                target = os.path.realpath(folder)
                if not _inside(target, root):
                    unreadable.append((folder, f"symbolic link to the folder {target}, outside the ingest root: not followed"))
                continue
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name
