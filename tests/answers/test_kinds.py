"""The kind of answer a question asks for (an amount, a duration, a frequency, a number, an IP
address) and whether a quote gives one (answers/kinds.py, extractive.lacking_kind)."""

from __future__ import annotations

import numpy as np
import pytest

from km_search.answers.extractive import (
    AnswerParams, abstain_note, extract_answer, lacking_kind, missing_reason, passage_evidence,
)
from km_search.answers.kinds import KIND_PENALTY, expected_kind, gives
from km_search.types import Hit


@pytest.mark.parametrize("question, kind", [
    ("How much does DocumentDB cost compared with running MongoDB ourselves?", "money"),
    ("budget for our team holiday party", "money"),
    ("What is the weekend on-call pay?", "money"),
    ("how often is the GOV.UK mirror synced to Google Cloud Storage", "frequency"),
    ("how long do we keep CloudTrail logs?", "duration"),
    ("what is the default retention period of our Prometheus?", "duration"),
    ("how fast do we have to acknowledge a critical alert?", "duration"),
    ("how many days of holiday do UK employees get?", "number"),
    ("which port is the local billing Postgres container on?", "number"),
    ("IP range for the disaster recovery environment", "address"),
    ("staging VPC CIDR range", "address"),
    ("When is the maintenance window for the production switchover?", "time"),
    ("when do we plan to migrate from Elasticsearch to OpenSearch?", "time"),
    ("who is on call for etcd alerts this week", "person"),
])
def test_questions_that_ask_for_a_kind_of_answer(question, kind):
    assert expected_kind(question).name == kind


@pytest.mark.parametrize("question", [
    "why did the staging and production IP ranges have to change",  # asks for reasons
    "How fast are exceptions?",  # how efficient, not how long
    "what is CRAN?",
    "how do I rotate an API key",
    "When can I rely on identity tests with the is operator?",  # a condition, not a time
])
def test_other_questions_ask_for_no_kind(question):
    assert expected_kind(question) is None


def test_what_gives_each_kind():
    money, often, long, many, address = (expected_kind(q) for q in (
        "how much does it cost", "how often", "how long", "how many", "which IP address"))
    assert gives("you may spend up to 220 pounds per night", money) and gives("1.4% plus 20p", money)
    assert gives("It costs $1,200 a year", money) and not gives("a decision on cost benefit", money)
    assert not gives("- Overtime and comp time: Yes - Can only be approved for any hours", money)
    assert gives("every 90 days", often) and gives("the job runs nightly", often) and not gives("it is synced", often)
    assert gives("kept for 90 days", long) and gives("within one hour", long) and gives("three weeks", long)
    assert not gives("logs are kept in the central store", long)
    assert gives("listens on port 5433", many) and gives("three major distributions", many)
    assert not gives("the container listens on the usual port", many)
    assert gives("Staging moves to 10.12.0.0/16.", address) and not gives("Environment | IP Range", address)
    assert gives("The VPC uses 2001:db8::/32.", address) and not gives("a std::vector of hosts", address)


def test_what_gives_a_time_or_a_person():
    when, who = expected_kind("when is the window?"), expected_kind("who approves it?")
    assert gives("We decided not to start the migration in 2023.", when) and gives("every Tuesday at 9:00", when)
    assert gives("It expires one year (26 pay periods) after it is earned.", when)
    assert not gives("There will need to be a maintenance window for the actual switchover.", when)
    assert not gives("one working towards the next minor or eventually major releases", when)
    assert gives("It ships in the next release.", when) and gives("on 3 March", when) and gives("in November", when)
    assert not gives("We may decide to separate them.", when)
    assert gives("Your line manager approves every request.", who) and gives("Ask Priya Raman.", who)
    assert not gives("This alert fires when one or more etcd member goes down.", who)
    assert not gives("Run the tool.\nPlease use it at the root of the repository only.", who)


def _encode(texts):
    return np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (len(texts), 1))


def _hit(text: str) -> Hit:
    return Hit(chunk_id=1, text=text, source="it.md", title="Internet", score=1.0, heading_path=("Costs",))


def test_a_quote_without_the_amount_asked_for_loses_confidence_and_says_why():
    weights = {"stipend": 3.0, "home": 1.0, "internet": 2.0}
    params = AnswerParams(threshold=0.5)
    vague = extract_answer("How much is the stipend for home internet?",
                           [_hit("The home internet stipend is paid with your salary.")], _encode, weights, params)
    stated = extract_answer("How much is the stipend for home internet?",
                            [_hit("The home internet stipend is 50 dollars a month.")], _encode, weights, params)
    assert stated.answered and vague.confidence == pytest.approx(stated.confidence - KIND_PENALTY, abs=1e-4)
    assert not vague.answered and "gives no amount" in vague.note


def test_a_yes_or_no_answers_a_yes_no_question_without_the_amount():
    assert lacking_kind("Is there severance pay when my term ends?", "No. Term appointments end without it.") is None
    assert lacking_kind("Is there severance pay when my term ends?", "Term appointments are renewed.").name == "money"


def test_the_search_evidence_in_the_query_log_takes_the_same_check():
    weights = {"often": 1.0, "mirror": 3.0, "synced": 2.0}
    vague = passage_evidence([_hit("The mirror is synced to cloud storage.")], weights, 0.8, "how often is the mirror synced?")
    stated = passage_evidence([_hit("The mirror is synced to cloud storage every night.")], weights, 0.8,
                              "how often is the mirror synced?")
    assert vague == pytest.approx(stated - KIND_PENALTY, abs=1e-4)


def test_an_abstention_says_what_is_missing_in_its_reason_and_its_note():
    assert missing_reason(["Denver"], []) == "the documents never mention Denver" and missing_reason([], []) is None
    assert abstain_note(None) == "No passage answers this question confidently; the closest passages are listed in hits."
    vague = extract_answer("How much is the stipend?", [_hit("The stipend is paid with your salary.")], _encode,
                           {"stipend": 3.0}, AnswerParams(threshold=0.9))
    assert vague.reason == "the closest passage gives no amount" and vague.note == abstain_note(vague.reason)
    stated = extract_answer("How much is the stipend?", [_hit("The stipend is 50 dollars.")], _encode,
                            {"stipend": 3.0}, AnswerParams(threshold=0.1))
    assert stated.answered and stated.reason is None
