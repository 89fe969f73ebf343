"""The source viewer's core: a document of the published index, by id, and where its file is.

Files are found only as documents of the published snapshot, by id: no path is ever taken from a
request. A document the reader may not read (its groups, km_search/access/principals.py) is answered
exactly like an unknown id, so its existence does not leak; and a file is served only when its real
path (symlinks resolved) lies inside the ingest root it was found under, so nothing outside the
ingested folders can be reached through a crafted index entry or a symlink. km_search/http/viewer.py
renders what browsers cannot show themselves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from km_search.errors import DocumentNotFound
from km_search.index.snapshot import Snapshot, meta_from_row
from km_search.types import DocumentMeta

# Formats a browser displays itself, with the media type to serve them as.
SERVED_AS_IS = {"pdf": "application/pdf", "html": "text/html; charset=utf-8"}


@dataclass(frozen=True)
class SourceDocument:
    """A document of the published snapshot and where its file is."""

    id: int
    path: str  # relative to the ingested root, as in hits' `doc_path`
    abs_path: Path | None  # None for a web page: see `url`
    format: str
    title: str
    meta: DocumentMeta
    content_hash: str
    url: str | None = None  # a crawled page's own URL (ingest/sources/web.py): the viewer redirects there

    @property
    def media_type(self) -> str | None:
        """The media type when browsers show the original file, None when it needs a text rendering."""
        return SERVED_AS_IS.get(self.format)


def find_document(snapshot: Snapshot, doc_id: int, readable: Sequence[str] | None = None) -> SourceDocument:
    """The document with this id, when `readable` (the reader's groups; None: all) may read it."""
    row = snapshot.document_row(doc_id)
    if row is None or not may_read(row["groups"], readable):
        raise DocumentNotFound(
            f"no document {doc_id} in the published snapshot of index '{snapshot.manifest.get('name')}': "
            "document links hold for the snapshot that returned them; search again for a fresh link"
        )
    if is_web_url(row["abs_path"]):  # a crawled page: no local file, the viewer sends the browser to it
        url = row["abs_path"]
        if not is_web_url(row["root"]) or not url_under(url, row["root"]):
            raise DocumentNotFound(f"'{row['path']}' is indexed with a URL outside the site it was crawled from")
        return SourceDocument(id=row["id"], path=row["path"], abs_path=None, format=row["format"], title=row["title"],
                              meta=meta_from_row(row), content_hash=row["content_hash"], url=url)
    roots = [row["root"]] if row["root"] else list(snapshot.manifest.get("roots", []))
    abs_path = confined_path(row["abs_path"], row["path"], roots)
    if abs_path is None:
        raise DocumentNotFound(
            f"'{row['path']}' is indexed but its file can no longer be read on the server (gone, or not inside "
            "the ingested folders): re-ingest the index to drop or refresh it"
        )
    return SourceDocument(
        id=row["id"], path=row["path"], abs_path=abs_path, format=row["format"], title=row["title"],
        meta=meta_from_row(row), content_hash=row["content_hash"],
    )


def is_web_url(value: object) -> bool:
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


def url_under(url: str, root: str) -> bool:
    """Whether a page URL lies on the crawled site: same scheme, host and port as the crawl's start
    URL (redirects and canonical links never leave that scope at ingest)."""
    a, b = urlsplit(url), urlsplit(root)
    return (a.scheme.lower(), a.netloc.lower()) == (b.scheme.lower(), b.netloc.lower()) and "\x00" not in url


def may_read(groups_json: str, readable: Sequence[str] | None) -> bool:
    """Whether a reader with these groups (None: every group) may read a document with these groups."""
    if readable is None:
        return True
    try:
        groups = json.loads(groups_json)
    except (TypeError, ValueError):
        return False
    return isinstance(groups, list) and not set(readable).isdisjoint(groups)


def confined_path(abs_path: str, rel_path: str, roots: Sequence[str]) -> Path | None:
    """The real path of an indexed file when it is a file inside one of the ingest roots: no
    absolute or '..' relative path, and no symlink (of the file or a folder) leading out of the
    root. None otherwise: nothing outside the ingested folders is ever served."""
    rel = PurePosixPath(rel_path)
    if rel.is_absolute() or ".." in rel.parts or "\x00" in abs_path:
        return None
    try:
        real = Path(abs_path).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    if not real.is_file():
        return None
    for root in roots:
        try:
            base = Path(root).resolve(strict=True)
        except (OSError, RuntimeError, ValueError):
            continue
        if real == base or base in real.parents:
            return real
    return None


def viewer_url(doc_id: int | None, source: str) -> str | None:
    """The viewer's link for a hit: `/documents/{doc_id}` plus the deep link's fragment ('#page=2', '#usage')."""
    if doc_id is None:
        return None
    _, _, fragment = source.partition("#")
    return f"/documents/{doc_id}" + (f"#{fragment}" if fragment else "")
