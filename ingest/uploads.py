"""Documents added and deleted one at a time (POST /documents, DELETE /documents/{id}).

Both go through the same pipeline as `km ingest`: a plan with one change is applied to the published
snapshot and a new snapshot is published atomically, under the index's ingest lock. An upload lives
in its own folder, `<index folder>/uploads/<id>/<file name>`, beside a `_meta.yaml` holding what the
request said about it (groups, project, type, tags, authors), so later `km ingest` runs keep it.
Deleting a document found under an ingest root cannot delete the file (it is not ours): its path and
content hash go to `<index folder>/excluded.json`, and ingest leaves it out until the file changes.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
from pathlib import Path
from typing import BinaryIO, Mapping

import yaml

from km_search.embedding.embedder import Embedder
from km_search.errors import DocumentNotFound, UploadRejected
from km_search.settings import Settings
from km_search.index.layout import MANIFEST, write_atomic
from km_search.index.locks import current_snapshot_path, index_lock

from .discovery import SourceFile, with_folder_metadata
from .parsers import PARSERS, format_of
from .pipeline import (
    EXCLUDED, UPLOADS, IngestReport, Job, Plan, new_manifest, apply_plan, excluded_paths, previous_documents,
    reusable_base, source_info,
)


def safe_filename(name: str) -> str:
    """The last path component of a client's file name, with nothing that could climb out of a folder."""
    base = re.split(r"[\\/]", name or "")[-1].strip()
    base = re.sub(r"[\x00-\x1f]", "", base)
    if not base or base in (".", "..") or base.startswith("."):
        raise UploadRejected(f"file name {name!r} is not usable: give the file a plain name like report.pdf")
    if format_of(Path(base)) is None:
        raise UploadRejected(f"{base}: unsupported format; km-search indexes {', '.join(sorted(PARSERS))}",
                             status_code=415)
    return base[:200]


def _current(index_path: Path, settings: Settings, embedder: Embedder, index: str) -> tuple[Path | None, dict]:
    """The snapshot an update applies to, and the manifest the new one gets."""
    base = current_snapshot_path(index_path)
    roots = json.loads((base / MANIFEST).read_text(encoding="utf-8")).get("roots", []) if base else []
    manifest = new_manifest(index, settings, embedder, roots)
    if base is not None:
        reusable, why = reusable_base(index_path, manifest)
        if reusable is None:
            raise UploadRejected(f"index '{index}' must be rebuilt first ({why}): run `km ingest PATH --index {index}`",
                                 status_code=409)
    return base, manifest


def add_upload(
    settings: Settings, index: str, embedder: Embedder, filename: str, data: BinaryIO,
    meta: Mapping[str, object] | None = None,
) -> tuple[IngestReport, str]:
    """Store an uploaded file, index it and publish; returns the report and the document's path.

    A file over KM_MAX_FILE_MB, of an unsupported format or that fails to parse is refused and
    leaves nothing behind.
    """
    name = safe_filename(filename)
    index_path = settings.index_path(index)
    folder = index_path / UPLOADS / secrets.token_hex(6)
    folder.mkdir(parents=True)
    try:
        _save(data, folder / name, int(settings.max_file_mb * 1024 * 1024))
        fields = {k: v for k, v in (meta or {}).items() if v not in (None, "", [], ())}
        if fields:
            (folder / "_meta.yaml").write_text(yaml.safe_dump(dict(fields), allow_unicode=True), encoding="utf-8")
        with index_lock(index_path):
            base, manifest = _current(index_path, settings, embedder, index)
            uploads = (index_path / UPLOADS).resolve()
            file = SourceFile(path=(folder / name).resolve(), rel=f"{UPLOADS}/{folder.name}/{name}", root=uploads)
            (file,), _ = with_folder_metadata([file], git_authors=False)
            plan = Plan(base=base, jobs=[Job(file, source_info(file, settings.max_file_mb * 1024 * 1024), "added")])
            report = IngestReport(index=index)
            apply_plan(plan, index_path, manifest, settings, embedder, report)
        if report.failed or report.skipped_files:
            why = report.failed[0]["error"] if report.failed else report.skipped_files[0]["reason"]
            raise UploadRejected(f"{name}: {why}")
        return report, file.rel
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _save(data: BinaryIO, path: Path, limit: int) -> None:
    written = 0
    with open(path, "wb") as out:
        for block in iter(lambda: data.read(1 << 20), b""):
            written += len(block)
            if written > limit:
                raise UploadRejected(f"the file is over the {limit // 1048576} MB limit (KM_MAX_FILE_MB)", status_code=413)
            out.write(block)
    if written == 0:
        raise UploadRejected("the file is empty")


def delete_document(settings: Settings, index: str, embedder: Embedder, path: str) -> IngestReport:
    """Remove one document from the index and publish; an upload's file goes too, a file under an
    ingest root is left alone on disk but kept out of later runs until it changes."""
    index_path = settings.index_path(index)
    with index_lock(index_path):
        base, manifest = _current(index_path, settings, embedder, index)
        if base is None:
            raise DocumentNotFound(f"no document {path!r} in index '{index}'")
        report = IngestReport(index=index)
        held = previous_documents(base).get(path)
        digest = held.content_hash if held else ""
        apply_plan(Plan(base=base, removed=[path]), index_path, manifest, settings, embedder, report)
        if not report.removed:
            raise DocumentNotFound(f"no document {path!r} in index '{index}'")
        parts = path.split("/")
        if parts[0] == UPLOADS and len(parts) == 3:
            shutil.rmtree(index_path / UPLOADS / parts[1], ignore_errors=True)
        else:
            _exclude(index_path, path, digest)
    return report


def _exclude(index_path: Path, path: str, digest: str) -> None:
    """Remember a deleted document by path and the content hash the index held for it (a file, a
    message of a mailbox or a crawled page alike): it stays out until its content changes."""
    excluded = excluded_paths(index_path)
    excluded[path] = digest
    write_atomic(index_path / EXCLUDED, json.dumps(excluded, indent=2, sort_keys=True))