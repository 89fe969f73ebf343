"""Filters: normalized and checked at the edge, applied inside retrieval before the top candidates are
taken (a filtered query still fills its page), the same over HTTP; hashing embedder, no model."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from ingest.chunking import chunk_document
from km_search.http.app import create_app
from km_search.errors import BadQuery
from km_search.index.filter_sql import filter_sql
from km_search.search.filters import make_filters
from km_search.service import SearchService
from km_search.index.writer import SnapshotWriter
from km_search.index.layout import SourceInfo
from km_search.types import Document, DocumentMeta, SearchFilters, Section


def test_make_filters_normalizes_values():
    f = make_filters(types=["Decision", "lesson,howto", " "], projects="billing", authors="Tomás HERRERA",
                     tags=["MySQL"], paths=["/billing/", "./it/"], modified_after="2023-01-01", modified_before=None)
    assert f == SearchFilters(types=("decision", "lesson", "howto"), projects=("billing",), authors=("tomas herrera",),
                              tags=("mysql",), paths=("billing/", "it/"), modified_after="2023-01-01")
    assert not make_filters() and not make_filters(types=["", " "]) and make_filters(tags="x")


@pytest.mark.parametrize(("after", "before", "message"), [
    ("2024-1-5", None, "modified_after must be a date written YYYY-MM-DD"),
    ("2024-02-30", None, "got '2024-02-30'"),
    (None, "yesterday", "modified_before must be a date"),
    ("2024-05-01", "2024-04-01", "is later than modified_before"),
])
def test_bad_dates_are_bad_queries(after, before, message):
    with pytest.raises(BadQuery, match=message):
        make_filters(modified_after=after, modified_before=before)


def test_filter_sql():
    assert filter_sql(SearchFilters()) == ("1", [])
    where, params = filter_sql(make_filters(types="decision", paths=["a/", "bb/"], modified_before="2024-01-01"))
    assert where == ("d.doc_type IN (?) AND (substr(d.path, 1, ?) = ? OR substr(d.path, 1, ?) = ?)"
                     " AND COALESCE(d.modified, d.created) <= ?")
    assert params == ["decision", 2, "a/", 3, "bb/", "2024-01-01"]


# 24 documents about queues in project "core", 6 weaker ones in "edge": with 3 candidates per
# retriever, an unfiltered query never sees "edge", so a filter applied after top-k would find nothing.
def _docs():
    for i in range(24):
        yield Document(f"core/doc-{i:02d}.md", "md", (Section("queue queue queue backlog consumers lag " * 3, ("Queues",), "q"),),
                       DocumentMeta(title=f"Queue note {i}", authors=("Ann Lee <ann@x.example>",), project="core",
                                    doc_type="howto", tags=("queues",), created=f"20{10 + i % 10}-01-01"))
    for i in range(6):
        yield Document(f"edge/adr-{i}.md", "md", (Section(f"queue mentioned once among other words {i}", ("Edge",), "e"),),
                       DocumentMeta(title=f"Edge decision {i}", authors=("Tomás Herrera <tomas@x.example>",), project="Edge",
                                    doc_type="decision", tags=("Edge", "MySQL"), created="2019-05-05",
                                    modified=f"2024-0{i + 1}-15"))


@pytest.fixture
def service(settings, fake_embedder):
    writer = SnapshotWriter(settings.index_path("default"), {"name": "default", "model": {"name": fake_embedder.model_name}})
    for doc in _docs():
        chunks = chunk_document(doc)
        writer.add(doc, SourceInfo(doc.path, "h", 1), chunks, fake_embedder.encode([c.indexed_text() for c in chunks]))
    writer.publish()
    return SearchService(settings.model_copy(update={"candidates": 3}), embedder=fake_embedder)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
@pytest.mark.parametrize(("filters", "expected"), [
    (dict(types="decision"), 6),
    (dict(projects="edge"), 6),  # case-insensitive
    (dict(authors="TOMAS"), 6),  # accent- and case-insensitive, on the name
    (dict(authors="tomas@x"), 6),  # or the email
    (dict(tags="mysql"), 6),
    (dict(paths="edge/"), 6),
    (dict(paths=["edge/adr-1", "edge/adr-2"]), 2),
    (dict(modified_after="2024-03-15"), 4),  # inclusive; the core notes' created dates are all older
    (dict(modified_after="2018-01-01", modified_before="2024-02-15"), 2 + 4),  # edge 0-1, core created 2018-2019
    (dict(types=["decision", "howto"], projects="core"), 24),
    (dict(types="policy"), 0),
])
def test_filters_restrict_candidates_before_top_k(service, mode, filters, expected):
    f = make_filters(**filters)
    hits = service.search("queue", k=5, mode=mode, filters=f).hits
    assert len(hits) == min(5, expected)
    where, params = filter_sql(f)
    allowed = {r[0] for r in service.retriever.snapshot.db.execute(f"SELECT d.path FROM documents d WHERE {where}", params)}
    assert len(allowed) == expected
    assert {h.doc_path for h in hits} <= allowed
    if expected >= 5:
        many = service.search("queue", k=expected, mode=mode, filters=f).hits
        assert len({h.doc_path for h in many}) == expected  # every matching document can be reached


def test_unfiltered_query_does_not_reach_the_weak_documents(service):
    assert {h.meta.project for h in service.search("queue", k=5).hits} == {"core"}


def test_http_filters_and_their_errors(service, settings):
    with TestClient(create_app(settings, service)) as client:
        body = client.get("/search", params={"q": "queue", "type": ["decision", "lesson"], "tag": "EDGE", "k": 3}).json()
        assert len(body["hits"]) == 3 and {h["type"] for h in body["hits"]} == {"decision"}
        assert len(client.get("/search", params={"q": "queue", "project": "edge,core", "k": 30}).json()["hits"]) == 30
        bad = client.get("/search", params={"q": "queue", "modified_after": "01/02/2024"})
        assert bad.status_code == 422
        assert bad.json() == {"ok": False, "status": 422, "error": "modified_after must be a date written YYYY-MM-DD, "
                              "like 2024-03-01; got '01/02/2024'"}
        params = {p["name"] for p in client.get("/openapi.json").json()["paths"]["/search"]["get"]["parameters"]}
        assert {"type", "project", "author", "tag", "path", "modified_after", "modified_before"} <= params
