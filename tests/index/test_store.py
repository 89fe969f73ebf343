import json

import numpy as np
import pytest

from ingest.chunking import chunk_document
from km_search.errors import IndexNotFound
from km_search.index.layout import CURRENT, SourceInfo
from km_search.index.snapshot import Snapshot
from km_search.index.writer import SnapshotWriter
from km_search.index.locks import collect_garbage, current_snapshot_path
from km_search.types import Document, DocumentMeta, Section


def _doc(path, text, **meta):
    return Document(path=path, format="md", sections=(Section(text, ("T",), anchor="t"),),
                    meta=DocumentMeta(title=path, **meta))


def _write(index_path, embedder, docs, shard_rows=500_000):
    writer = SnapshotWriter(index_path, {"name": "t", "model": {"name": embedder.model_name}}, shard_rows=shard_rows)
    for doc in docs:
        chunks = chunk_document(doc)
        writer.add(doc, SourceInfo("/abs/" + doc.path, "hash", 10), chunks, embedder.encode([c.text for c in chunks]))
    return writer


def test_publish_then_open_roundtrip(tmp_path, fake_embedder):
    docs = [_doc("a.md", "alpha beta gamma", authors=("Ann",), project="p1"), _doc("b.md", "delta epsilon")]
    path = _write(tmp_path / "t", fake_embedder, docs).publish()
    snap = Snapshot.open(tmp_path / "t")
    assert snap.path == path
    assert snap.manifest["counts"] == {"documents": 2, "chunks": 2}
    assert snap.manifest["model"] == {"name": "hashing-test", "dimension": 256}
    hits = snap.dense_search(fake_embedder.encode(["delta epsilon"])[0], 2)
    rows = snap.chunk_rows([hits[0][0]])
    assert rows[hits[0][0]]["doc_path"] == "b.md"
    first = snap.chunk_rows([1])[1]
    assert json.loads(first["authors"]) == ["Ann"] and first["project"] == "p1" and first["source"] == "a.md#t"


def test_search_spans_all_shards(tmp_path, fake_embedder):
    docs = [_doc(f"d{i}.md", f"word{i} common text") for i in range(5)]
    _write(tmp_path / "t", fake_embedder, docs, shard_rows=2).publish()
    snap = Snapshot.open(tmp_path / "t")
    assert [s["rows"] for s in snap.manifest["shards"]] == [2, 2, 1]
    found = snap.dense_search(fake_embedder.encode(["word4 common text"])[0], 5)
    assert found[0][0] == 5 and len(found) == 5
    assert [score for _, score in found] == sorted((s for _, s in found), reverse=True)


def test_unpublished_snapshot_is_invisible_and_cleaned_up(tmp_path, fake_embedder):
    with pytest.raises(IndexNotFound, match="km ingest"):
        Snapshot.open(tmp_path / "t")
    _write(tmp_path / "t", fake_embedder, [_doc("a.md", "first version")]).publish()
    first = current_snapshot_path(tmp_path / "t")
    unfinished = _write(tmp_path / "t", fake_embedder, [_doc("a.md", "second version")])  # never published
    assert current_snapshot_path(tmp_path / "t") == first
    assert Snapshot.open(tmp_path / "t").chunk_rows([1])[1]["text"] == "first version"
    unfinished.db.close()
    _write(tmp_path / "t", fake_embedder, [_doc("a.md", "third version")]).publish()
    leftovers = [p.name for p in (tmp_path / "t" / "snapshots").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_garbage_collection_keeps_newest_and_current(tmp_path, fake_embedder):
    for i in range(4):
        _write(tmp_path / "t", fake_embedder, [_doc("a.md", f"version {i}")]).publish(keep=10)
    names = sorted(p.name for p in (tmp_path / "t" / "snapshots").iterdir())
    assert len(names) == 4
    removed = collect_garbage(tmp_path / "t", keep=2)
    assert removed == names[:2]
    assert (tmp_path / "t" / CURRENT).read_text().strip() == names[-1]


def test_vector_count_must_match_chunks(tmp_path, fake_embedder):
    writer = SnapshotWriter(tmp_path / "t", {"name": "t"})
    doc = _doc("a.md", "text")
    with pytest.raises(ValueError, match="1 chunks but 0 vectors"):
        writer.add(doc, SourceInfo("/a", "h", 1), chunk_document(doc), np.zeros((0, 4), dtype=np.float32))


@pytest.mark.parametrize("old", [1, 6])  # 6: passages of joined sections without their parts' links
def test_snapshot_of_an_older_format_is_refused_with_how_to_rebuild(tmp_path, fake_embedder, old):
    from km_search.errors import IndexMismatch

    path = _write(tmp_path / "t", fake_embedder, [_doc("a.md", "alpha")]).publish()
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**manifest, "format_version": old}))
    with pytest.raises(IndexMismatch, match=rf"has format {old}, this km-search reads 7: rebuild it with `km ingest PATH --index t`"):
        Snapshot.open(tmp_path / "t")


def test_people_rows_and_filtered_dense_search(tmp_path, fake_embedder):
    from km_search.search.filters import make_filters
    from km_search.types import Contributor

    docs = [_doc("a.md", "alpha beta", authors=("Ann Lee <Ann@X.example>", "Ann Lee <ann@x.example>", "Bob")),
            _doc("b.md", "alpha gamma", contributors=(Contributor("Cy", "cy+git@x.example", 2, "2024-01-01"),
                                                      Contributor("dependabot[bot]", "bot@x.example", 5)))]
    _write(tmp_path / "t", fake_embedder, docs).publish()
    snap = Snapshot.open(tmp_path / "t")
    rows = [tuple(r) for r in snap.db.execute("SELECT doc_id, role, name, email, key, commits, last_date FROM people")]
    assert rows == [(1, "author", "Ann Lee", "ann@x.example", "ann@x.example", 0, None),
                    (1, "author", "Bob", None, "name:bob", 0, None),
                    (2, "contributor", "Cy", "cy@x.example", "cy@x.example", 2, "2024-01-01")]
    query = fake_embedder.encode(["alpha beta"])[0]
    assert [cid for cid, _ in snap.dense_search(query, 5)] == [1, 2]
    allowed = snap.allowed_chunks(make_filters(authors="cy"))
    assert list(allowed) == [2] and [cid for cid, _ in snap.dense_search(query, 5, allowed)] == [2]
    assert snap.allowed_chunks(make_filters()) is None
    assert snap.dense_search(query, 5, snap.allowed_chunks(make_filters(authors="nobody"))) == []
