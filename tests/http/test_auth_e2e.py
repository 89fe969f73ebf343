"""Access control end to end: a corpus with restricted documents (front matter `groups`, a folder's
`_meta.yaml`) ingested with `km ingest` and the real model, keys made with `km keys create`, and
`km serve` with KM_AUTH=keys and KM_AUTH=header, queried over HTTP by two users in different groups."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest

from helpers import KM, start_server

pytestmark = pytest.mark.slow  # the real model, a server or worker processes: make test-fast skips it

FILES = {
    "public/vpn.md": "# VPN setup\n\nInstall the WireGuard client and import the profile from the IT portal.\n",
    "public/adr-1-use-postgres.md": "---\ntype: decision\nauthors: [Pat Public <pat@x.example>]\n---\n"
                                    "# ADR-1: Use PostgreSQL\n\n## Decision\n\nWe use PostgreSQL for billing.\n",
    "hr/_meta.yaml": "groups: [hr]\nowners: [hannah@x.example]\n",
    "hr/salary-bands.md": "---\ntitle: Salary bands 2025\nauthors: [Hannah Hr <hannah@x.example>]\ntype: policy\n---\n"
                          "# Salary bands 2025\n\nThe salary band for a senior engineer is 95,000 to 120,000 euros "
                          "a year, reviewed every March by the compensation committee.\n",
    "hr/decisions/adr-5-salary-review.md": "---\ntype: decision\n---\n# ADR-5: Yearly salary review\n\n## Decision\n\n"
                                           "Salary reviews happen once a year, in March, for everyone.\n",
    "leads/atlas-retro.md": "---\ntitle: Atlas reorg retrospective\ngroups: [leads]\ntype: lesson\n"
                            "authors: [Lena Lead <lena@x.example>]\n---\n# Atlas reorg retrospective\n\n"
                            "The Atlas reorg merged the platform teams; the lesson is to announce reorgs earlier.\n",
}
SECRETS = {"hr": ["95,000", "120,000", "compensation committee"], "leads": ["Atlas", "announce reorgs"]}


@pytest.fixture(scope="module")
def acl(tmp_path_factory):
    root = tmp_path_factory.mktemp("acl")
    docs = root / "docs"
    for rel, text in FILES.items():
        (docs / rel).parent.mkdir(parents=True, exist_ok=True)
        (docs / rel).write_text(text)
    env = {**os.environ, "KM_INDEX_DIR": str(root / "indexes"), "HF_HUB_OFFLINE": "1", "KM_AUTH": "keys",
           "KM_GIT_AUTHORS": "false"}
    run = subprocess.run([*KM, "ingest", str(docs), "--index", "acl", "--json"], capture_output=True, text=True,
                         env=env, timeout=600)
    assert run.returncode == 0, run.stderr

    def create(*args: str) -> str:
        out = subprocess.run([*KM, "keys", "create", *args], capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()[-1]

    keys = {"alice": create("--role", "reader", "--groups", "hr", "--name", "alice"),
            "bob": create("--role", "reader", "--groups", "leads", "--name", "bob"),
            "admin": create("--role", "admin", "--groups", "*", "--name", "admin")}
    listed = subprocess.run([*KM, "keys", "list", "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert not any(k in listed.stdout for k in keys.values())  # listing never shows a key
    ids = {k["name"]: k["id"] for k in json.loads(listed.stdout)["keys"]}
    base, proc = start_server("acl", env, root / "serve.log")
    yield type("Acl", (), dict(base=base, keys=keys, ids=ids, env=env, root=root))
    proc.terminate()
    proc.wait(timeout=30)


def call(acl, user: str | None, route: str, headers: dict | None = None, **params) -> tuple[int, dict]:
    query = urllib.parse.urlencode(params, doseq=True)
    request = urllib.request.Request(f"{acl.base}{route}" + (f"?{query}" if query else ""), headers=headers or {})
    if user:
        request.add_header("Authorization", f"Bearer {acl.keys[user]}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            body = response.read().decode()
            return response.status, (json.loads(body) if "json" in response.headers.get("content-type", "") else {"text": body})
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read().decode() or "{}")


def leaks(body: dict, group: str) -> list[str]:
    """The other group's secrets found in an answer (the echoed query aside: it is the asker's own)."""
    text = json.dumps({k: v for k, v in body.items() if k != "query"})
    return [s for s in SECRETS[group] if s in text] + ([f"{group}/"] if f'"{group}/' in text else [])


def test_two_users_never_see_each_others_restricted_text(acl):
    questions = ["what is the salary band for a senior engineer?", "Atlas reorg retrospective lesson",
                 "salary review March", "platform teams"]
    for user, other in (("alice", "leads"), ("bob", "hr")):
        for q in questions:
            for route, params in (("/search", {"k": 20}), ("/search", {"k": 5, "offset": 3}),
                                  ("/search", {"k": 20, "mode": "lexical"}), ("/ask", {"k": 10}),
                                  ("/experts", {}), ("/decisions", {}), ("/lessons", {}),
                                  ("/search", {"author": "hannah"}), ("/search", {"author": "lena"}),
                                  ("/search", {"path": f"{other}/"}), ("/search", {"type": "policy,lesson,decision"})):
                status, body = call(acl, user, route, q=q, **params)
                assert status == 200, (route, body)
                assert not leaks(body, other), (user, route, params, q, leaks(body, other))
    _, alice = call(acl, "alice", "/search", q="salary band senior engineer", k=5)
    assert "95,000" in json.dumps(alice)  # the restriction is not a blanket refusal
    _, bob = call(acl, "bob", "/lessons", q="reorg")
    assert [r["doc_path"] for r in bob["lessons"]] == ["leads/atlas-retro.md"]


def test_experts_and_counts_follow_the_reader(acl):
    _, alice = call(acl, "alice", "/experts", q="salary bands")
    _, bob = call(acl, "bob", "/experts", q="salary bands")
    assert "hannah@x.example" in {e["email"] for e in alice["experts"]}
    assert "hannah@x.example" not in {e["email"] for e in bob["experts"]}
    counts = {u: call(acl, u, "/stats")[1]["documents"] for u in ("alice", "bob", "admin")}
    assert counts == {"alice": 4, "bob": 3, "admin": 5}
    _, past = call(acl, "bob", "/search", q="salary", k=10, offset=3)
    assert past["hits"] == []  # bob can read 3 documents of one passage each: nothing past them


def test_documents_are_served_only_to_readers_of_their_groups(acl):
    _, alice = call(acl, "alice", "/search", q="salary band senior engineer", k=5)
    doc_id = next(h["doc_id"] for h in alice["hits"] if h["doc_path"] == "hr/salary-bands.md")
    status, page = call(acl, "alice", f"/documents/{doc_id}")
    assert status == 200 and "95,000" in page["text"]
    for user in ("bob", None):
        status, body = call(acl, user, f"/documents/{doc_id}", download=1)
        assert status in (401, 404) and "95,000" not in json.dumps(body)
    assert call(acl, "bob", f"/documents/{doc_id}")[0] == call(acl, "bob", "/documents/9999")[0] == 404


def test_a_revoked_key_is_refused(acl):
    assert call(acl, "alice", "/search", q="vpn")[0] == 200
    run = subprocess.run([*KM, "keys", "revoke", str(acl.ids["alice"])], capture_output=True, text=True,
                         env=acl.env, timeout=60)
    assert run.returncode == 0, run.stderr
    status, body = call(acl, "alice", "/search", q="vpn")
    assert status == 401 and body["ok"] is False
    assert call(acl, None, "/search", q="vpn")[0] == 401


def test_a_forged_trusted_header_from_an_address_that_is_not_the_proxy_is_refused(acl):
    env = {**acl.env, "KM_AUTH": "header", "KM_TRUSTED_PROXIES": "10.255.255.1"}
    base, proc = start_server("acl", env, acl.root / "serve-header.log")
    try:
        forged = urllib.request.Request(f"{base}/search?q=salary", headers={"X-Forwarded-User": "alice",
                                                                             "X-Forwarded-Groups": "hr"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=30)
        assert refused.value.code == 403
        assert json.loads(refused.value.read())["ok"] is False
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_uploads_and_deletes_are_for_admins_and_uploaded_groups_are_enforced(acl):
    import httpx

    body = b"# Bonus pool 2026\n\nThe bonus pool for 2026 is 4.2 percent of payroll, paid in April.\n"
    def create(*args: str) -> str:  # fresh keys: another test revokes one of the fixture's
        out = subprocess.run([*KM, "keys", "create", *args], capture_output=True, text=True, env=acl.env, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()[-1]

    keys = {"alice": create("--role", "reader", "--groups", "hr"), "bob": create("--role", "reader", "--groups", "leads"),
            "admin": create("--role", "admin", "--groups", "*")}
    auth = {u: {"Authorization": f"Bearer {k}"} for u, k in keys.items()}
    with httpx.Client(base_url=acl.base, timeout=120) as http:
        upload = lambda user: http.post("/documents", headers=auth.get(user, {}),  # noqa: E731
                                        files={"file": ("bonus.md", body, "text/markdown")}, data={"groups": "hr"})
        assert upload(None).status_code == 401
        assert upload("bob").status_code == 403  # readers search, they do not upload
        created = upload("admin")
        assert created.status_code == 201, created.text
        doc_id = created.json()["doc_id"]
        # the upload answers once the new snapshot serves
        found = http.get("/search", params={"q": "bonus pool payroll", "k": 3}, headers=auth["alice"]).json()
        assert found["hits"][0]["doc_id"] == doc_id  # alice is in hr
        hidden = http.get("/search", params={"q": "bonus pool payroll", "k": 20}, headers=auth["bob"]).json()
        assert "4.2 percent" not in json.dumps(hidden)
        assert http.get(f"/documents/{doc_id}", headers=auth["bob"]).status_code == 404
        assert http.delete(f"/documents/{doc_id}", headers=auth["bob"]).status_code == 403
        assert http.delete(f"/documents/{doc_id}", headers=auth["admin"]).status_code == 200
        gone = http.get("/search", params={"q": "bonus pool payroll", "k": 20}, headers=auth["alice"]).json()
        assert "4.2 percent" not in json.dumps(gone)
