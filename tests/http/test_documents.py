"""The source viewer, GET /documents/{id}, over the example corpus ingested with the hashing embedder
(fast): hits link to it, and every deep link the index hands out lands on an element of what it serves."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from helpers import EXAMPLES, HashingEmbedder
from ingest.pipeline import ingest
from km_search.http.app import create_app
from km_search.index.documents import SourceDocument, viewer_url
from km_search.http.viewer import render_sections
from km_search.service import SearchService
from km_search.settings import Settings
from km_search.types import DocumentMeta, Section

_IDS = re.compile(r"""\sid\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("viewer")
    docs = root / "docs"
    shutil.copytree(EXAMPLES, docs)
    settings = Settings(index_dir=root / "indexes", index="example")
    embedder = HashingEmbedder()
    ingest([docs], settings, index="example", embedder=embedder, progress=False)
    service = SearchService(settings, embedder=embedder)
    with TestClient(create_app(settings, service)) as client:
        db = service.retriever.snapshot.db
        documents = {row["format"]: [] for row in db.execute("SELECT format FROM documents")}
        for row in db.execute("SELECT id, path, abs_path, format FROM documents ORDER BY id"):
            documents[row["format"]].append(row)
        yield SimpleNamespace(client=client, db=db, documents=documents)


def _anchors(corpus, doc_id: int) -> set[str]:
    rows = corpus.db.execute("SELECT DISTINCT anchor FROM chunks WHERE doc_id = ? AND anchor IS NOT NULL", (doc_id,))
    return {row["anchor"] for row in rows}


def test_hits_link_to_the_viewer_with_the_fragment_of_their_deep_link(corpus):
    hits = corpus.client.get("/search", params={"q": "postgres billing outage", "k": 30}).json()["hits"]
    assert {h["doc_path"].rsplit(".", 1)[-1] for h in hits} >= {"md", "pdf"}
    for hit in hits:
        path = corpus.db.execute("SELECT path FROM documents WHERE id = ?", (hit["doc_id"],)).fetchone()["path"]
        assert path == hit["doc_path"]
        _, _, fragment = hit["source"].partition("#")
        assert hit["url"] == f"/documents/{hit['doc_id']}" + (f"#{fragment}" if fragment else "")
    assert any(h["url"].endswith(f"#page={h['page']}") for h in hits if h["page"])


def test_every_indexed_anchor_lands_on_a_heading_of_the_text_rendering(corpus):
    checked = set()
    for fmt in ("markdown", "docx", "text"):
        for row in corpus.documents[fmt]:
            response = corpus.client.get(f"/documents/{row['id']}")
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("text/html")
            assert "default-src 'none'" in response.headers["content-security-policy"]
            ids = [html.unescape(i) for i in _IDS.findall(response.text)]
            assert len(ids) == len(set(ids)), f"{row['path']}: duplicate ids"
            missing = _anchors(corpus, row["id"]) - set(ids)
            assert not missing, f"{row['path']}: no element for #{', #'.join(sorted(missing))}"
            checked.add(fmt)
    assert checked == {"markdown", "docx", "text"}


def test_a_rendering_shows_the_document_title_metadata_and_text(corpus):
    row = next(r for r in corpus.documents["markdown"] if r["path"].endswith("adr-012-move-billing-to-postgres.md"))
    page = corpus.client.get(f"/documents/{row['id']}").text
    assert "<title>ADR-012: Move billing to PostgreSQL · km-search</title>" in page
    assert '<h2 id="context">Context</h2>' in page
    assert '<span class="badge">billing</span>' in page
    assert "PostgreSQL 15 on Amazon RDS" in page
    assert f'href="/documents/{row["id"]}?download=1"' in page
    assert "<script" not in page


