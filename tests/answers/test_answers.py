"""The pure parts of answering: sentences, extraction, abstention, citation checks, scoring, gaps, the log."""

import sqlite3

import numpy as np
import pytest

from km_search.answers.extractive import (
    AnswerParams,
    coverage,
    extract_answer,
    glued_heading,
    heading_matches,
    headings_before,
    is_metadata_line,
    question_focus,
    repeats_title,
    is_yes_no_question,
    rarity_weights,
    restates,
    split_sentences,
    supporting_span,
    _trigrams,
)
from evaluation.answers import AnswerOutcome, at_threshold, calibrate, quotes_gold
from km_search.answers.gaps import cluster, distinct_questions, find_gaps
from km_search.answers.llm import build_messages, cited_answer, endpoint
from km_search.answers.querylog import LoggedQuery, QueryLog, UnknownQuery
from km_search.types import Hit


def hit(text: str, n: int = 0, score: float = 1.0, source: str = "a.md#top") -> Hit:
    return Hit(chunk_id=100 + n, text=text, source=source, title=f"Doc {n}", score=score, doc_id=n)


# ---- sentences -------------------------------------------------------------------------------


def test_sentences_are_offsets_into_the_text_trimmed():
    text = "  First one. Second? Third!\nFourth line without stop\n\ne.g. lower case stays "
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == [
        "First one.", "Second?", "Third!", "Fourth line without stop", "e.g. lower case stays"]


def test_sentence_boundary_needs_a_capital_or_digit_after_it():
    text = "See the docs, e.g. the manual. Version 2.1 is out. 3 files changed."
    assert [text[a:b] for a, b in split_sentences(text)] == [
        "See the docs, e.g. the manual.", "Version 2.1 is out.", "3 files changed."]


def test_long_sentences_are_cut_at_clauses_then_words():
    words = " ".join(f"w{i}" for i in range(70))
    text = f"Intro part; {words} end."
    spans = split_sentences(text)
    assert text[spans[0][0]:spans[0][1]] == "Intro part;"
    assert len(spans) == 3 and all(len(text[a:b].split()) <= 60 for a, b in spans)
    assert " ".join(text[a:b] for a, b in spans) == text


def test_empty_text_has_no_sentences():
    assert split_sentences("") == [] and split_sentences("  \n ") == []


# ---- features --------------------------------------------------------------------------------


def test_rare_words_weigh_more_and_unseen_words_most():
    weights = rarity_weights(["hotel", "london", "sourdough"], {"hotel": 50, "london": 2}, total=100)
    assert weights["sourdough"] > weights["london"] > weights["hotel"]
    assert coverage("Hotels in London cost 220 pounds.", weights) == pytest.approx(
        (weights["hotel"] + weights["london"]) / sum(weights.values()))
    assert coverage("anything", {}) == 0.0


def test_yes_no_questions():
    assert is_yes_no_question("Can I install Debian from USB?")
    assert is_yes_no_question("I run stable. Is testing safer?")
    assert not is_yes_no_question("How do I install Debian?")


def test_a_sentence_repeating_the_question_is_a_reference_not_an_answer():
    question = _trigrams("on what hardware architectures does debian run".split())
    assert restates(question, "See Section 4.1, “On what hardware architectures does Debian run?”.")
    assert not restates(question, "Debian runs on amd64, arm64 and many other architectures.")


# ---- extraction ------------------------------------------------------------------------------


def test_extractive_answer_quotes_the_best_sentence_with_offsets(fake_embedder):
    hits = [
        hit("Our VPN uses WireGuard. Install the client from the IT portal.", 0),
        hit("Travel is booked in the travel tool. Hotels in London are reimbursed up to 220 GBP per night. "
            "Breakfast is included.", 1, score=0.8, source="hr/travel.md#hotels"),
    ]
    answer = extract_answer("How much are hotels in London reimbursed per night?", hits, fake_embedder.encode,
                            {"hotels": 2.0, "london": 2.0, "reimbursed": 1.0, "night": 1.0}, AnswerParams(0.2))
    assert answer.answered and answer.kind == "extractive"
    (citation,) = answer.citations
    assert citation.ref == 2 and citation.source == "hr/travel.md#hotels" and citation.doc_id == 1
    assert hits[1].text[citation.start:citation.end] == citation.text == answer.text
    assert answer.text.startswith("Hotels in London are reimbursed up to 220 GBP per night.")
    assert 0.2 <= answer.confidence <= 1


