"""The HTTP contract, over a small index built with the hashing embedder (fast, no model)."""

import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from ingest.chunking import chunk_document
from km_search.http.app import create_app
from km_search.service import SearchService
from km_search.index.writer import SnapshotWriter
from km_search.index.layout import SourceInfo
from km_search.types import Document, DocumentMeta, Section

DOCS = [
    ("billing/adr-12.md", "Move billing to PostgreSQL", "We moved billing to PostgreSQL because MySQL lacked transactional DDL."),
    ("it/vpn.md", "VPN setup", "Install the WireGuard client and import the profile from the IT portal."),
    ("hr/travel.md", "Travel policy", "Hotels in London are reimbursed up to 220 GBP per night."),
]


@pytest.fixture
def client(settings, fake_embedder):
    writer = SnapshotWriter(settings.index_path("default"), {"name": "default", "model": {"name": fake_embedder.model_name}})
    for path, title, text in DOCS:
        doc = Document(path=path, format="md", sections=(Section(text, (title,), anchor="top"),),
                       meta=DocumentMeta(title=title, authors=("Ann Lee",), project=path.split("/")[0]))
        chunks = chunk_document(doc)
        writer.add(doc, SourceInfo(path, "h", 1), chunks, fake_embedder.encode([c.indexed_text() for c in chunks]))
    writer.publish()
    app = create_app(settings, SearchService(settings, embedder=fake_embedder))
    with TestClient(app) as c:
        yield c


def test_search_returns_ranked_hits_with_links(client):
    body = client.get("/search", params={"q": "why PostgreSQL for billing?", "k": 2}).json()
    assert len(body["hits"]) == 2
    top = body["hits"][0]
    assert top["source"] == "billing/adr-12.md#top"
    assert top["title"] == "Move billing to PostgreSQL"
    assert "<mark>PostgreSQL</mark>" in top["snippet"]
    assert top["project"] == "billing" and top["authors"] == ["Ann Lee"]
    assert body["hits"][0]["score"] >= body["hits"][1]["score"]


def test_paging_continues_the_ranking(client):
    full = [h["source"] for h in client.get("/search", params={"q": "policy vpn billing", "k": 3}).json()["hits"]]
    second = client.get("/search", params={"q": "policy vpn billing", "k": 2, "offset": 1}).json()["hits"]
    assert [h["source"] for h in second] == full[1:3]
    assert client.get("/search", params={"q": "vpn", "offset": 50}).json()["hits"] == []


def test_modes(client):
    lexical = client.get("/search", params={"q": "WireGuard", "mode": "lexical"}).json()["hits"]
    assert [h["source"] for h in lexical] == ["it/vpn.md#top"]
    assert lexical[0]["dense_score"] is None and lexical[0]["lexical_score"] > 0


@pytest.mark.parametrize(
    "params, fragment",
    [({}, "q: Field required"), ({"q": "x", "k": 0}, "k: "), ({"q": "x", "k": 1000}, "k: "),
     ({"q": "   "}, "the query is empty"), ({"q": "x", "mode": "magic"}, "mode: ")],
)
def test_bad_requests_get_one_readable_error_shape(client, params, fragment):
    response = client.get("/search", params=params)
    assert response.status_code == 422
    body = response.json()
    assert body["ok"] is False and body["status"] == 422 and fragment in body["error"]


def test_health_and_stats(client):
    assert client.get("/healthz").json()["status"] == "ok"
    stats = client.get("/stats").json()
    assert stats["documents"] == 3 and stats["chunks"] == 3 and stats["model"]["name"] == "hashing-test"
    assert client.get("/openapi.json").json()["paths"]["/search"]["get"]["parameters"]


def test_missing_index_is_a_clear_503(settings, fake_embedder):
    app = create_app(settings, SearchService(settings, "nope", embedder=fake_embedder))
    with TestClient(app) as c:
        for url in ("/healthz", "/search?q=hello", "/stats"):
            response = c.get(url)
            assert response.status_code == 503
            assert "km ingest PATH --index nope" in response.json()["error"]


def test_model_mismatch_is_refused(client, settings):
    from km_search.embedding.embedder import Embedder

    other = SearchService(settings, embedder=Embedder("/no/such/model"))
    with pytest.raises(Exception, match="built with hashing-test but KM_MODEL is /no/such/model"):
        other.load()


def test_importing_the_package_loads_nothing_heavy():
    code = ("import sys, km_search.http.app, km_search.cli.app, km_search.service, ingest.pipeline, evaluation.retrieval, "
            "km_search.cluster.serving, ingest.cluster; "
            "heavy = [m for m in ('torch', 'sentence_transformers', 'faiss', 'transformers', 'ray') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_search_grouped_by_document(settings, fake_embedder):
    """group=document: one entry per document with its best passage and more from it; k counts documents."""
    writer = SnapshotWriter(settings.index_path("default"), {"name": "default", "model": {"name": fake_embedder.model_name}})
    long_doc = Document(path="billing/guide.md", format="md", meta=DocumentMeta(title="Billing guide"), sections=tuple(
        Section(f"Billing invoices part {i}: the billing run creates invoices for customers. "
                + " ".join(f"filler{i}x{j}" for j in range(320)), ("Billing guide", f"Part {i}"),
                anchor=f"part-{i}") for i in range(6)))  # long sections: each at least one passage
    docs = [long_doc] + [
        Document(path=path, format="md", sections=(Section(text, (title,), anchor="top"),), meta=DocumentMeta(title=title))
        for path, title, text in DOCS]
    for doc in docs:
        chunks = chunk_document(doc)
        writer.add(doc, SourceInfo(doc.path, "h", 1), chunks, fake_embedder.encode([c.indexed_text() for c in chunks]))
    writer.publish()
    with TestClient(create_app(settings, SearchService(settings, embedder=fake_embedder))) as c:
        flat = c.get("/search", params={"q": "billing invoices customers", "k": 3, "mode": "lexical"}).json()
        assert flat["groups"] is None and len(flat["hits"]) == 3
        assert [h["doc_path"] for h in flat["hits"]] == ["billing/guide.md"] * 3  # one document fills the page
        body = c.get("/search", params={"q": "billing invoices customers", "k": 2, "group": "document", "mode": "lexical"}).json()
        groups = body["groups"]
        assert [g["doc_path"] for g in groups][0] == "billing/guide.md" and len(groups) == 2
        first = groups[0]
        assert first["title"] == "Billing guide" and first["doc_id"] == first["best"]["doc_id"]
        assert 1 <= len(first["more"]) <= 3 and all(h["doc_path"] == "billing/guide.md" for h in first["more"])
        assert first["best"]["score"] >= max(h["score"] for h in first["more"])
        assert [h["chunk_id"] for h in body["hits"]] == [g["best"]["chunk_id"] for g in groups]
        second_page = c.get("/search", params={"q": "billing invoices customers", "k": 2, "offset": 1, "group": "document", "mode": "lexical"}).json()
        assert [g["doc_path"] for g in second_page["groups"]] == [g["doc_path"] for g in groups][1:]
        assert c.get("/search", params={"q": "billing", "group": "pages"}).status_code == 422