def test_pdf_and_html_files_are_served_as_they_are(corpus):
    pdf = corpus.documents["pdf"][0]
    response = corpus.client.get(f"/documents/{pdf['id']}")
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"].startswith("inline")
    assert response.content == Path(pdf["abs_path"]).read_bytes()

    for page in corpus.documents["html"]:
        response = corpus.client.get(f"/documents/{page['id']}")
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["content-security-policy"].startswith("sandbox")  # its scripts never run
        assert response.content == Path(page["abs_path"]).read_bytes()
        ids = {html.unescape(i) for i in _IDS.findall(response.text)}
        assert _anchors(corpus, page["id"]) <= ids, page["path"]


def test_download_sends_the_original_file_as_an_attachment(corpus):
    docx = corpus.documents["docx"][0]
    response = corpus.client.get(f"/documents/{docx['id']}", params={"download": "true"})
    assert response.headers["content-disposition"].startswith("attachment")
    assert Path(docx["abs_path"]).name in response.headers["content-disposition"]
    assert response.content == Path(docx["abs_path"]).read_bytes()


def test_unknown_and_vanished_documents_get_a_clear_error(corpus):
    response = corpus.client.get("/documents/99999")
    body = response.json()
    assert response.status_code == 404 and body["ok"] is False and body["status"] == 404
    assert "search again" in body["error"]
    assert corpus.client.get("/documents/0").status_code == 422
    assert corpus.client.get("/documents/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)

    text = corpus.documents["text"][0]
    path = Path(text["abs_path"])
    moved = path.with_name(path.name + ".moved")
    path.rename(moved)
    try:
        response = corpus.client.get(f"/documents/{text['id']}")
        assert response.status_code == 404
        assert "can no longer be read" in response.json()["error"] and str(path) not in response.json()["error"]
    finally:
        moved.rename(path)


def test_viewer_url_keeps_the_fragment():
    assert viewer_url(3, "policies/travel.pdf#page=2") == "/documents/3#page=2"
    assert viewer_url(7, "billing/adr.md#context") == "/documents/7#context"
    assert viewer_url(9, "notes/memo.txt") == "/documents/9"
    assert viewer_url(None, "x.md#a") is None


def _doc(title: str) -> SourceDocument:
    return SourceDocument(id=1, path="team/guide.md", abs_path=Path("/nowhere"), format="markdown", title=title,
                          meta=DocumentMeta(title=title, project="billing", modified="2024-03-01"), content_hash="h")


def test_render_sections_nests_headings_with_their_anchors_and_escapes_text():
    sections = [
        Section("Intro <b>bold</b> & more", ("Guide",), "guide"),
        Section("- one\n- two\n1. first", ("Guide", "Setup"), "setup"),
        Section("a | b\nc | d", ("Guide", "Setup", "Usage"), "usage"),
        Section("the same section again (a second window)", ("Guide", "Setup", "Usage"), "usage"),
        Section("back up a level", ("Guide", "FAQ"), "faq"),
    ]
    page = render_sections(_doc("Guide"), sections)
    assert '<h1 id="guide">Guide</h1>' in page and 'class="doc-title"' not in page  # no title twice
    assert '<h2 id="setup">Setup</h2>' in page and '<h3 id="usage">Usage</h3>' in page
    assert '<h2 id="faq">FAQ</h2>' in page
    assert page.count('id="usage"') == 1 and page.count(">Usage<") == 1
    assert "Intro &lt;b&gt;bold&lt;/b&gt; &amp; more" in page
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n<ol>\n<li>first</li>\n</ol>" in page
    assert "<table>\n<tr><td>a</td><td>b</td></tr>\n<tr><td>c</td><td>d</td></tr>\n</table>" in page


def test_render_sections_titles_documents_whose_headings_do_not_and_keeps_headingless_text():
    page = render_sections(_doc("Travel policy"), [
        Section("Before any heading", (), None),
        Section("Hotels", ("Limits",), "limits"),
    ])
    assert '<h1 class="doc-title">Travel policy</h1>' in page
    assert '<h2 id="limits">Limits</h2>' in page
    assert page.index("Before any heading") < page.index("Limits")
