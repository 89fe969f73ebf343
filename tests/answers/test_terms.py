"""The question's specific terms and the confidence rule that checks them against the quoted passage."""

import numpy as np
import pytest

from km_search.answers import terms
from km_search.answers.extractive import AnswerParams, extract_answer
from km_search.answers.terms import (
    TermEvidence,
    contains_term,
    is_specific,
    specific_terms,
    term_evidence,
    term_penalty,
)
from km_search.types import Hit


@pytest.mark.parametrize("question, expected", [
    ("how do I book a meeting room in the Denver office?", ["Denver"]),  # a capitalized word inside
    ("Where can I park near the New York office?", ["New", "York"]),
    ("How do we upgrade Terraform from 0.11 to 0.12?", ["Terraform", "0.11", "0.12"]),  # versions
    ("why are we moving to the London region eu-west-2", ["London", "eu-west-2"]),  # identifiers
    ("how often does govuk_env_sync run", ["govuk_env_sync"]),
    ("container keeps getting OOMKilled", ["OOMKilled"]),  # CamelCase
    ("is 1Password approved at GSA?", ["1Password", "GSA"]),  # acronyms
    ("NodeDiskIOSaturation", ["NodeDiskIOSaturation"]),  # the first word counts when its form is specific
    ("use data.table fread to load a big CSV", ["data.table", "CSV"]),
    ("When will R 5.0 be released?", ["R", "5.0"]),
    ("What is the weekend on-call pay?", []),  # a plain compound is a word, not a name
    ("make a failed batch job safe to re-run", []),
    ("What is the capital? Where is it?", []),  # a capital after a sentence end opens the sentence
    ("Who approves laptop requests in our IT department?", ["IT"]),  # an acronym that is a stopword
    ("I installed Knoppix/Ubuntu on my disk", ["Knoppix", "Ubuntu"]),  # a slash separates alternatives
    ("How do I make a bar chart with ggplot2?", ["ggplot2"]),
    ("Is there a gym in the Chicago office? chicago", ["Chicago"]),  # once, case-insensitively
    # a quoted message opens with a capital; X and Y are placeholders; C is a language
    ("I get an error about “Implicitly combining column X under attribute Y”", []),
    ("How do I call a C function from Python?", ["C", "Python"]),
])
def test_specific_terms(question, expected):
    assert specific_terms(question) == expected


def test_is_specific_skips_question_words_and_plain_words():
    assert not is_specific("What", 0) and not is_specific("What", 3)
    assert not is_specific("I", 2) and not is_specific("office", 4)
    assert is_specific("Miro", 3) and not is_specific("Miro", 3, after_sentence_end=True)


def test_contains_term_by_stem_or_verbatim():
    assert contains_term("Book a room in the Denver office.", "Denver")
    assert contains_term("we pin the ami name", "AMI")  # case-insensitive
    assert contains_term("Terraform 0.11 is used", "0.11") and not contains_term("version 0 or 11", "0.11")
    assert not contains_term("San Francisco office booking", "Denver")


FREQ = {"Denver": 0, "Chicago": 3, "Debian": 500, "room": 40, "book": 12, "pushgateway": 0, "gym": 0, "office": 80}


def test_evidence_tells_unseen_from_absent_and_ignores_the_collections_topic():
    sf = ["Book rooms in the San Francisco office with BookIt!", "Offices", "San Francisco"]
    ev = term_evidence("how do I book a room in the Denver office?", sf, FREQ, 1000, ["book", "room", "denver"])
    assert ev == TermEvidence(unseen=("Denver",), absent=(), unseen_words=())
    ev = term_evidence("Is there a gym in the Chicago office?", sf, FREQ, 1000, ["gym", "chicago", "office"])
    assert ev.absent == ("Chicago",) and ev.unseen_words == ("gym",) and ev.missing == ("Chicago", "gym")
    # "Debian" is in half the passages: the collection's subject, which a passage need not repeat
    assert term_evidence("How does Debian name releases?", ["Releases get code names."], FREQ, 1000).missing == ()
    # the heading path and title count as the passage
    assert term_evidence("Chicago office gym", ["There is a gym.", "Chicago"], FREQ, 1000, ["office"]) == TermEvidence()


def test_penalty_counts_each_kind_once():
    assert term_penalty(TermEvidence()) == 0
    assert term_penalty(TermEvidence(unseen=("A", "B"))) == terms.UNSEEN_PENALTY
    assert term_penalty(TermEvidence(("A",), ("B", "C"), ("d",))) == pytest.approx(
        terms.UNSEEN_PENALTY + terms.ABSENT_PENALTY + terms.UNSEEN_WORD_PENALTY)
    assert terms.UNSEEN_PENALTY > terms.ABSENT_PENALTY > terms.UNSEEN_WORD_PENALTY > 0


def _encode(texts):
    """Every text the same vector: the confidence is the same with or without the city."""
    return np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (len(texts), 1))


def test_an_answer_lacking_the_city_named_loses_confidence_and_says_why():
    hits = [Hit(chunk_id=1, text="Book a meeting room in the San Francisco office with BookIt.", source="sf.md",
                title="San Francisco office", score=1.0, heading_path=("Rooms",))]
    weights = {"book": 1.0, "meeting": 1.0, "room": 1.0, "denver": 7.0, "office": 1.0}
    params = AnswerParams(threshold=0.5)
    q = "How do I book a meeting room in the Denver office?"
    plain = extract_answer(q, hits, _encode, weights, params)
    freq = ({"Denver": 0, "book": 5, "meeting": 5, "room": 9, "office": 30, "denver": 0}, 100)
    checked = extract_answer(q, hits, _encode, weights, params, frequencies=freq)
    assert plain.answered and plain.missing_terms == ()
    assert checked.confidence == pytest.approx(plain.confidence - terms.UNSEEN_PENALTY, abs=1e-4)
    assert not checked.answered and checked.missing_terms == ("Denver",)
    assert "never mention Denver" in checked.note
    # the same question about the office the passage names keeps its confidence
    sf_weights = {"book": 1.0, "meeting": 1.0, "room": 1.0, "san": 3.0, "francisco": 3.0, "office": 1.0}
    sf_freq = {"San": 4, "Francisco": 4, "san": 4, "francisco": 4, "book": 5, "meeting": 5, "room": 9, "office": 30}
    sf = extract_answer("How do I book a meeting room in the San Francisco office?", hits, _encode,
                        sf_weights, params, frequencies=(sf_freq, 100))
    assert sf.answered and sf.missing_terms == ()
