"""End to end on the example corpus, through the `km serve` and `km ingest` of conftest.py: /ask answers
from the right file and section, abstains on what the corpus does not hold, its citation links open
the right file at the right anchor, and the questions it could not answer show up in `km gaps`."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from evaluation.answers import gold_link, quotes_gold
from evaluation.retrieval import read_jsonl

pytestmark = pytest.mark.slow  # the real model, a server or worker processes: make test-fast skips it

ROOT = Path(__file__).resolve().parents[2]
EVAL = ROOT / "examples" / "eval"
GOLD = {g["query_id"]: g for g in read_jsonl(EVAL / "gold.jsonl")}
QUERIES = {q["_id"]: q["text"] for q in read_jsonl(EVAL / "queries.jsonl")}
UNANSWERABLE = {q["_id"]: q["text"] for q in read_jsonl(EVAL / "unanswerable.jsonl")}


def get(base: str, path: str, **params) -> dict:
    with urllib.request.urlopen(f"{base}{path}?{urllib.parse.urlencode(params)}", timeout=60) as r:
        return json.load(r)


def km(env: dict, *args: str) -> dict:
    run = subprocess.run([sys.executable, "-m", "km_search.cli", *args], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


# one question per format whose answer sits in one section: Word, Markdown, HTML, PDF
@pytest.mark.parametrize("qid", ["e3", "e35", "e38", "e2"])
def test_ask_quotes_the_gold_answer_and_cites_its_section(server, qid):
    body = get(server, "/ask", q=QUERIES[qid])
    assert body["answered"] is True and body["kind"] == "extractive", body
    assert quotes_gold(body["answer"], GOLD[qid]["answer"]), body["answer"]
    citation = body["citations"][0]
    assert citation["source"] == gold_link(GOLD[qid])
    hit = body["hits"][citation["ref"] - 1]
    assert hit["text"][citation["start"]:citation["end"]] == citation["text"]


def test_citation_link_opens_the_right_file_at_the_right_anchor(server, workspace):
    root, docs, env = workspace
    body = get(server, "/ask", q=QUERIES["e38"])  # an HTML page, served as it is
    citation = body["citations"][0]
    path, _, anchor = citation["source"].partition("#")
    assert (docs / path).is_file() and anchor == GOLD["e38"]["anchor"]
    url, _, fragment = citation["url"].partition("#")
    assert fragment == anchor
    with urllib.request.urlopen(server + url, timeout=30) as r:
        page = r.read().decode()
    assert page == (docs / path).read_text(encoding="utf-8")
    assert f'id="{anchor}"' in page


@pytest.mark.parametrize("qid", ["u1", "u4"])
def test_ask_abstains_on_questions_the_corpus_cannot_answer(server, qid):
    body = get(server, "/ask", q=UNANSWERABLE[qid], k=3)
    assert body["answer"] is None and body["answered"] is False and body["citations"] == []
    assert len(body["hits"]) == 3 and "closest passages" in body["note"]


# near misses: on topic (the VPN how-to is close in meaning, 0.51 and 0.54 before the term check, above the
# old threshold 0.44), but naming a device or a tool the documents never mention (docs/answers.md)
@pytest.mark.parametrize("question, term", [("How do I set up the VPN on an iPad?", "iPad"),
                                            ("How do I connect to the VPN with OpenVPN?", "OpenVPN")])
def test_ask_abstains_when_the_documents_never_mention_what_the_question_names(server, question, term):
    body = get(server, "/ask", q=question)
    assert body["answer"] is None and body["kind"] == "none" and body["missing_terms"] == [term], body
    assert f"never mention {term}" in body["note"] and body["hits"]
    answered = get(server, "/ask", q=QUERIES["e3"])
    assert answered["answered"] is True and answered["missing_terms"] == []


# a question asking for an amount or a frequency is answered by a quote that states one, and abstains
# when the closest passage (on topic: the VPN how-to, the dbt decision) gives none (answers/kinds.py)
@pytest.mark.parametrize("question, phrase", [("how much does the VPN cost?", "amount"),
                                              ("how often do we run the dbt models?", "frequency")])
def test_ask_abstains_when_the_quote_lacks_the_kind_of_answer_asked_for(server, question, phrase):
    body = get(server, "/ask", q=question)
    assert body["answer"] is None and body["kind"] == "none" and body["hits"], body
    assert f"the closest passage gives no {phrase}" in body["note"]


@pytest.mark.parametrize("question, stated", [("how much is the on-call allowance?", "250 pounds"),
                                              ("how often are API keys rotated?", "every 90 days")])
def test_a_quote_that_states_what_was_asked_for_is_answered(server, question, stated):
    body = get(server, "/ask", q=question)
    assert body["answered"] is True and stated in body["answer"], body


def test_cli_ask_gives_the_http_answer(server, workspace):
    root, docs, env = workspace
    http = get(server, "/ask", q=QUERIES["e3"])
    cli = km(env, "ask", QUERIES["e3"], "--index", "example", "--json")
    assert cli["answer"] == http["answer"] and cli["citations"] == http["citations"]
    assert [h["source"] for h in cli["hits"]] == [h["source"] for h in http["hits"]]


def test_cli_ask_says_what_the_closest_passage_lacks(workspace):
    root, docs, env = workspace
    run = subprocess.run([sys.executable, "-m", "km_search.cli", "ask", "how much does the VPN cost?", "--index",
                          "example"], capture_output=True, text=True, env={**env, "COLUMNS": "200"}, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "No confident answer in the documents: the closest passage gives no amount." in run.stdout
    assert "it/howto/set-up-vpn.html" in run.stdout


def test_unanswered_questions_and_feedback_show_up_as_knowledge_gaps(server, workspace):
    root, docs, env = workspace
    for q in ("How do I make sourdough bread?", "how to make sourdough bread at home",
              "What is a good sourdough bread recipe?", "Who won the 2022 FIFA World Cup?"):
        get(server, "/ask", q=q)
    answered = get(server, "/ask", q=QUERIES["e35"])
    request = urllib.request.Request(
        server + "/feedback", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"query_id": answered["query_id"], "helpful": False, "comment": "need the US numbers"}).encode())
    with urllib.request.urlopen(request, timeout=30) as r:
        assert json.load(r)["ok"] is True
    report = km(env, "gaps", "--index", "example", "--json")
    assert report["totals"]["abstained"] >= 4 and report["totals"]["negative_feedback"] >= 1
    bread = [t for t in report["topics"] if "sourdough" in t["question"].lower()]
    assert len(bread) == 1 and bread[0]["count"] == 3 and bread[0]["abstained"] == 3 and len(bread[0]["queries"]) == 3
    # what to write, not only what was asked
    reasons = bread[0]["reasons"]
    assert reasons and all(r.startswith("the documents never mention") and "sourdough" in r for r in reasons)
    assert any("FIFA" in t["question"] for t in report["topics"])
    assert any("need the US numbers" in t["comments"] for t in report["topics"])
    assert (root / "indexes" / "example" / "querylog.sqlite").exists()


def test_a_lesson_question_quotes_the_lessons_not_the_header_line(server):
    """Issue 17: the post-mortem's header line (title, authors, date, incident number) was the answer."""
    body = get(server, "/ask", q="what did we learn from the duplicate invoices incident")
    assert body["answered"] is True, body
    answer = body["answer"]
    assert "Priya Raman, Aisha Bello" not in answer and "SEV-1 2023-017" not in answer, answer
    assert not answer.startswith("Post-mortem:"), answer
    # one of the lessons (invariants in the database, alerts on them) or its action item (idempotency keys)
    assert any(w in answer for w in ("idempotent", "idempotency", "invariant")), answer
    assert body["citations"][0]["source"].startswith("billing/lessons/postmortem-2023-11-duplicate-invoices.pdf")


