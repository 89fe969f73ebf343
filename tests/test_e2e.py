"""End to end on real files: `km ingest` the example corpus (every format, plus broken files) with the
real model, serve it with `km serve` as a separate process, and ask questions over HTTP.
The `workspace`, `ingest_report` and `server` fixtures are in conftest.py (the browser tests share them)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from evaluation.retrieval import GoldAnswer, read_jsonl

pytestmark = pytest.mark.slow  # the real model, a server or worker processes: make test-fast skips it


ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "corpus"

KM = [sys.executable, "-m", "km_search.cli"]
GOLD = {g["query_id"]: g for g in read_jsonl(ROOT / "examples" / "eval" / "gold.jsonl")}
QUERIES = {q["_id"]: q["text"] for q in read_jsonl(ROOT / "examples" / "eval" / "queries.jsonl")}


def _one_question_per_format() -> list[str]:
    chosen: dict[str, str] = {}
    for qid, g in GOLD.items():
        chosen.setdefault(Path(g["source"]).suffix, qid)
    return sorted(chosen.values(), key=lambda q: int(q[1:]))


def get(base: str, path: str, **params) -> dict:
    with urllib.request.urlopen(f"{base}{path}?{urllib.parse.urlencode(params)}", timeout=30) as r:
        return json.load(r)


def test_report_lists_each_broken_file_with_its_reason_and_indexes_the_rest(ingest_report):
    failed = {f["path"]: f["error"] for f in ingest_report["failed"]}
    assert set(failed) == {"broken/corrupt.pdf", "broken/empty.md", "broken/binary.txt"}
    assert "PDF" in failed["broken/corrupt.pdf"]
    assert "empty" in failed["broken/empty.md"]
    assert "binary" in failed["broken/binary.txt"]
    documents = [p for p in EXAMPLES.rglob("*") if p.is_file() and not p.name.startswith("_meta")]
    assert ingest_report["documents"] == len(documents)
    assert ingest_report["chunks"] >= len(documents)
    indexed = {f["path"] for f in ingest_report["files"] if f["status"] == "added"}
    assert {Path(p).suffix for p in indexed} == {".md", ".html", ".pdf", ".docx", ".txt"}


@pytest.mark.parametrize("qid", _one_question_per_format())
def test_question_is_answered_from_the_right_document_and_section(server, qid):
    """The document that answers is in the top 3, and the passage holding the answer, with its
    section's deep link, is on the first page of 10 (picking the section within a document is the
    harder half: docs/quality.md)."""
    gold = GOLD[qid]
    hits = get(server, "/search", q=QUERIES[qid], k=10)["hits"]
    assert hits, f"no hits for {QUERIES[qid]!r}"
    assert gold["source"] in [h["doc_path"] for h in hits[:3]], f"{QUERIES[qid]!r}: got {[h['source'] for h in hits]}"
    answer = GoldAnswer(gold["answer"])
    right = [h for h in hits if h["doc_path"] == gold["source"] and answer.matches(h["text"])]
    assert right, f"{QUERIES[qid]!r}: got {[h['source'] for h in hits]}"
    expected_link = gold["source"]
    if gold.get("anchor"):
        expected_link += "#" + gold["anchor"]
    elif gold.get("page"):
        expected_link += f"#page={gold['page']}"
    assert _link_of_answer(right[0], gold["answer"]) == expected_link


def _link_of_answer(hit: dict, answer: str) -> str:
    """The hit's deep link, or for a passage of joined sections the link of the part where the
    answer begins (each part keeps its own: `parts`)."""
    start = hit["text"].find(answer[:40])
    if not hit["parts"] or start < 0:
        return hit["source"]
    return [p for p in hit["parts"] if p["offset"] <= start][-1]["source"]


def test_http_and_cli_return_the_same_hits(server, workspace):
    root, docs, env = workspace
    query = "why did we move billing to postgres?"
    http = get(server, "/search", q=query, k=5)["hits"]
    cli = subprocess.run([*KM, "search", query, "--index", "example", "-k", "5", "--json"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert cli.returncode == 0, cli.stderr
    assert [h["source"] for h in json.loads(cli.stdout)["hits"]] == [h["source"] for h in http]
    assert http[0]["doc_path"] == "billing/decisions/adr-012-move-billing-to-postgres.md"
    for hit in http:
        assert {"text", "source", "title", "score", "snippet", "heading_path"} <= hit.keys()


def test_stats_and_health_describe_the_published_snapshot(server, ingest_report, workspace):
    stats = get(server, "/stats")
    assert stats["snapshot"] == ingest_report["snapshot"] == get(server, "/healthz")["snapshot"]
    assert stats["documents"] == ingest_report["documents"]
    assert stats["model"]["name"] == "all-MiniLM-L6-v2" and stats["model"]["dimension"] == 384
    root, docs, env = workspace
    cli = subprocess.run([*KM, "stats", "--index", "example", "--json"], capture_output=True, text=True, env=env)
    assert json.loads(cli.stdout)["chunks"] == stats["chunks"]


def test_ingest_of_only_broken_files_publishes_nothing_and_keeps_the_old_snapshot(workspace, ingest_report, tmp_path):
    root, docs, env = workspace
    (tmp_path / "bad.pdf").write_bytes(b"not a pdf")
    run = subprocess.run([*KM, "ingest", str(tmp_path), "--index", "example", "--json"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode != 0
    assert json.loads(run.stdout)["failed"][0]["path"] == "bad.pdf"
    assert "nothing was published" in run.stderr
    current = (root / "indexes" / "example" / "CURRENT").read_text().strip()
    assert current == ingest_report["snapshot"]


def test_ingest_to_a_log_file_says_how_far_it_is(workspace, tmp_path):
    """`km ingest … 2> ingest.log` (cron, systemd): stderr is no terminal, so no live bar, but plain
    progress lines; the human report still ends the run on stdout."""
    root, docs, env = workspace
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("data-warehouse/decisions/adr-016-dbt-for-transformations.md", "it/howto/request-a-laptop.docx"):
        (folder / Path(name).name).write_bytes((EXAMPLES / name).read_bytes())
    run = subprocess.run([*KM, "ingest", str(folder), "--index", "progress"], capture_output=True, text=True,
                         env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "ingesting: 2/2 files (100 %)" in run.stderr
    assert "\x1b[" not in run.stderr  # no terminal control codes in a log
    assert "index 'progress' snapshot" in run.stdout and "2 added" in run.stdout