def test_a_short_yes_takes_the_next_sentence(fake_embedder):
    hits = [hit("Yes. You can install Debian from a USB stick with the netinst image. Other text follows here.")]
    answer = extract_answer("Can I install Debian from a USB stick?", hits, fake_embedder.encode,
                            {"install": 1.0, "debian": 1.0, "usb": 1.0, "stick": 1.0}, AnswerParams(0.0))
    assert answer.text is not None
    assert answer.text.startswith("Yes. You can install Debian from a USB stick")


def test_weak_evidence_abstains_and_says_so(fake_embedder):
    hits = [hit("Install the WireGuard client and import the profile from the IT portal.")]
    answer = extract_answer("What is the capital of Australia?", hits, fake_embedder.encode,
                            {"capital": 5.0, "australia": 5.0}, AnswerParams(0.5))
    assert answer.text is None and answer.kind == "none" and answer.citations == ()
    assert answer.confidence < 0.5 and "closest passages" in answer.note


def test_no_hits_is_an_abstention(fake_embedder):
    answer = extract_answer("anything", [], fake_embedder.encode, {}, AnswerParams(0.0))
    assert answer.text is None and answer.confidence == 0.0


def test_supporting_span_is_the_sentence_sharing_most_words():
    text = "The VPN uses WireGuard. Hotels in London cost up to 220 GBP. Breakfast is included."
    start, end = supporting_span(text, ["London hotels are capped at 220 GBP [1]."])
    assert text[start:end] == "Hotels in London cost up to 220 GBP."


# ---- language model answers ------------------------------------------------------------------


@pytest.mark.parametrize("url, expected", [
    ("http://h:8080", "http://h:8080/v1/chat/completions"),
    ("http://h:8080/v1/", "http://h:8080/v1/chat/completions"),
    ("http://h/v1/chat/completions", "http://h/v1/chat/completions"),
])
def test_endpoint_accepts_root_v1_or_full_address(url, expected):
    assert endpoint(url) == expected


def test_only_sentences_citing_a_given_passage_are_kept():
    text = ("Hotels in London are capped at 220 GBP [1]. Breakfast is included.[2] "
            "The CEO loves London. Flights need approval [7]. Both rules apply [1, 2]. [3]")
    cited = cited_answer(text, passages=2)
    assert [s for s, _ in cited.sentences] == [
        "Hotels in London are capped at 220 GBP [1].", "Breakfast is included.[2]", "Both rules apply [1, 2]."]
    assert [refs for _, refs in cited.sentences] == [(1,), (2,), (1, 2)]
    assert cited.dropped == ("The CEO loves London.", "Flights need approval [7].")
    assert cited.text.startswith("Hotels in London are capped at 220 GBP [1]. Breakfast")


def test_i_dont_know_keeps_nothing():
    assert cited_answer("I don't know.", 3).sentences == ()


def test_prompt_numbers_the_passages():
    messages = build_messages("Why?", [hit("Alpha.", 0), hit("Beta.", 1)])
    assert messages[0]["role"] == "system" and "[1]" in messages[0]["content"]
    assert "[1] Doc 0\nAlpha." in messages[1]["content"] and "[2] Doc 1\nBeta." in messages[1]["content"]
    assert messages[1]["content"].endswith("Question: Why?")


# ---- scoring answers -------------------------------------------------------------------------


GOLD = "Your line manager approves every laptop request in ServiceDesk; the request does not reach IT until they have."


@pytest.mark.parametrize("answer, ok", [
    ("Your line manager approves every laptop request in ServiceDesk.", True),
    ("line manager approves", True),  # short: must occur word for word
    ("manager line approves", False),
    ("IT orders the laptop from the supplier once the department head has signed the order form.", False),
    ("", False),
])
def test_quotes_gold(answer, ok):
    assert quotes_gold(answer, GOLD) is ok


def outcome(answerable: bool, confidence: float, correct: bool | None = None) -> AnswerOutcome:
    return AnswerOutcome("q", "?", answerable, confidence, "a", correct, None, None, None, 1.0)


