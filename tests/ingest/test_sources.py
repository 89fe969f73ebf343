"""The source interface (ingest/sources/): the worked example of docs/sources.md, a connector for a
folder of JSON exports (as a wiki or a ticket system exports pages), run through the same pipeline
as folders; and the items every source yields are plain, picklable data."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

from helpers import HashingEmbedder

from ingest.discovery import Discovery
from ingest.pipeline import ingest
from ingest.sources import FolderSource, SourceContext, SourceItem
from km_search.access.principals import ANONYMOUS
from km_search.service import SearchService
from km_search.settings import Settings

FAQ = Path(__file__).resolve().parent / "data" / "debian-faq"


# --- docs/sources.md: "A new connector, worked through" (keep the two in step) ----------------------
class JsonExports:
    """Pages exported as JSON files: {"id", "title", "body_html", "space", "authors", "version"}."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.roots = [f"json-exports:{folder.resolve()}"]  # identity in the manifest

    def discover(self, ctx: SourceContext) -> Discovery:
        out = Discovery(files=[])
        for export in sorted(self.folder.glob("*.json")):
            try:
                page = json.loads(export.read_text(encoding="utf-8"))
                rel = f"wiki/{page['space']}/{page['id']}"  # stable identity: hits' doc_path
                html = f"<html><head><title>{page['title']}</title></head><body>{page['body_html']}</body></html>"
            except (ValueError, KeyError) as exc:
                out.rejected.append((export.name, f"not a page export: {exc}"))
                continue
            digest = hashlib.sha256(f"{page.get('version')}\n{html}".encode()).hexdigest()
            old = ctx.previous.get(rel)
            if old is not None and old.content_hash == digest:  # unchanged: nothing written, read or embedded
                out.files.append(SourceItem(path=None, rel=rel, location=rel, origin=self.roots[0], unchanged=True))
                continue
            path = ctx.workdir / "json-exports" / f"{page['id']}.html"  # the HTML parser reads it
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(html, encoding="utf-8")
            out.files.append(SourceItem(
                path=path, rel=rel, location=rel, origin=self.roots[0], content_hash=digest,
                defaults={"project": page["space"], "authors": page.get("authors", []), "groups": ["staff"]},
            ))
        return out
# --- end of the worked example ---------------------------------------------------------------------


def _export(folder: Path, page_id: str, chapter: str, version: int = 1) -> None:
    body = (FAQ / f"{chapter}.en.html").read_text(encoding="utf-8")
    body = body.split("<body", 1)[1].split(">", 1)[1].rsplit("</body>", 1)[0]
    folder.joinpath(f"{page_id}.json").write_text(json.dumps({
        "id": page_id, "title": chapter, "body_html": body, "space": "helpdesk",
        "authors": ["Ann Lee <ann@example.org>"], "version": version}), encoding="utf-8")


def test_a_new_connector_needs_no_pipeline_change(tmp_path):
    exports = tmp_path / "exports"
    exports.mkdir()
    _export(exports, "101", "kernel")
    _export(exports, "102", "pkgtools")
    (exports / "broken.json").write_text("{not json")
    settings = Settings(index_dir=tmp_path / "indexes", index="wiki", parse_workers=0, git_authors=False)
    embedder = HashingEmbedder()
    first = ingest([], settings, embedder=embedder, progress=False, sources=[JsonExports(exports)])
    assert {f.path: f.status for f in first.files} == {
        "wiki/helpdesk/101": "added", "wiki/helpdesk/102": "added", "broken.json": "failed"}
    service = SearchService(settings, embedder=embedder)
    hit = service.search("dpkg apt package management tools", k=1, mode="lexical").hits[0]
    assert hit.doc_path == "wiki/helpdesk/102" and hit.source.startswith("wiki/helpdesk/102#")
    assert hit.meta.project == "helpdesk" and hit.meta.authors == ("Ann Lee <ann@example.org>",)
    assert not service.search("dpkg apt package management tools", k=1, mode="lexical", principal=ANONYMOUS).hits
    again = ingest([], settings, embedder=embedder, progress=False, sources=[JsonExports(exports)])
    assert again.embedded_chunks == 0 and again.unchanged == 2
    (exports / "101.json").unlink()
    _export(exports, "102", "pkgtools", version=2)
    third = ingest([], settings, embedder=embedder, progress=False, sources=[JsonExports(exports)])
    assert {f.path: f.status for f in third.files if f.status != "failed"} == {
        "wiki/helpdesk/101": "removed", "wiki/helpdesk/102": "updated"}


def test_items_are_plain_picklable_data(tmp_path):
    (tmp_path / "a.md").write_text("# A\n\ntext\n")
    settings = Settings(index_dir=tmp_path / "indexes", git_authors=False)
    ctx = SourceContext(tmp_path / "indexes" / "x", settings, workdir=tmp_path)
    found = FolderSource([tmp_path]).discover(ctx)
    assert [f.rel for f in found.files] == ["a.md"]
    assert pickle.loads(pickle.dumps(found.files)) == found.files
