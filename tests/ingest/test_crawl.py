"""Crawling an intranet site (ingest/sources/web.py): a real HTTP server on 127.0.0.1 serving chapters
of the Debian FAQ (data/debian-faq/) as a manual under /manual/, with an index page, a chapter two
links deep, a robots.txt that disallows /manual/private/, redirects, a canonical duplicate, a PDF,
broken links, an image, links out of scope, and ETag / Last-Modified support. The server logs every
request, so "never fetched" and "asked conditionally" are checked on what it saw."""

from __future__ import annotations

import email.utils
import hashlib
import http.server
import json
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import EXAMPLES, KM, HashingEmbedder, start_server

from ingest.pipeline import ingest
from ingest.sources.web import Scope, normalize
from km_search.service import SearchService
from km_search.settings import Settings

FAQ = Path(__file__).resolve().parent / "data" / "debian-faq"
CHAPTERS = ["basic-defs", "getting-debian", "pkgtools", "uptodate", "kernel", "customizing", "support"]


@dataclass
class Resource:
    body: bytes
    content_type: str
    mtime: float
    etag: bool = True  # the PDF has only Last-Modified


class Site:
    """A web server on a free port of 127.0.0.1 (loopback only) serving `resources` by path,
    `redirects` (path -> location) with 301, everything else 404; `requests` logs (path, headers)."""

    def __init__(self):
        self.resources: dict[str, Resource] = {}
        self.redirects: dict[str, str] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                site.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                path = urllib.parse.urlsplit(self.path).path
                if path in site.redirects:
                    self.send_response(301)
                    self.send_header("Location", site.redirects[path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                res = site.resources.get(path)
                if res is None:
                    self.send_error(404)
                    return
                etag = '"' + hashlib.sha1(res.body).hexdigest()[:16] + '"' if res.etag else None
                modified = email.utils.formatdate(res.mtime, usegmt=True)
                inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
                fresh = (etag is not None and inm == etag) if inm else (
                    ims is not None and email.utils.parsedate_to_datetime(ims).timestamp() >= int(res.mtime))
                self.send_response(304 if fresh else 200)
                if etag:
                    self.send_header("ETag", etag)
                self.send_header("Last-Modified", modified)
                if fresh:
                    self.end_headers()
                    return
                self.send_header("Content-Type", res.content_type)
                self.send_header("Content-Length", str(len(res.body)))
                self.end_headers()
                self.wfile.write(res.body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def put(self, path: str, body: bytes | str, content_type: str = "text/html; charset=utf-8", etag: bool = True):
        data = body.encode() if isinstance(body, str) else body
        old = self.resources.get(path)
        mtime = time.time() - 3600 if old is None else max(old.mtime + 10, time.time())
        self.resources[path] = Resource(data, content_type, mtime, etag)

    def paths(self) -> list[str]:
        return [p for p, _ in self.requests]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


INDEX = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Debian FAQ: intranet copy</title></head>
<body><main><h1 id="top">The Debian GNU/Linux FAQ</h1>
<p>Our intranet copy of the Debian FAQ, for the help desk.</p>
<ul>
<li><a href="basic-defs.en.html">Definitions and overview</a> (<a href="basic-defs.en.html?utm_source=intranet">again</a>,
  <a href="basic-defs.en.html#s-what">what is Debian</a>, <a href="print/basic-defs.html">printable</a>)</li>
<li><a href="getting-debian.en.html">Getting and installing Debian</a></li>
<li><a href="pkgtools.en.html">Package management tools</a></li>
<li><a href="old/upgrading.html">Keeping your system up to date</a> (moved)</li>
<li><a href="support.en.html">Getting support</a></li>
<li><a href="faq.pdf">A postmortem, as PDF</a></li>
<li><a href="missing.html">A page that was never written</a></li>
<li><a href="private/salaries.html">Salaries</a></li>
<li><a href="logo.png">Logo</a></li>
<li><a href="/outside/page.html">Another team's pages</a>, <a href="https://www.debian.org/">Debian</a>,
  <a href="mailto:helpdesk@example.org">mail us</a></li>
</ul></main></body></html>"""


def build_site(site: Site) -> None:
    site.put("/robots.txt", "User-agent: *\nDisallow: /manual/private/\n", "text/plain")
    site.put("/manual/", INDEX)
    site.redirects["/manual/index.en.html"] = "/manual/"
    site.redirects["/manual/old/upgrading.html"] = "/manual/uptodate.en.html"
    for name in CHAPTERS:
        html = (FAQ / f"{name}.en.html").read_text(encoding="utf-8")
        if name == "getting-debian":  # the only way to the appendix: two links from the index
            html = html.replace("</body>", '<p><a href="appendix/compatibility.html">Compatibility</a></p></body>')
        site.put(f"/manual/{name}.en.html", html)
    appendix = (FAQ / "compatibility.en.html").read_text(encoding="utf-8")
    site.put("/manual/appendix/compatibility.html", appendix.replace("<head>", '<head><base href="/manual/">', 1))
    printable = (FAQ / "basic-defs.en.html").read_text(encoding="utf-8").replace(
        "<head>", '<head><link rel="canonical" href="/manual/basic-defs.en.html">', 1)
    site.put("/manual/print/basic-defs.html", printable)
    pdf = next(EXAMPLES.rglob("postmortem-2023-11-duplicate-invoices.pdf")).read_bytes()
    site.put("/manual/faq.pdf", pdf, "application/pdf", etag=False)
    site.put("/manual/private/salaries.html", "<html><body><h1>Salaries</h1><p>secret</p></body></html>")
    site.put("/manual/logo.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png")
    site.put("/outside/page.html", "<html><body><h1>Elsewhere</h1><p>not ours</p></body></html>")


@pytest.fixture
def site():
    s = Site()
    build_site(s)
    yield s
    s.close()


@pytest.fixture
def crawl_settings(tmp_path):
    return Settings(index_dir=tmp_path / "indexes", index="web", parse_workers=0, git_authors=False, crawl_delay_s=0)


def _crawl(site, settings, embedder):
    return ingest([f"{site.origin}/manual/"], settings, embedder=embedder, progress=False)


def _status(report) -> dict[str, str]:
    return {f.path: f.status for f in report.files}


def test_first_crawl_finds_pages_two_links_deep_and_never_fetches_disallowed_or_out_of_scope(site, crawl_settings):
    embedder = HashingEmbedder()
    report = _crawl(site, crawl_settings, embedder)
    m = f"{site.origin}/manual/"
    status = _status(report)
    for page in ["", "basic-defs.en.html", "getting-debian.en.html", "appendix/compatibility.html",
                 "uptodate.en.html", "faq.pdf", "kernel.en.html"]:
        assert status.get(m + page) == "added", (page, status)
    # robots.txt, scope and what is not a document
    seen = site.paths()
    assert "/manual/private/salaries.html" not in seen and "/outside/page.html" not in seen
    assert not any("utm_" in p or "#" in p for p in seen)
    assert report.crawl["robots_disallowed"] == 1 and report.crawl["out_of_scope"] >= 2
    assert report.crawl["not_documents"] == 1 and report.crawl["redirects"] >= 2
    assert m + "logo.png" not in status and m + "old/upgrading.html" not in status
    # the printable copy is the same document as its canonical URL, indexed once
    assert m + "print/basic-defs.html" not in status and report.crawl["duplicates"] >= 1
    assert seen.count("/manual/basic-defs.en.html") == 1
    # broken links are reported with the page that links them
    failed = {f["path"]: f["error"] for f in report.failed}
    assert "404" in failed[m + "missing.html"] and f"linked from {m}" in failed[m + "missing.html"]
    assert report.documents == sum(s == "added" for s in status.values())
    # hits link to the page URL and its section's anchor
    hits = SearchService(crawl_settings, embedder=embedder).search(
        "Debian compatibility kernel libc", k=20, mode="lexical").hits
    appendix = [h for h in hits if h.doc_path == m + "appendix/compatibility.html"]
    assert appendix and any("#" in h.source and h.source.startswith(m + "appendix/compatibility.html#") for h in appendix)
    state = json.loads((crawl_settings.index_path("web") / "crawl.json").read_text())
    assert f"{m}" in state[m] and state[m][m + "getting-debian.en.html"]["etag"]


def test_recrawl_of_an_unchanged_site_asks_conditionally_and_embeds_nothing(site, crawl_settings):
    embedder = HashingEmbedder()
    first = _crawl(site, crawl_settings, embedder)
    site.requests.clear()
    encoded = embedder.encoded
    second = _crawl(site, crawl_settings, embedder)
    assert second.embedded_chunks == 0 and embedder.encoded == encoded
    assert second.added == second.updated == second.removed == 0
    assert second.unchanged == first.documents and second.snapshot == first.snapshot
    by_path = dict(site.requests)
    assert by_path["/manual/kernel.en.html"].get("if-none-match")
    assert by_path["/manual/faq.pdf"].get("if-modified-since") and "if-none-match" not in by_path["/manual/faq.pdf"]
    assert second.crawl["not_modified"] == first.documents
    assert "/manual/private/salaries.html" not in site.paths()
    # who may read crawled pages changed: every page is read again, with its new groups
    restricted = crawl_settings.model_copy(update={"crawl_groups": ["staff"]})
    third = _crawl(site, restricted, embedder)
    assert third.crawl["not_modified"] == 0 and third.updated == first.documents


def test_a_changed_page_is_re_embedded_and_removed_pages_are_dropped(site, crawl_settings):
    embedder = HashingEmbedder()
    first = _crawl(site, crawl_settings, embedder)
    m = f"{site.origin}/manual/"
    kernel = site.resources["/manual/kernel.en.html"].body.decode()
    site.put("/manual/kernel.en.html", kernel.replace(
        "</body>", "<h2 id=\"s-intranet\">Our kernels</h2><p>The help desk builds zebrafish kernels.</p></body>"))
    del site.resources["/manual/support.en.html"]  # gone: 404
    site.resources["/manual/"] = site.resources["/manual/"].__class__(
        INDEX.replace('<li><a href="faq.pdf">A postmortem, as PDF</a></li>', "").encode(), "text/html", time.time())
    second = _crawl(site, crawl_settings, embedder)
    status = _status(second)
    assert status[m + "kernel.en.html"] == "updated"
    assert status[m + "support.en.html"] == "removed"
    assert status[m + "faq.pdf"] == "removed"  # no longer linked from anywhere
    assert status[m] == "updated"
    kernel_chunks = next(f.chunks for f in second.files if f.path == m + "kernel.en.html")
    index_chunks = next(f.chunks for f in second.files if f.path == m)
    assert second.embedded_chunks == kernel_chunks + index_chunks
    assert second.documents == first.documents - 2
    hits = SearchService(crawl_settings, embedder=embedder).search("zebrafish kernels", k=3, mode="lexical").hits
    assert hits[0].source == m + "kernel.en.html#s-intranet"


def test_scope_and_url_normalization():
    scope = Scope.of("http://127.0.0.1:8000/handbook/")
    assert "http://127.0.0.1:8000/handbook/a/b.html" in scope and "http://127.0.0.1:8000/handbook/" in scope
    assert "http://127.0.0.1:8000/handbook2/x" not in scope and "http://127.0.0.1:8001/handbook/x" not in scope
    assert "https://127.0.0.1:8000/handbook/x" not in scope
    assert Scope.of("http://h/handbook/index.html").prefix == "/handbook/"
    assert Scope.of("http://h/handbook").prefix == "/handbook/"
    assert normalize("b.html?z=1&a=2&utm_source=x#frag", "HTTP://H:80/doc/a.html") == "http://h/doc/b.html?a=2&z=1"
    assert normalize("mailto:a@b") is None and normalize("javascript:void(0)") is None


def test_auth_headers_and_cookie_are_sent_to_the_site(site, tmp_path):
    settings = Settings(index_dir=tmp_path / "indexes", index="web", parse_workers=0, crawl_delay_s=0,
                        crawl_headers="Authorization: Bearer s3cret\\nX-Team: help desk", crawl_cookie="session=abc",
                        crawl_groups="staff", crawl_max_pages=3)
    report = _crawl(site, settings, HashingEmbedder())
    headers = dict(site.requests)["/manual/"]
    assert headers["authorization"] == "Bearer s3cret" and headers["x-team"] == "help desk"
    assert headers["cookie"] == "session=abc" and headers["user-agent"].startswith("km-search/")
    assert report.crawl["fetched"] == 3 and any("KM_CRAWL_MAX_PAGES" in w for w in report.warnings)
    import sqlite3

    db = sqlite3.connect(next((tmp_path / "indexes" / "web" / "snapshots").iterdir()) / "chunks.sqlite")
    assert {g for (g,) in db.execute("SELECT groups FROM documents")} == {'["staff"]'}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.mark.slow
def test_km_ingest_url_then_search_over_http_finds_the_page_with_its_anchor(site, tmp_path):
    import os

    env = {**os.environ, "KM_INDEX_DIR": str(tmp_path / "indexes"), "HF_HUB_OFFLINE": "1", "KM_CRAWL_DELAY_S": "0.05"}
    m = f"{site.origin}/manual/"
    run = subprocess.run([*KM, "ingest", m, "--index", "web", "--json"], check=False, capture_output=True, text=True, env=env,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["crawl"]["robots_disallowed"] == 1 and report["documents"] >= 9
    base, proc = start_server("web", env, tmp_path / "serve.log")
    try:
        query = urllib.parse.urlencode({"q": "which Debian versions are compatible with the kernel and libc?", "k": 10})
        with urllib.request.urlopen(f"{base}/search?{query}", timeout=60) as r:
            hits = json.load(r)["hits"]
        sources = [h["source"] for h in hits]
        assert any(s.startswith(m + "appendix/compatibility.html#") for s in sources), sources
        hit = next(h for h in hits if h["source"].startswith(m))
        assert hit["url"].startswith(f"/documents/{hit['doc_id']}")
        opener = urllib.request.build_opener(_NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as answer:
            opener.open(base + f"/documents/{hit['doc_id']}", timeout=30)
        assert answer.value.code == 307 and answer.value.headers["location"] == hit["doc_path"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "/manual/private/salaries.html" not in site.paths()
