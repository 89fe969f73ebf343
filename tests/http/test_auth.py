"""Access control over a small index built with the hashing embedder (fast, no model): keys, roles,
trusted headers, document groups enforced inside retrieval, limits and the pure parts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from ingest.chunking import chunk_document
from ingest.metadata import document_groups, supersessions
from km_search.access.principals import LOCAL, Principal, normalize_groups, restrict
from km_search.http.app import create_app
from km_search.errors import AuthConfigError
from km_search.http.deps import require_reader
from km_search.index.documents import confined_path
from km_search.access.keys import KeyStore
from km_search.http.ratelimit import RateLimiter, SharedRateLimiter
from km_search.service import SearchService
from km_search.settings import Settings
from km_search.index.writer import SnapshotWriter
from km_search.index.layout import SourceInfo
from km_search.types import Document, DocumentMeta, SearchFilters, Section

# (path, title, text, groups, authors, type)
DOCS = [
    ("it/vpn.md", "VPN setup", "Install the WireGuard client and import the profile from the IT portal.",
     ("public",), ("Ivan It <ivan@x.example>",), "howto"),
    ("hr/salary.md", "Salary bands", "Salary bands zanzibar: senior engineers earn between 90000 and 110000.",
     ("hr",), ("Hannah Hr <hannah@x.example>",), "policy"),
    ("hr/adr-3.md", "ADR-3: Salary review zanzibar", "We decided the zanzibar salary review happens yearly.",
     ("hr",), ("Hannah Hr <hannah@x.example>",), "decision"),
    ("leads/reorg.md", "Reorg quokka", "The quokka reorg merges the platform teams in March. Salary unchanged.",
     ("leads",), ("Lena Lead <lena@x.example>",), "lesson"),
    ("both/budget.md", "Budget", "The budget for zanzibar and quokka programs.", ("hr", "leads"), (), "other"),
]
SECRET = {"hr": "zanzibar", "leads": "quokka"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from helpers import HashingEmbedder

    root = tmp_path_factory.mktemp("auth")
    docs = root / "docs"
    embedder = HashingEmbedder()
    settings = Settings(index_dir=root / "indexes", auth="keys", rate_limit=0)
    writer = SnapshotWriter(settings.index_path("default"), {"name": "default", "model": {"name": embedder.model_name},
                                                              "roots": [str(docs)]})
    ids = {}
    for path, title, text, groups, authors, doc_type in DOCS:
        file = docs / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(f"# {title}\n\n{text}\n")
        doc = Document(path=path, format="markdown", sections=(Section(text, (title,), anchor="top"),),
                       meta=DocumentMeta(title=title, authors=authors, doc_type=doc_type, groups=groups,
                                         tags=("t-" + groups[-1],)))
        chunks = chunk_document(doc)
        writer.add(doc, SourceInfo(str(file), "h", 1, root=str(docs)), chunks,
                   embedder.encode([c.indexed_text() for c in chunks]))
    writer.publish()
    service = SearchService(settings, embedder=embedder)
    keys = KeyStore(settings.keys_path())
    made = {
        "alice": keys.create("reader", "hr", "alice")[0],
        "bob": keys.create("reader", "leads", "bob")[0],
        "eve": keys.create("reader", "", "eve")[0],
        "admin": keys.create("admin", "", "admin")[0],
        "root": keys.create("admin", "*", "root")[0],
    }
    app = create_app(settings, service)
    with TestClient(app) as client:
        for row in service.retriever.snapshot.db.execute("SELECT id, path FROM documents"):
            ids[row["path"]] = row["id"]
        yield type("Corpus", (), dict(client=client, keys=made, ids=ids, settings=settings, store=keys,
                                      service=service, docs=docs, root=root))


def get(corpus, user, route, **params):
    headers = {"Authorization": f"Bearer {corpus.keys[user]}"} if user else {}
    return corpus.client.get(route, params=params, headers=headers)


def texts(body) -> str:
    return repr(body)


# ---- authentication ------------------------------------------------------------------------------


def test_requests_without_a_valid_key_are_refused_in_the_one_error_shape(corpus):
    for headers in ({}, {"Authorization": "Bearer km_not-a-key"}, {"Authorization": "Basic YTpi"}):
        response = corpus.client.get("/search", params={"q": "vpn"}, headers=headers)
        assert response.status_code == 401
        body = response.json()
        assert body["ok"] is False and body["status"] == 401 and "key" in body["error"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert corpus.client.get("/healthz").status_code == 200  # health checks need no key
    assert corpus.client.get("/").status_code == 200  # nor the page, which asks for one


def test_a_revoked_key_is_refused(corpus):
    key, info = corpus.store.create("reader", "hr", "temp")
    assert corpus.client.get("/search", params={"q": "vpn"}, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    corpus.store.revoke(info.id)
    response = corpus.client.get("/search", params={"q": "vpn"}, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 401 and "revoked" in response.json()["error"]


def test_keys_are_stored_only_as_hashes(corpus):
    key, info = corpus.store.create("reader", "a,B", "hashed")
    assert info.groups == ("a", "b")
    corpus.store._db().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    stored = b"".join(p.read_bytes() for p in corpus.settings.keys_path().parent.glob("keys.sqlite*"))
    assert key.encode() not in stored and key.split("_", 1)[1].encode() not in stored
    assert corpus.store.authenticate(key) == Principal(f"key:{info.id}", "hashed", "reader", ("a", "b"))
    assert corpus.store.authenticate(key + "x") is None and corpus.store.authenticate("") is None


def test_the_key_cookie_works_for_get_requests_only(corpus):
    cookies = {"km_key": corpus.keys["alice"]}
    corpus.client.cookies.update(cookies)
    try:
        assert corpus.client.get(f"/documents/{corpus.ids['hr/salary.md']}").status_code == 200
        response = corpus.client.post("/feedback", json={"query_id": "x", "helpful": True})
        assert response.status_code == 401  # no cookie authentication for changes: no CSRF
    finally:
        corpus.client.cookies.clear()


def test_admin_routes_refuse_readers(corpus):
    assert get(corpus, "alice", "/analytics/gaps").status_code == 403
    assert get(corpus, "admin", "/analytics/gaps").status_code == 200


def test_every_route_but_health_and_the_page_requires_a_principal(corpus):
    """A guard for new routes: each must depend on require_reader (require_admin does)."""
    def depends_on_reader(dependant) -> bool:
        return any(d.call is require_reader or depends_on_reader(d) for d in dependant.dependencies)

    open_routes = {"/healthz", "/", "/widget.js"}
    routes = [r for top in corpus.client.app.routes  # each routes/*.py router's own routes, as mounted
              for r in (top.original_router.routes if hasattr(top, "original_router") else [top])]
    checked = [r.path for r in routes if isinstance(r, APIRoute) and r.path not in open_routes]
    assert {"/search", "/ask", "/documents/{doc_id}", "/analytics/gaps"} <= set(checked)
    for route in routes:
        if isinstance(route, APIRoute) and route.path not in open_routes:
            assert depends_on_reader(route.dependant), f"{route.path} has no authentication"


# ---- document groups enforced inside retrieval ----------------------------------------------------


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_search_shows_each_user_only_their_groups_documents(corpus, mode):
    for user, own, other in (("alice", "hr", "leads"), ("bob", "leads", "hr")):
        body = get(corpus, user, "/search", q=f"{SECRET[own]} {SECRET[other]} salary", k=20, mode=mode).json()
        paths = {h["doc_path"] for h in body["hits"]}
        assert any(p.startswith(own) for p in paths) or mode == "dense"
        assert not any(p.startswith(other + "/") for p in paths), (user, paths)
        if mode == "lexical":
            assert SECRET[other] not in texts([h for h in body["hits"] if h["doc_path"] != "both/budget.md"])
    eve = get(corpus, "eve", "/search", q="zanzibar quokka salary budget", k=20, mode=mode).json()["hits"]
    assert {h["doc_path"] for h in eve} <= {"it/vpn.md"}


def test_paging_past_the_end_and_counts_do_not_reveal_restricted_documents(corpus):
    eve = get(corpus, "eve", "/search", q="salary zanzibar", k=100).json()["hits"]
    assert len(eve) == 1  # only the public document exists for eve
    assert get(corpus, "eve", "/search", q="salary zanzibar", k=5, offset=1).json()["hits"] == []
    stats = {u: get(corpus, u, "/stats").json() for u in ("eve", "alice", "bob", "root")}
    assert (stats["eve"]["documents"], stats["alice"]["documents"], stats["bob"]["documents"],
            stats["root"]["documents"]) == (1, 4, 3, 5)


def test_filters_never_widen_access(corpus):
    for params in ({"author": "hannah"}, {"tag": "t-hr"}, {"path": "hr/"}, {"type": "policy"},
                   {"type": "decision"}):
        assert get(corpus, "bob", "/search", q="salary zanzibar", **params).json()["hits"] == []
    assert get(corpus, "alice", "/search", q="salary", author="hannah").json()["hits"]
    # a 'groups' query parameter is not a filter: it cannot ask for someone else's documents
    hits = get(corpus, "bob", "/search", q="zanzibar salary", groups="hr").json()["hits"]
    assert not any(h["doc_path"].startswith("hr/") for h in hits)


def test_documents_the_reader_may_not_see_are_404_like_unknown_ones(corpus):
    hr = corpus.ids["hr/salary.md"]
    assert get(corpus, "alice", f"/documents/{hr}").status_code == 200
    assert "90000" in get(corpus, "alice", f"/documents/{hr}").text
    for user in ("bob", "eve", "admin"):  # the admin role grants operations, not documents
        refused, unknown = get(corpus, user, f"/documents/{hr}"), get(corpus, user, "/documents/99999")
        assert refused.status_code == unknown.status_code == 404
        assert refused.json()["error"].replace(str(hr), "N") == unknown.json()["error"].replace("99999", "N")
        assert get(corpus, user, f"/documents/{hr}", download=1).status_code == 404
    assert get(corpus, "root", f"/documents/{hr}").status_code == 200


def test_ask_quotes_and_cites_only_readable_passages(corpus):
    for user, other in (("bob", "hr"), ("eve", "hr"), ("eve", "leads")):
        body = get(corpus, user, "/ask", q=f"what are the {SECRET[other]} salary bands?").json()
        for c in body["citations"]:
            assert not c["source"].startswith(other + "/")
        assert not any(h["doc_path"].startswith(other + "/") for h in body["hits"])
        assert "90000" not in texts(body)
    stream = corpus.client.get("/ask/stream", params={"q": "zanzibar salary bands"},
                               headers={"Authorization": f"Bearer {corpus.keys['bob']}"}).text
    assert "90000" not in stream and "hr/salary.md" not in stream


def test_experts_come_only_from_readable_documents(corpus):
    alice = get(corpus, "alice", "/experts", q="salary zanzibar").json()["experts"]
    assert "hannah@x.example" in {e["email"] for e in alice}
    for user in ("bob", "eve"):
        found = get(corpus, user, "/experts", q="salary zanzibar").json()["experts"]
        assert "hannah@x.example" not in {e["email"] for e in found}
        assert "zanzibar" not in texts(found)


def test_decisions_and_lessons_are_restricted(corpus):
    assert [d["doc_path"] for d in get(corpus, "alice", "/decisions", q="salary review").json()["decisions"]] == ["hr/adr-3.md"]
    assert get(corpus, "bob", "/decisions", q="salary review zanzibar").json()["decisions"] == []
    assert get(corpus, "alice", "/lessons", q="reorg quokka").json()["lessons"] == []
    assert [d["doc_path"] for d in get(corpus, "bob", "/lessons", q="reorg quokka").json()["lessons"]] == ["leads/reorg.md"]


def test_the_service_restricts_by_principal_and_the_cli_user_sees_everything(corpus):
    service = corpus.service
    bob = Principal("b", "bob", "reader", ("leads",))
    assert not [h for h in service.search("zanzibar", k=10, mode="lexical", principal=bob).hits
                if h.doc_path.startswith("hr/")]
    assert [h for h in service.search("zanzibar", k=10, mode="lexical").hits if h.doc_path.startswith("hr/")]
    assert service.stats(bob)["documents"] == 3 and service.stats(LOCAL)["documents"] == 5


# ---- limits and headers ---------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after(corpus):
    settings = Settings(index_dir=corpus.settings.index_dir, auth="keys", rate_limit=3)
    with TestClient(create_app(settings, corpus.service)) as client:
        headers = {"Authorization": f"Bearer {corpus.keys['alice']}"}
        codes = [client.get("/stats", headers=headers).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        response = client.get("/stats", headers=headers)
        assert response.json()["status"] == 429 and int(response.headers["Retry-After"]) >= 1
        # bad keys are counted against the address, so guessing is throttled too
        bad = [client.get("/stats", headers={"Authorization": f"Bearer km_guess{i}"}).status_code for i in range(5)]
        assert bad[:3] == [401, 401, 401] and bad[-1] == 429


def test_request_bodies_are_limited(corpus):
    headers = {"Authorization": f"Bearer {corpus.keys['alice']}", "Content-Type": "application/json"}
    big = b'{"query_id": "x", "helpful": true, "comment": "' + b"a" * 70_000 + b'"}'
    response = corpus.client.post("/feedback", content=big, headers=headers)
    assert response.status_code == 413 and response.json()["ok"] is False

    def chunks():
        yield big

    response = corpus.client.post("/feedback", content=chunks(), headers=headers)  # streamed, no Content-Length
    assert response.status_code == 413


def test_security_headers(corpus):
    page = corpus.client.get("/")
    assert "frame-ancestors 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "SAMEORIGIN" and page.headers["X-Content-Type-Options"] == "nosniff"
    api = get(corpus, "alice", "/search", q="vpn")
    assert api.headers["Cache-Control"] == "no-store" and "Authorization" in api.headers["Vary"]
    assert api.headers["X-Content-Type-Options"] == "nosniff"


# ---- trusted headers ------------------------------------------------------------------------------


def header_client(corpus, peer: str) -> TestClient:
    settings = Settings(index_dir=corpus.settings.index_dir, auth="header", trusted_proxies="10.0.0.0/24",
                        auth_admin_groups="km-admins", rate_limit=0)
    return TestClient(create_app(settings, corpus.service), client=(peer, 40000))


def test_trusted_headers_from_the_proxy_identify_the_user(corpus):
    with header_client(corpus, "10.0.0.7") as client:
        hits = client.get("/search", params={"q": "zanzibar salary", "k": 10},
                          headers={"X-Forwarded-User": "alice", "X-Forwarded-Groups": "HR, staff"}).json()["hits"]
        assert any(h["doc_path"].startswith("hr/") for h in hits)
        hits = client.get("/search", params={"q": "zanzibar salary", "k": 10},
                          headers={"X-Forwarded-User": "bob", "X-Forwarded-Groups": "leads"}).json()["hits"]
        assert not any(h["doc_path"].startswith("hr/") for h in hits)
        assert client.get("/analytics/gaps", headers={"X-Forwarded-User": "bob"}).status_code == 403
        assert client.get("/analytics/gaps", headers={"X-Forwarded-User": "carol",
                                                      "X-Forwarded-Groups": "km-admins"}).status_code == 200
        assert client.get("/search", params={"q": "x"}).status_code == 401  # the proxy sent no user


def test_a_forged_trusted_header_from_elsewhere_is_refused(corpus):
    with header_client(corpus, "192.168.1.9") as client:
        response = client.get("/search", params={"q": "zanzibar"},
                              headers={"X-Forwarded-User": "alice", "X-Forwarded-Groups": "hr"})
        assert response.status_code == 403 and response.json()["ok"] is False
        assert client.get("/search", params={"q": "zanzibar"}).status_code == 401


def test_header_mode_without_trusted_proxies_does_not_start(tmp_path):
    with pytest.raises(AuthConfigError, match="KM_TRUSTED_PROXIES"):
        create_app(Settings(index_dir=tmp_path, auth="header"))


# ---- pure parts ------------------------------------------------------------------------------------


def test_principals_and_restrictions():
    assert normalize_groups(" HR, leads ,hr") == ("hr", "leads")
    assert normalize_groups(None, ("public",)) == ("public",)
    with pytest.raises(ValueError):
        normalize_groups("bad group!")
    assert Principal("a", "a", groups=("hr",)).readable_groups() == ("public", "hr")
    assert Principal("a", "a", groups=()).readable_groups() == ("public",)
    assert LOCAL.readable_groups() is None
    forged = SearchFilters(types=("policy",), groups=("hr", "leads"))
    assert restrict(forged, Principal("b", "b", groups=("x",))) == SearchFilters(types=("policy",), groups=("public", "x"))
    assert restrict(None, LOCAL) == SearchFilters() and not restrict(None, LOCAL)


def test_rate_limiter_refills():
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])  # one a second, bursts of 60
    assert all(limiter.take("k") == 0 for _ in range(60))
    assert limiter.take("k") == pytest.approx(1.0)
    assert limiter.take("other") == 0
    now[0] += 2.0
    assert limiter.take("k") == 0
    assert RateLimiter(0).take("k") == 0  # off


def test_shared_rate_limiter_refills_like_the_in_memory_one(tmp_path):
    now = [0.0]
    limiter = SharedRateLimiter(tmp_path / "buckets.sqlite", 60, clock=lambda: now[0])
    assert all(limiter.take("k") == 0 for _ in range(60))
    assert limiter.take("k") == pytest.approx(1.0)
    assert limiter.take("other") == 0
    now[0] += 2.0
    assert limiter.take("k") == 0
    assert SharedRateLimiter(tmp_path / "off.sqlite", 0).take("k") == 0


def _take_all(path: str, tries: int, granted) -> None:
    limiter = SharedRateLimiter(path, 60, clock=lambda: 100.0)  # a frozen clock: no refill
    granted.put(sum(limiter.take("addr:127.0.0.1") == 0 for _ in range(tries)))


def test_processes_sharing_the_file_share_one_bucket(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    granted = context.Queue()
    procs = [context.Process(target=_take_all, args=(str(tmp_path / "buckets.sqlite"), 50, granted)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert sum(granted.get(timeout=10) for _ in procs) == 60  # 150 asked, the bucket's 60 granted once


def test_document_groups_precedence():
    assert document_groups(("public",), {}) == ("public",)
    assert document_groups(("public",), {"groups": ["HR", "leads"]}) == ("hr", "leads")  # the folder's, inherited
    assert document_groups(("eng",), {"groups": "hr"}) == ("eng",)  # the file's own wins
    assert document_groups(("public",), {"groups": "hr"}) == ("hr",)  # 'public' alone does not undo a folder's


def test_a_restricted_decision_never_marks_a_public_one_superseded():
    rows = [(1, "ADR-1: Old", "adr-1.md", None, {}), (2, "ADR-2: New", "adr-2.md", None, {"supersedes": "ADR-1"})]
    assert supersessions(rows) == {1: "ADR-2"}
    assert supersessions(rows, {1: ("public",), 2: ("hr",)}) == {}
    assert supersessions(rows, {1: ("hr",), 2: ("hr", "leads")}) == {1: "ADR-2"}


def test_source_paths_never_escape_the_ingest_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "sub" / "ok.md").write_text("ok")
    (outside / "secret.txt").write_text("secret")
    os.symlink(outside / "secret.txt", root / "sub" / "link.md")
    os.symlink(outside, root / "dirlink")
    assert confined_path(str(root / "sub" / "ok.md"), "sub/ok.md", [str(root)]) == (root / "sub" / "ok.md").resolve()
    assert confined_path(str(root / "sub" / "link.md"), "sub/link.md", [str(root)]) is None
    assert confined_path(str(root / "dirlink" / "secret.txt"), "dirlink/secret.txt", [str(root)]) is None
    assert confined_path(str(root / "sub" / ".." / ".." / "outside" / "secret.txt"), "../outside/secret.txt",
                         [str(root)]) is None
    assert confined_path(str(outside / "secret.txt"), "/etc/passwd", [str(root)]) is None
    assert confined_path(str(outside / "secret.txt"), "secret.txt", [str(root)]) is None
    assert confined_path(str(root / "sub" / "ok.md"), "sub/ok.md", []) is None
    assert confined_path(str(Path("/nonexistent/x.md")), "x.md", [str(root)]) is None


# ---- before the first key -------------------------------------------------------------------------


def test_before_the_first_key_this_machine_reads_public_documents_only(corpus, tmp_path):
    """A fresh install answers local clients without setup (as Redis' protected mode); restricted
    documents, admin routes, other machines and proxied requests still need a key, and the first key
    ends the allowance."""
    settings = Settings(index_dir=corpus.settings.index_dir, auth="keys", keys_file=tmp_path / "keys.sqlite",
                        rate_limit=0)
    with TestClient(create_app(settings, corpus.service), client=("127.0.0.1", 40000)) as local:
        response = local.get("/search", params={"q": "zanzibar salary quokka", "k": 20})
        assert response.status_code == 200
        assert [h["doc_path"] for h in response.json()["hits"]] in ([], ["it/vpn.md"])  # public only
        hits = local.get("/search", params={"q": "wireguard vpn client", "k": 5}).json()["hits"]
        assert hits[0]["doc_path"] == "it/vpn.md"
        assert local.get("/analytics/gaps").status_code == 403
        assert local.get("/search", params={"q": "zanzibar"}, headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 401
        KeyStore(settings.keys_path()).create("reader", "", "first")
        assert local.get("/search", params={"q": "zanzibar"}).status_code == 401
    with TestClient(create_app(Settings(index_dir=corpus.settings.index_dir, auth="keys", rate_limit=0,
                                        keys_file=tmp_path / "other.sqlite"), corpus.service),
                    client=("192.168.1.9", 40000)) as remote:
        assert remote.get("/search", params={"q": "zanzibar"}).status_code == 401
