"""Incremental ingest: only what changed is parsed and embedded, deletions disappear, a file that
breaks keeps its last good version, and snapshots carry unchanged shards over without copying."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from helpers import EXAMPLES, HashingEmbedder
from ingest.pipeline import ingest
from km_search.errors import KmError
from km_search.service import SearchService
from km_search.settings import Settings
from km_search.index.snapshot import Snapshot
from km_search.index.locks import collect_garbage, hold_snapshots, index_lock, release_snapshots


@pytest.fixture
def corpus(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(EXAMPLES, docs)
    settings = Settings(index_dir=tmp_path / "indexes", index="t", parse_workers=0, git_authors=False)
    return docs, settings


def _run(docs, settings, embedder, **kw):
    return ingest([docs], settings, embedder=embedder, progress=False, **kw)


def _lexical(settings, embedder, query):
    service = SearchService(settings, embedder=embedder)
    return [h.doc_path for h in service.search(query, k=20, mode="lexical").hits]


def _touch_later(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def test_second_ingest_of_an_unchanged_corpus_embeds_nothing_and_publishes_nothing(corpus):
    docs, settings = corpus
    embedder = HashingEmbedder()
    first = _run(docs, settings, embedder)
    assert first.added == first.documents == 42 and first.embedded_chunks == first.chunks > 0
    embedded = embedder.encoded
    _touch_later(next(docs.rglob("*.md")))  # a new modification time alone is not a change
    second = _run(docs, settings, embedder)
    assert embedder.encoded == embedded  # the embedder was not called for any passage
    assert (second.added, second.updated, second.removed, second.unchanged, second.embedded_chunks) == (0, 0, 0, 42, 0)
    assert second.snapshot == first.snapshot and second.documents == 42 and second.chunks == first.chunks
    assert {f.status for f in second.files} == {"unchanged"}


def test_changed_added_and_deleted_files(corpus):
    docs, settings = corpus
    embedder = HashingEmbedder()
    first = _run(docs, settings, embedder)
    target = next(docs.rglob("*.md"))
    rel = target.relative_to(docs).as_posix()
    before = Snapshot.open(settings.index_path("t"))
    old_id = before.db.execute("SELECT id FROM documents WHERE path = ?", (rel,)).fetchone()[0]
    target.write_text("# Zanzibar\n\nThe quokka migration runbook replaces everything this page said.\n")
    (docs / "new-note.md").write_text("# Xylophone tuning\n\nWe tune the xylophone every spring.\n")
    gone = next(docs.rglob("*.docx"))
    gone_rel = gone.relative_to(docs).as_posix()
    gone.unlink()
    embedded = embedder.encoded
    report = _run(docs, settings, embedder)
    assert (report.added, report.updated, report.removed, report.unchanged) == (1, 1, 1, 40)
    assert report.embedded_chunks == embedder.encoded - embedded == 2  # one passage each, nothing else
    assert report.snapshot != first.snapshot and report.documents == 42
    statuses = {f.path: f.status for f in report.files}
    assert statuses[rel] == "updated" and statuses["new-note.md"] == "added" and statuses[gone_rel] == "removed"
    assert _lexical(settings, embedder, "quokka") == [rel]
    assert _lexical(settings, embedder, "xylophone") == ["new-note.md"]
    old_words = " ".join(before.db.execute(
        "SELECT text FROM chunks WHERE doc_id = ? ORDER BY ordinal", (old_id,)).fetchone()[0].split()[:6])
    assert rel not in _lexical(settings, embedder, f'"{old_words}"')
    after = Snapshot.open(settings.index_path("t"))
    assert after.db.execute("SELECT id FROM documents WHERE path = ?", (rel,)).fetchone()[0] == old_id  # links hold
    assert after.db.execute("SELECT COUNT(*) FROM documents WHERE path = ?", (gone_rel,)).fetchone()[0] == 0
    # every passage of the snapshot has exactly one vector, and the dense index finds the new text
    ids = {r[0] for r in after.db.execute("SELECT id FROM chunks")}
    stored = {int(i) for shard in after.shards for i in shard.ids}
    assert ids == stored
    service = SearchService(settings, embedder=embedder)
    assert service.search("xylophone tuning spring", k=1, mode="dense").hits[0].doc_path == "new-note.md"


def test_a_file_that_breaks_keeps_its_last_good_version(corpus):
    docs, settings = corpus
    embedder = HashingEmbedder()
    _run(docs, settings, embedder)
    pdf = next(docs.rglob("*.pdf"))
    rel = pdf.relative_to(docs).as_posix()
    pdf.write_bytes(b"%PDF-1.7 truncated")
    report = _run(docs, settings, embedder)
    assert [f["path"] for f in report.failed] == [rel]
    assert report.documents == 42  # the old version still serves
    assert rel in {f.path for f in report.files if f.status == "failed"}


def test_sidecar_change_reprocesses_the_files_under_it(corpus):
    docs, settings = corpus
    embedder = HashingEmbedder()
    _run(docs, settings, embedder)
    folder = next(p.parent for p in docs.rglob("*.md") if p.parent != docs)
    under = sorted(p.relative_to(docs).as_posix() for p in folder.rglob("*") if p.suffix in {".md", ".pdf", ".docx", ".html", ".txt"})
    (folder / "_meta.yaml").write_text("project: Zephyr\n")
    report = _run(docs, settings, embedder)
    assert sorted(f.path for f in report.files if f.status == "updated") == under
    assert report.unchanged == 42 - len(under)


def test_changed_chunking_rebuilds_everything_and_says_why(corpus):
    docs, settings = corpus
    embedder = HashingEmbedder()
    _run(docs, settings, embedder)
    report = _run(docs, settings.model_copy(update={"chunk_words": 120}), embedder)
    assert report.added == 42 and report.unchanged == 0
    assert "chunking settings changed" in report.full_rebuild
    full = _run(docs, settings.model_copy(update={"chunk_words": 120}), embedder, full=True)
    assert full.added == 42 and full.full_rebuild == "asked for (--full)"


def test_a_changed_embedded_context_rebuilds_everything(corpus, monkeypatch):
    """An index embedded before `Chunk.indexed_text` changed what it puts before the text is re-embedded
    whole at the next ingest, never mixed with passages embedded the new way."""
    from km_search.types import Chunk

    docs, settings = corpus
    embedder = HashingEmbedder()
    monkeypatch.setattr(Chunk, "EMBEDDED_CONTEXT", "title > heading path")
    _run(docs, settings, embedder)
    monkeypatch.undo()
    report = _run(docs, settings, embedder)
    assert report.added == 42 and report.unchanged == 0
    assert "chunking settings changed" in report.full_rebuild and "title > heading" in report.full_rebuild
    assert _run(docs, settings, embedder).unchanged == 42


def test_untouched_shards_are_linked_not_rewritten(corpus):
    docs, settings = corpus
    embedder = HashingEmbedder()
    first = _run(docs, settings, embedder)
    (docs / "extra.md").write_text("# Extra\n\nOne more page about yaks.\n")
    # Force two shards: the first (carried over) stays untouched when only a new file arrives.
    from km_search.index import writer

    original = writer.SnapshotWriter.__init__

    def small_shards(self, *a, **kw):
        original(self, *a, **{**kw, "shard_rows": 10_000})
        self.shard_rows = Snapshot.open(settings.index_path("t")).shards[0].ntotal

    writer.SnapshotWriter.__init__ = small_shards
    try:
        second = _run(docs, settings, embedder)
    finally:
        writer.SnapshotWriter.__init__ = original
    for name in ("shard-0000.faiss", "shard-0000.vectors.npy", "shard-0000.bm25/rows.npy"):
        old = settings.index_path("t") / "snapshots" / first.snapshot / name
        new = settings.index_path("t") / "snapshots" / second.snapshot / name
        assert old.stat().st_ino == new.stat().st_ino, name  # the same file: a hard link, no copy
    snapshot = Snapshot.open(settings.index_path("t"))
    assert len(snapshot.shards) == 2 and snapshot.lexical.total == sum(s.ntotal for s in snapshot.shards)
    (best, _), *_ = snapshot.lexical.search("yaks", 5)  # the new shard's postings are searched
    assert snapshot.chunk_rows([best])[best]["doc_path"] == "extra.md"


def test_garbage_collection_keeps_what_a_server_still_reads(corpus):
    docs, settings = corpus
    embedder = HashingEmbedder()
    settings = settings.model_copy(update={"keep_snapshots": 1})
    first = _run(docs, settings, embedder)
    index_path = settings.index_path("t")
    hold_snapshots(index_path, [first.snapshot])
    try:
        for i in range(2):
            (docs / f"n{i}.md").write_text(f"# Note {i}\n\ntext {i}\n")
            _run(docs, settings, embedder)
        names = {p.name for p in (index_path / "snapshots").iterdir()}
        assert first.snapshot in names and len(names) == 2  # held + current; the one between is gone
    finally:
        release_snapshots(index_path)
    collect_garbage(index_path, 1)
    assert first.snapshot not in {p.name for p in (index_path / "snapshots").iterdir()}


def test_a_second_writer_waits_or_is_told_why(tmp_path):
    with index_lock(tmp_path / "i"):
        with pytest.raises(KmError, match="another ingest is writing index 'i'"):
            with index_lock(tmp_path / "i", wait=False):
                pass
    with index_lock(tmp_path / "i", wait=False):  # released
        pass


def test_deleted_through_the_api_stays_out_until_the_file_changes(corpus):
    from ingest.uploads import delete_document

    docs, settings = corpus
    embedder = HashingEmbedder()
    _run(docs, settings, embedder)
    target = next(docs.rglob("*.html"))
    rel = target.relative_to(docs).as_posix()
    report = delete_document(settings, "t", embedder, rel)
    assert report.removed == 1 and report.documents == 41
    assert target.exists()  # not ours to delete
    again = _run(docs, settings, embedder)
    assert again.documents == 41 and rel not in {f.path for f in again.files}
    target.write_text(target.read_text() + "<p>revised</p>")
    back = _run(docs, settings, embedder)
    assert back.documents == 42 and {f.path: f.status for f in back.files}[rel] == "added"
    saved = json.loads((settings.index_path("t") / "excluded.json").read_text())
    assert rel in saved


def test_hostile_folder_through_the_pipeline_fails_each_bad_file_alone(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    outside = tmp_path / "secret.md"
    outside.write_text("# Secret\n\nNot for the index.\n")
    (docs / "good.md").write_text("# Good\n\nA perfectly fine page about otters.\n")
    (docs / "latin1.txt").write_bytes("Café crème for the team: résumé of the week.".encode("latin-1"))
    (docs / "binary.txt").write_bytes(bytes(range(256)) * 16)
    (docs / "escape.md").symlink_to(outside)
    (docs / "loop").symlink_to(docs)
    settings = Settings(index_dir=tmp_path / "indexes", index="h", parse_workers=1, git_authors=False)
    report = ingest([docs], settings, embedder=HashingEmbedder(), progress=False)
    failed = {f["path"]: f["error"] for f in report.failed}
    assert set(failed) >= {"binary.txt", "escape.md"}
    assert "outside" in failed["escape.md"]
    assert report.documents == 2 and report.added == 2
    text = " ".join(r[0] for r in Snapshot.open(settings.index_path("h")).db.execute("SELECT text FROM chunks"))
    assert "Café crème" in text and "Not for the index" not in text
