"""End to end on the example corpus (real model, `km serve` over HTTP; fixtures in conftest.py):
filters narrow /search and still fill the page, `experts` ranks the colleague who wrote most about a
topic first with evidence, /decisions marks the superseded decision, /lessons lists lessons."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest

pytestmark = pytest.mark.slow  # the real model, a server or worker processes: make test-fast skips it

KM = [sys.executable, "-m", "km_search.cli"]
QUERY = "what did we decide and what did we learn about the database?"


def get(base: str, route: str, **params) -> dict:
    url = f"{base}{route}?{urllib.parse.urlencode(params, doseq=True)}"
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.load(r)


@pytest.fixture(scope="module")
def snapshot(workspace, ingest_report):
    from km_search.index.snapshot import Snapshot

    root, _, _ = workspace
    snap = Snapshot.open(root / "indexes" / "example")
    yield snap
    snap.close()


def matching_chunks(snapshot, params: dict) -> int:
    from km_search.search.filters import make_filters
    from km_search.index.filter_sql import filtered_chunks_sql

    f = make_filters(params.get("type"), params.get("project"), params.get("author"), params.get("tag"),
                     params.get("path"), params.get("modified_after"), params.get("modified_before"))
    sql, args = filtered_chunks_sql(f)
    return len(snapshot.db.execute(sql, args).fetchall())


FILTERS = [
    ({"type": "decision"}, lambda h: h["type"] == "decision"),
    ({"type": ["lesson", "meeting"]}, lambda h: h["type"] in ("lesson", "meeting")),
    ({"project": "mobile-app"}, lambda h: h["project"] == "mobile-app"),
    ({"project": "data-warehouse"}, lambda h: h["project"] == "data-warehouse"),  # the PDFs get it from _meta.yaml
    ({"author": "priya"}, lambda h: any("priya" in a.lower() for a in h["authors"])),
    ({"author": "tomas"}, lambda h: any("Tomás" in a for a in h["authors"])),  # accents fold
    ({"tag": "PostgreSQL"}, lambda h: "postgresql" in [t.lower() for t in h["tags"]]),
    ({"path": "billing/decisions/"}, lambda h: h["doc_path"].startswith("billing/decisions/")),
    ({"modified_after": "2025-01-01"}, lambda h: h["modified"] >= "2025-01-01"),
    ({"modified_before": "2022-12-31"}, lambda h: h["modified"] <= "2022-12-31"),
    ({"type": "lesson", "project": "billing", "modified_after": "2023-07-01"},
     lambda h: h["type"] == "lesson" and h["project"] == "billing" and h["modified"] >= "2023-07-01"),
]


@pytest.mark.parametrize(("params", "holds"), FILTERS, ids=[json.dumps(p) for p, _ in FILTERS])
def test_each_filter_narrows_search_and_still_fills_the_page(server, snapshot, params, holds):
    k = 12
    hits = get(server, "/search", q=QUERY, k=k, **params)["hits"]
    assert all(holds(h) for h in hits), [(h["doc_path"], h["type"], h["project"], h["modified"]) for h in hits]
    available = matching_chunks(snapshot, params)
    assert 0 < available < snapshot.manifest["counts"]["chunks"]  # it really narrows
    assert len(hits) == min(k, available)


def test_bad_filter_dates_are_422(server):
    with pytest.raises(urllib.error.HTTPError) as err:
        get(server, "/decisions", q="billing", modified_before="March 2024")
    assert err.value.code == 422
    assert "modified_before must be a date written YYYY-MM-DD" in json.load(err.value)["error"]


@pytest.mark.parametrize(("topic", "expert", "email"), [
    ("PostgreSQL databases", "Priya Raman", "priya.raman@northwind.example"),
    ("shipping mobile app releases", "Marcus Okafor", "marcus.okafor@northwind.example"),
    ("search relevance and Elasticsearch", "Elena Petrova", "elena.petrova@northwind.example"),
])
def test_experts_rank_the_author_who_wrote_most_about_a_topic_first(server, topic, expert, email):
    experts = get(server, "/experts", q=topic, k=5)["experts"]
    top = experts[0]
    assert (top["name"], top["email"]) == (expert, email)
    assert top["score"] > 2 * experts[1]["score"]
    assert len({e["email"] for e in experts}) == len(experts)  # one entry per person
    assert top["documents"] >= 3 and top["last_date"]
    assert 1 <= len(top["evidence"]) <= 3
    for evidence in top["evidence"]:
        assert evidence["source"] and evidence["title"] and evidence["text"]
        assert evidence["url"].startswith(f"/documents/{evidence['doc_id']}")
    assert [e["score"] for e in experts] == sorted((e["score"] for e in experts), reverse=True)


def test_experts_over_the_cli_agree_with_http(server, workspace):
    root, docs, env = workspace
    run = subprocess.run([*KM, "experts", "PostgreSQL databases", "--index", "example", "-k", "3", "--json"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    cli = json.loads(run.stdout)["experts"]
    http = get(server, "/experts", q="PostgreSQL databases", k=3)["experts"]
    assert [e["email"] for e in cli] == [e["email"] for e in http]
    assert set(cli[0]) >= {"name", "email", "score", "evidence"}


def test_decisions_mark_the_superseded_one(server):
    decisions = get(server, "/decisions", q="which database should billing use, MySQL or PostgreSQL?", k=5)["decisions"]
    by_title = {d["title"]: d for d in decisions}
    old = by_title["ADR-007: Use MySQL for the billing database"]
    new = by_title["ADR-012: Move billing to PostgreSQL"]
    assert (old["status"], old["superseded_by"], old["date"], old["project"]) == ("Superseded", "ADR-012", "2021-06-14", "billing")
    assert (new["status"], new["supersedes"], new["date"]) == ("Accepted", "ADR-007", "2023-03-06")
    assert all(d["type"] == "decision" for d in decisions)
    assert len({d["doc_path"] for d in decisions}) == len(decisions) == 5  # one entry per record


def test_lessons_and_decisions_take_the_other_filters(server):
    lessons = get(server, "/lessons", q="what went wrong with the warehouse?", k=10, project="data-warehouse")["lessons"]
    assert {l["doc_path"] for l in lessons} == {
        "data-warehouse/lessons/postmortem-2022-08-warehouse-disk-full.pdf",
        "data-warehouse/lessons/postmortem-2024-07-nightly-etl-outage.docx",
    }
    assert all(l["type"] == "lesson" and l["date"] and l["project"] == "data-warehouse" for l in lessons)
    everything = get(server, "/lessons", q="lessons learned", k=20)["lessons"]
    assert len(everything) == 8 and len({l["project"] for l in everything}) >= 4
    assert len({l["date"][:4] for l in everything}) >= 3  # several years
    mobile = get(server, "/decisions", q="mobile architecture", k=10, author="marcus")["decisions"]
    assert {d["title"][:7] for d in mobile} == {"ADR-010", "ADR-011"}