def test_a_why_question_quotes_the_context_that_gives_the_reason(server):
    body = get(server, "/ask", q="why did we move billing to postgres")
    assert body["answered"] is True, body
    assert body["citations"][0]["source"] == "billing/decisions/adr-012-move-billing-to-postgres.md#context", body
    assert quotes_gold(body["answer"], GOLD["e1"]["answer"]), body["answer"]


def test_ask_scores_with_sentence_vectors_stored_at_ingest(server, workspace):
    """The sentences of the passages /ask quotes from that lie inside each passage's forward pass have
    a vector stored by `km ingest` (the extractor's own spans); answering with them quotes the gold
    answer as embedding every sentence at query time does (KM_ANSWER_STORED_SENTENCES=false)."""
    from km_search.answers.extractive import embedded_spans
    from km_search.index.snapshot import Snapshot

    root, docs, env = workspace
    snapshot = Snapshot.open(root / "indexes" / "example")
    try:
        for qid in ("e3", "e35", "e38", "e2"):
            body = get(server, "/ask", q=QUERIES[qid])
            hits = body["hits"][:5]
            stored = snapshot.sentence_vectors([h["chunk_id"] for h in hits])
            for h, (spans, vectors) in zip(hits, stored):
                own = embedded_spans(h["text"])
                # search's prose sentences come first; the extractor's own are the first ones of the text
                mine = set(own)
                kept = sorted(tuple(s) for s in spans.tolist() if tuple(s) in mine)
                assert kept == own[: len(kept)] and kept
                assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=0.02)
            query_time = km({**env, "KM_ANSWER_STORED_SENTENCES": "false"}, "ask", QUERIES[qid], "--index", "example", "--json")
            assert quotes_gold(body["answer"], GOLD[qid]["answer"])
            assert quotes_gold(query_time["answer"], GOLD[qid]["answer"])
    finally:
        snapshot.close()