def test_threshold_metrics_and_calibration():
    outcomes = [outcome(True, 0.9, True), outcome(True, 0.7, False), outcome(True, 0.4, True),
                outcome(False, 0.5), outcome(False, 0.2)]
    r = at_threshold(outcomes, 0.6)
    assert r["coverage"] == pytest.approx(2 / 3, abs=1e-3) and r["precision"] == 1.0
    assert r["abstention_recall"] == 1.0 and r["abstention_precision"] == pytest.approx(2 / 3, abs=1e-3)
    assert r["answered_correct"] == pytest.approx(1 / 3, abs=1e-3) and r["correct_precision"] == 0.5
    best = calibrate(outcomes)
    assert 0.5 < best["threshold"] <= 0.7 and best["balanced_accuracy"] == pytest.approx((2 / 3 + 1) / 2, abs=1e-3)


# ---- gaps ------------------------------------------------------------------------------------


def logged(query: str, ts: str, answered=False, negative=0, comments=(), reason=None) -> LoggedQuery:
    return LoggedQuery(id=ts, ts=ts, kind="ask", query=query, results=3, confidence=0.1, answered=answered,
                       low_score=answered is not False, negative_feedback=negative, comments=tuple(comments),
                       reason=reason)


def test_cluster_groups_by_similarity_in_order():
    v = np.array([[1, 0, 0], [0.95, 0.31, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert cluster(v, 0.8) == [[0, 1], [2], [3]]
    assert cluster(v, 0.99) == [[0], [1], [2], [3]]


def test_gap_topics_count_repeats_and_feedback(fake_embedder):
    queries = [
        logged("What is the parental leave policy?", "2026-01-03", reason="the documents never mention parental"),
        logged("parental leave policy", "2026-01-02", reason="the documents never mention parental"),
        logged("What is the parental leave policy", "2026-01-01", negative=1, comments=["nothing on this"]),
        logged("How do I expense a taxi?", "2026-01-01", answered=None),
    ]
    questions = distinct_questions(queries)
    assert questions[0] == "What is the parental leave policy?"  # asked twice, newest spelling
    topics = find_gaps(queries, questions, fake_embedder.encode(questions), similarity=0.5)
    assert [t.count for t in topics] == [3, 1]
    first = topics[0]
    assert first.last_seen == "2026-01-03" and first.abstained == 3 and first.negative_feedback == 1
    assert first.comments == ("nothing on this",) and len(first.queries) == 2
    assert first.reasons == ("the documents never mention parental",) and topics[1].reasons == ()
    assert topics[1].question == "How do I expense a taxi?" and topics[1].low_score == 1


# ---- the query log ---------------------------------------------------------------------------


def test_query_log_records_feedback_and_weak_queries(tmp_path):
    qlog = QueryLog(tmp_path / "idx" / "querylog.sqlite")
    good = qlog.record("search", "vpn setup", results=3, latency_ms=5.0, top_score=1.0, confidence=0.8)
    weak = qlog.record("ask", "capital of australia", results=3, latency_ms=9.0, confidence=0.2, answered=False,
                       reason="the documents never mention australia")
    empty = qlog.record("search", "zzz", results=0, latency_ms=1.0, confidence=0.0)
    assert good and weak and empty and len({good, weak, empty}) == 3
    qlog.add_feedback(good, helpful=False, target="passage", source="it/vpn.md#top", comment="outdated")
    with pytest.raises(UnknownQuery):
        qlog.add_feedback("nope", helpful=True)
    found = {q.query: q for q in qlog.weak_queries(min_confidence=0.5)}
    assert set(found) == {"vpn setup", "capital of australia", "zzz"}
    assert found["vpn setup"].negative_feedback == 1 and found["vpn setup"].comments == ("outdated",)
    assert found["vpn setup"].low_score is False and found["zzz"].low_score is True
    assert found["capital of australia"].answered is False
    assert found["capital of australia"].reason == "the documents never mention australia"
    assert qlog.totals() == {"queries": 3, "asked": 1, "answered": 0, "abstained": 1, "feedback": 1,
                             "negative_feedback": 1}
    mode = sqlite3.connect(tmp_path / "idx" / "querylog.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_a_log_written_before_reasons_were_kept_gains_the_column(tmp_path):
    path = tmp_path / "querylog.sqlite"
    old = sqlite3.connect(path)
    old.executescript("""CREATE TABLE queries (id TEXT PRIMARY KEY, ts TEXT NOT NULL, kind TEXT NOT NULL,
        query TEXT NOT NULL, mode TEXT, results INTEGER NOT NULL, top_score REAL, confidence REAL, answered INTEGER,
        answer_kind TEXT, latency_ms REAL NOT NULL, snapshot TEXT);
        INSERT INTO queries VALUES ('a', '2026-11-01T00:00:00+00:00', 'ask', 'old question', NULL, 3, NULL, 0.1, 0,
        'none', 5.0, NULL);""")
    old.close()
    qlog = QueryLog(path)
    assert qlog.record("ask", "new question", results=3, latency_ms=1.0, confidence=0.1, answered=False,
                       reason="the closest passage gives no amount")
    found = {q.query: q.reason for q in qlog.weak_queries(min_confidence=0.5)}
    assert found == {"old question": None, "new question": "the closest passage gives no amount"}


def test_a_broken_log_never_fails_the_query(tmp_path):
    (tmp_path / "querylog.sqlite").mkdir()  # a folder where the database should be
    assert QueryLog(tmp_path / "querylog.sqlite").record("search", "q", results=1, latency_ms=1.0) is None


def test_evaluate_answers_runs_a_set_end_to_end(tmp_path, fake_embedder):
    import json

    from evaluation.answers import evaluate_answers, evaluation_settings
    from km_search.service import SearchService
    from km_search.settings import Settings

    docs = tmp_path / "set" / "docs"
    docs.mkdir(parents=True)
    (docs / "travel.md").write_text("# Hotels\n\nHotels in London are reimbursed up to 220 GBP per night.\n")
    (docs / "vpn.md").write_text("# VPN\n\nInstall the WireGuard client from the IT portal.\n")
    (tmp_path / "set" / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "How much are hotels in London reimbursed per night?"}) + "\n"
        + json.dumps({"_id": "q2", "text": "Where do I get the WireGuard client?"}) + "\n")
    (tmp_path / "set" / "gold.jsonl").write_text(
        json.dumps({"query_id": "q1", "answer": "Hotels in London are reimbursed up to 220 GBP per night.",
                    "source": "travel.md", "anchor": "hotels"}) + "\n"
        + json.dumps({"query_id": "q2", "answer": "Install the WireGuard client from the IT portal.",
                      "source": "vpn.md", "anchor": "vpn"}) + "\n")
    unanswerable = tmp_path / "unanswerable.jsonl"
    unanswerable.write_text(json.dumps({"_id": "u1", "text": "Who painted the Mona Lisa?"}) + "\n")
    settings = Settings(index_dir=tmp_path / "unused")

    def factory(folder):
        return SearchService(evaluation_settings(settings, folder), "eval", embedder=fake_embedder)

    summary, outcomes = evaluate_answers(tmp_path / "set", factory, 0.3, unanswerable)
    assert summary["answerable"] == 2 and summary["unanswerable"] == 1
    assert summary["answer_quality"] == 1.0 and summary["cited_gold_section"] == 1.0
    assert summary["calibrated"]["balanced_accuracy"] == 1.0
    assert [o.query_id for o in outcomes] == ["q1", "q2", "u1"] and outcomes[2].correct is None
    with pytest.raises(ValueError, match="evaluation_settings"):
        evaluate_answers(tmp_path / "set", lambda folder: SearchService(settings, embedder=fake_embedder), 0.3)


# ---- body text, reasons and lessons ------------------------------------------------------------

POSTMORTEM = "Post-mortem: duplicate invoices and double charges, November 2023"


def test_a_title_or_heading_line_is_not_body_text():
    assert repeats_title("Post-mortem: duplicate invoices and double", [POSTMORTEM])
    assert repeats_title("charges, November 2023", [POSTMORTEM])
    assert repeats_title(POSTMORTEM + " Priya Raman, Aisha Bello - 2023-11-09 Incident SEV-1 2023-017.", [POSTMORTEM])
    assert repeats_title("Context", ["ADR-012: Move billing to PostgreSQL", "Context"])
    assert not repeats_title("Every double charge was refunded by 17:00 UTC on 3 November.", [POSTMORTEM])
    assert not repeats_title(POSTMORTEM + " taught us that retries must be idempotent.", [POSTMORTEM])


def test_a_line_of_names_dates_and_ids_is_metadata():
    assert is_metadata_line("Priya Raman, Aisha Bello - 2023-11-09")
    assert is_metadata_line("Incident SEV-1 2023-017.")
    assert not is_metadata_line("Use PostgreSQL 15.")  # no date or id: a terse answer, not a byline
    assert not is_metadata_line("Every double charge was refunded by 17:00 UTC on 3 November 2023.")
    assert not is_metadata_line("Yes.")


def test_question_focus():
    assert question_focus("why did we move billing to postgres?") == "reasons"
    assert question_focus("What made us pick MySQL originally?") == "reasons"
    assert question_focus("what did we learn from the duplicate invoices incident") == "lessons"
    assert question_focus("what are the action items of the outage?") == "lessons"
    assert question_focus("who approves laptop requests?") == "outcome"  # what is done, as a record decides it
    assert question_focus("what is an overlap window?") is None  # what something is
    assert question_focus("what are the steps to rotate an api key") == "outcome"  # what is done: its steps
    assert question_focus("what is the procedure for a lost laptop?") == "outcome"


def test_headings_that_answer_a_focus():
    assert heading_matches("Context", "reasons") and heading_matches("Root cause", "reasons")
    assert heading_matches("Lessons learned", "lessons") and heading_matches("Action items", "lessons")
    assert not heading_matches("Consequences", "reasons") and not heading_matches("Timeline", "lessons")
    assert not heading_matches("Context", None)
    assert heading_matches("Rotation steps", "outcome") and heading_matches("Install instructions", "outcome")


def test_a_heading_glued_to_its_first_sentence_names_the_section():
    text = ("The retry created a second invoice. What went well Pausing collection early helped. "
            "Lessons learned Retrying is only safe when idempotent. A timeout does not mean failure. "
            "Action items • Add a unique constraint.")
    spans = split_sentences(text)
    assert headings_before(text, spans, "") == [
        "", "What went well", "Lessons learned", "Lessons learned", "Action items"]
    assert glued_heading("Context is everything here.") is None  # no capital after: prose


def test_a_heading_on_its_own_line_names_the_section_and_is_never_quoted(fake_embedder):
    """A PDF page keeps its headings as lines of the passage: "Lessons learned" alone on a line."""
    text = (POSTMORTEM + "\nPriya Raman, Aisha Bello - 2023-11-09\nSummary\n"
            "Workers charged 212 customers twice during the monthly run.\n"
            "Lessons learned:\nRetrying an operation that moves money is only safe when it is idempotent.")
    spans = split_sentences(text)
    assert headings_before(text, spans, "")[-3:] == ["Summary", "Lessons learned", "Lessons learned"]
    assert glued_heading("Lessons learned:") == "Lessons learned" and glued_heading("Lessons are learned") is None
    hits = [Hit(chunk_id=1, text=text, source="p.pdf#page=1", title=POSTMORTEM, score=1.0, page=1, doc_id=1)]
    for question, expected in (("what did we learn from the duplicate invoices incident", "Retrying an operation"),
                               ("summary: were customers charged twice?", "Workers charged 212 customers")):
        answer = extract_answer(question, hits, fake_embedder.encode,
                                {"learn": 1.0, "duplicate": 2.0, "invoices": 2.0, "summary": 2.0}, AnswerParams(0.0))
        assert answer.text.startswith(expected), answer.text  # not the heading line before it


def test_a_lesson_question_is_answered_from_the_lessons_not_the_header(fake_embedder):
    text = (POSTMORTEM + " Priya Raman, Aisha Bello - 2023-11-09 Incident SEV-1 2023-017. "
            "Summary The duplicate invoices incident charged 212 customers twice during the monthly invoice run. "
            "Lessons learned Retrying an operation that moves money is only safe when it is idempotent.")
    hits = [Hit(chunk_id=1, text=text, source="p.pdf#page=1", title=POSTMORTEM, score=1.0, page=1, doc_id=1)]
    answer = extract_answer("what did we learn from the duplicate invoices incident", hits, fake_embedder.encode,
                            {"learn": 1.0, "duplicate": 2.0, "invoices": 2.0, "incident": 1.0}, AnswerParams(0.0))
    assert "Lessons learned Retrying an operation" in answer.text
    assert "Priya Raman" not in answer.text and "2023-017" not in answer.text  # no byline, no id line


def test_a_why_question_prefers_the_context_to_the_consequences(fake_embedder):
    hits = [
        Hit(chunk_id=1, text="Billing on-call joins the shared PostgreSQL runbooks after we move billing.",
            source="adr.md#consequences", title="ADR-012: Move billing to PostgreSQL", score=1.0,
            heading_path=("ADR-012: Move billing to PostgreSQL", "Consequences"), doc_id=1),
        Hit(chunk_id=2, text="MySQL has become the main source of billing incidents and slow work.",
            source="adr.md#context", title="ADR-012: Move billing to PostgreSQL", score=0.95,
            heading_path=("ADR-012: Move billing to PostgreSQL", "Context"), doc_id=1),
    ]
    answer = extract_answer("why did we move billing to postgres?", hits, fake_embedder.encode,
                            {"move": 1.0, "billing": 1.0, "postgres": 2.0}, AnswerParams(0.0))
    assert answer.citations[0].source == "adr.md#context"


def test_with_a_candidate_limit_only_the_promising_sentences_and_their_neighbours_are_embedded():
    from km_search.answers.extractive import score_sentences

    text = ("Cats sleep a lot during the day. Dogs bark loudly at the strangers outside. The billing database "
            "moved to Postgres in 2023. Postgres replication is now streaming everywhere. Lunch is served at noon "
            "every day. Parking is free on Fridays for everyone.")
    seen: list[str] = []

    def encode(texts):
        seen.extend(texts)
        return np.ones((len(texts), 4), dtype=np.float32) / 2.0

    weights = {"postgres": 1.0, "billing": 1.0}
    every, _ = score_sentences("why postgres for billing", [hit(text)], encode, weights)
    embedded_all = len(seen) - 1
    seen.clear()
    few, _ = score_sentences("why postgres for billing", [hit(text)], encode, weights, candidates=2)
    assert embedded_all == 6 and len(seen) - 1 == 3  # the best sentence and its two neighbours
    assert "The billing database moved to Postgres in 2023." in seen
    assert "Parking is free on Fridays for everyone." not in seen
    assert few[0].start == every[0].start  # the winner is the same


# ---- stored sentence vectors -----------------------------------------------------------------


def test_a_short_sentence_is_judged_together_with_the_next():
    from km_search.answers.extractive import embedded_spans

    text = "Yes. You can install it from a stick. It works offline too."
    assert embedded_spans(text) == [(0, 37), (5, 37), (38, 59)]
    assert embedded_spans("Yes.") == [(0, 4)]


def _stored(embedder, hits, leave_out=()):
    from km_search.answers.extractive import embedded_spans

    out = []
    for h in hits:
        spans = [s for s in embedded_spans(h.text) if h.text[s[0]:s[1]] not in leave_out]
        out.append((np.asarray(spans, dtype=np.int32).reshape(-1, 2), embedder.encode([h.text[a:b] for a, b in spans])))
    return out


def test_stored_sentence_vectors_give_the_same_answer_without_embedding_any_sentence(fake_embedder):
    hits = [
        hit("Our VPN uses WireGuard. Install the client from the IT portal.", 0),
        hit("Travel is booked in the travel tool. Hotels in London are reimbursed up to 220 GBP per night. "
            "Breakfast is included.", 1, score=0.8, source="hr/travel.md#hotels"),
    ]
    question = "How much are hotels in London reimbursed per night?"
    weights = {"hotels": 2.0, "london": 2.0, "reimbursed": 1.0, "night": 1.0}
    now = extract_answer(question, hits, fake_embedder.encode, weights, AnswerParams(0.2))
    stored = _stored(fake_embedder, hits)
    seen: list[str] = []

    def encode(texts):
        seen.extend(texts)
        return fake_embedder.encode(texts)

    ready = extract_answer(question, hits, encode, weights, AnswerParams(0.2), sentence_vectors=stored,
                           question_vector=fake_embedder.encode([question])[0])
    assert seen == [] and ready == now
    # a sentence without a stored vector (past the model's token limit at ingest) is embedded now, alone
    partial = _stored(fake_embedder, hits, leave_out={"Breakfast is included."})
    assert extract_answer(question, hits, encode, weights, AnswerParams(0.2), sentence_vectors=partial) == now
    assert seen == [question, "Breakfast is included."]


def test_refining_embeds_the_best_few_alone_and_scores_them_by_that():
    from km_search.answers.extractive import score_sentences

    text = ("Cats sleep a lot during the day. Dogs bark loudly at the strangers outside. The billing database "
            "moved to Postgres in 2023. Postgres replication is now streaming everywhere. Lunch is served at noon "
            "every day. Parking is free on Fridays for everyone.")
    spans = split_sentences(text)
    question = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    # stored vectors (pooled in context) all lean to the question a little; Postgres' the most
    stored = np.tile(np.array([0.6, 0.8, 0.0, 0.0], dtype=np.float32), (len(spans), 1))
    stored[2] = [0.8, 0.6, 0.0, 0.0]
    alone = {text[a:b]: (np.array([0.1, 0.0, 0.995, 0.0]) if i != 3 else np.array([0.99, 0.141, 0.0, 0.0]))
             for i, (a, b) in enumerate(spans)}
    seen: list[str] = []

    def encode(texts):
        seen.extend(texts)
        return np.stack([alone[t] for t in texts]).astype(np.float32)

    weights = {"postgres": 1.0, "billing": 1.0}
    plain, _ = score_sentences("why postgres for billing", [hit(text)], encode, weights,
                               stored=[(np.asarray(spans), stored)], question_vector=question)
    assert seen == [] and plain[0].start == spans[2][0] and plain[0].semantic == pytest.approx(0.8, abs=1e-6)
    refined, _ = score_sentences("why postgres for billing", [hit(text)], encode, weights,
                                 stored=[(np.asarray(spans), stored)], question_vector=question, refine=2)
    # the two best by stored vectors, then the most similar to the question of the others, and the best
    # until it was embedded alone: replication wins on its own embedding
    assert seen[:2] == [text[a:b] for a, b in (spans[2], spans[3])] and len(seen) == 3
    assert refined[0].start == spans[3][0] and refined[0].semantic == pytest.approx(0.99, abs=1e-3)


def test_the_sentences_to_refine_are_embedded_with_the_fresh_ones_in_one_call():
    """One call runs its batches side by side on a server's cores; two calls ran one after the other."""
    from km_search.answers.extractive import score_sentences

    text = ("The billing database moved to Postgres in 2023. Postgres replication is now streaming everywhere. "
            "Lunch is served at noon every day. Parking is free on Fridays for everyone.")
    spans = split_sentences(text)
    question = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    stored = np.tile(np.array([0.6, 0.8, 0.0, 0.0], dtype=np.float32), (len(spans) - 1, 1))  # the last not stored
    stored[0] = [0.8, 0.6, 0.0, 0.0]
    calls: list[list[str]] = []

    def encode(texts):
        calls.append(list(texts))
        return np.tile(np.array([0.7, 0.7, 0.0, 0.0], dtype=np.float32), (len(texts), 1))

    scored, _ = score_sentences("why postgres for billing", [hit(text)], encode, {"postgres": 1.0, "billing": 1.0},
                                stored=[(np.asarray(spans[:-1]), stored)], question_vector=question, refine=2)
    first = calls[0]
    assert first[0] == text[slice(*spans[-1])]  # the sentence without a stored vector
    assert first[1:3] == [text[slice(*spans[0])], text[slice(*spans[1])]]  # and the two best stored ones
    assert sum(len(c) for c in calls) == len(set(t for c in calls for t in c))  # none embedded twice
    assert len(scored) == len(spans) and scored[0].semantic == pytest.approx(0.7)  # scored by the fresh vectors


def _joined_record() -> Hit:
    """A short decision record packed into one passage as ingest joins it: each part on its own lines."""
    from km_search.types import Part

    title = "8. Postgres on Puppetmaster"
    parts = [("Date: 2017-07-04", "adr.md#8-postgres-on-puppetmaster", (title,)),
             ("Status\nAccepted", "adr.md#status", (title, "Status")),
             ("Context\nWe need to decide whether to run PostgreSQL on the Puppetmaster itself or use RDS. "
              "Currently our Puppetmaster uses a local PostgreSQL instance as its database.", "adr.md#context",
              (title, "Context")),
             ("Decision\nThe Puppetmaster will continue to use a local instance of PostgreSQL.", "adr.md#decision",
              (title, "Decision"))]
    offsets, text = [], ""
    for body, _, _ in parts:
        offsets.append(len(text) + (1 if text else 0))
        text = f"{text}\n{body}" if text else body
    return Hit(chunk_id=1, text=text, source="adr.md#context", title=title, score=1.0,
               heading_path=(title, "Context"), doc_id=1,
               parts=tuple(Part(o, link, path) for o, (_, link, path) in zip(offsets, parts)))


def test_a_joined_record_is_quoted_part_by_part_and_never_its_headings_or_date(fake_embedder):
    record = _joined_record()
    spans = split_sentences(record.text)
    assert [record.text[a:b] for a, b in spans][:4] == ["Date: 2017-07-04", "Status", "Accepted", "Context"]
    answer = extract_answer("puppetmaster database: RDS or local postgres", [record],
                            fake_embedder.encode, {"puppetmaster": 2.0, "local": 1.0, "postgres": 2.0, "rds": 2.0},
                            AnswerParams(0.0, max_sentences=1))
    assert answer.text == "The Puppetmaster will continue to use a local instance of PostgreSQL."
    assert answer.citations[0].source == "adr.md#decision"  # the part quoted, not the passage's own link


def test_each_sentence_of_a_joined_passage_is_under_its_parts_heading():
    record = _joined_record()
    spans = split_sentences(record.text)
    under = dict(zip((record.text[a:b] for a, b in spans), headings_before(record.text, spans, "Context", record.parts)))
    assert under["Date: 2017-07-04"] == "8. Postgres on Puppetmaster"
    assert under["Currently our Puppetmaster uses a local PostgreSQL instance as its database."] == "Context"
    assert under["The Puppetmaster will continue to use a local instance of PostgreSQL."] == "Decision"
    assert question_focus("puppetmaster database: RDS or local postgres") == "outcome"
    assert heading_matches("Decision", "outcome") and not heading_matches("Context", "outcome")


def test_a_runbook_question_is_answered_from_the_mitigation_of_its_own_runbook_only(fake_embedder):
    def section(chunk_id, doc_id, heading, text, score):
        return Hit(chunk_id=chunk_id, text=text, source=f"{doc_id}.md#{heading.lower()}", title=f"Runbook {doc_id}",
                   score=score, heading_path=(f"Runbook {doc_id}", heading), doc_id=doc_id, doc_path=f"{doc_id}.md")

    meaning = section(1, 1, "Meaning", "The persistent volume has errors while provisioning storage.", 1.0)
    mitigation = section(2, 1, "Mitigation", "When provisioning errors persist, restore the volume from backup.", 0.9)
    weights = {"persistent": 2.0, "volume": 1.0, "provisioning": 2.0, "errors": 1.0}
    question = "persistent volume provisioning errors, what do we do"
    assert question_focus(question) == "outcome"
    answer = extract_answer(question, [meaning, mitigation], fake_embedder.encode, weights, AnswerParams(0.0))
    assert answer.citations[0].source == "1.md#mitigation"
    # another runbook's mitigation gains nothing: the bonus picks a part of the answering document
    other = section(3, 2, "Mitigation", "Restart the exporter pod.", 0.9)
    answer = extract_answer(question, [meaning, other], fake_embedder.encode, weights, AnswerParams(0.0))
    assert answer.citations[0].source == "1.md#meaning"
    # a question of what the alert means is answered by its meaning
    assert question_focus("what does a persistent volume provisioning error mean") is None


def test_a_candidate_limit_caps_only_the_sentences_without_a_stored_vector(fake_embedder):
    """A first-pass index stores the sentences inside each passage's own forward pass: those are all
    scored for free, and of the rest only the most promising few are embedded at query time."""
    text = ("Hotels in London are reimbursed up to 220 GBP per night. " +
            " ".join(f"Clause {i} covers another travel rule." for i in range(10)) +
            " The London hotel limit rises to 250 GBP in December.")
    hits = [hit(text, 0)]
    weights = {"hotels": 2.0, "london": 2.0, "reimbursed": 1.0, "night": 1.0}
    spans = split_sentences(text)
    stored = _stored(fake_embedder, hits, leave_out={text[a:b] for a, b in spans[3:]})  # a pass that saw 3
    seen: list[str] = []

    def encode(texts):
        seen.extend(texts)
        return fake_embedder.encode(texts)

    answer = extract_answer("How much are hotels in London reimbursed per night?", hits, encode, weights,
                            AnswerParams(0.0, candidates=2), sentence_vectors=stored,
                            question_vector=fake_embedder.encode(["How much are hotels in London reimbursed per night?"])[0])
    unstored = {text[a:b] for a, b in spans[3:]}
    assert 0 < len(set(seen) & unstored) <= 3  # the best by vocabulary and its neighbours, not all nine
    assert "The London hotel limit rises to 250 GBP in December." in seen  # the tail sentence naming London
    assert answer.text.startswith("Hotels in London are reimbursed")  # stored sentences still compete
