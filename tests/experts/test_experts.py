"""Expert finding: people parsing and identity, the scoring formula on the worked example of
docs/experts.md, and one person per email across formats in a real snapshot (hashing embedder)."""

from __future__ import annotations

import datetime as dt

import pytest

from ingest.chunking import chunk_document
from km_search.experts.ranking import (
    GIT_WEIGHT,
    Involvement,
    Passage,
    credits,
    passage_weights,
    rank_experts,
    recency,
)
from ingest.parsers._common import split_names
from km_search.experts.people import display_name, is_bot, merge_identities, normalize_email, parse_person, person_key
from km_search.text import fold
from km_search.service import SearchService
from km_search.index.writer import SnapshotWriter
from km_search.index.layout import SourceInfo
from km_search.types import Contributor, Document, DocumentMeta, Section


@pytest.mark.parametrize(("text", "expected"), [
    ("Priya Raman <Priya.Raman@Northwind.example>", ("Priya Raman", "priya.raman@northwind.example")),
    ('"Raman, Priya" < priya+docs@x.example >', ("Raman, Priya", "priya@x.example")),
    ("mailto:PRIYA@X.EXAMPLE", ("", "priya@x.example")),
    ("  Priya   Raman ", ("Priya Raman", None)),
    ("Priya <not an email>", ("Priya <not an email>", None)),
    ("", ("", None)),
])
def test_parse_person(text, expected):
    assert parse_person(text) == expected


def test_identity_helpers():
    assert normalize_email(" Bob.Ray+Work@X.Example ") == "bob.ray@x.example"
    assert normalize_email("+only@x.example") == "+only@x.example" and normalize_email("nobody") is None
    assert fold("  Tomás   HERRERA ") == "tomas herrera"
    assert person_key("Tomás Herrera", None) == "name:tomas herrera"
    assert person_key("T", "tomas@x.example") == "tomas@x.example"
    assert is_bot("dependabot[bot]", "49699333+dependabot[bot]@users.noreply.github.com") and not is_bot("Bob", "bob@x")
    assert display_name([("priya", False, 9), ("Priya Raman", True, 2), ("P. Raman", True, 1)], "p@x") == "Priya Raman"
    assert display_name([("", True, 3)], "p@x") == "p@x"


def test_passage_weights_recency_and_credits():
    assert passage_weights([0.9, 0.7, 0.5, 0.3, 0.1]) == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
    assert passage_weights([2.0, 2.0]) == [1.0, 1.0] and passage_weights([]) == []
    today = dt.date(2025, 1, 1)
    assert recency("2025-01-01", today, 730) == 1.0
    assert recency("2023-01-02", today, 730) == 0.75  # one half-life: halfway down to the floor
    assert recency("2026-06-01", today, 730) == 1.0  # the future counts as today
    assert recency(None, today, 730) == recency("garbage", today, 730) == 0.5
    both = [Involvement("a", "author"), Involvement("b", "author"), Involvement("c", "contributor", 3, "2024-01-01"),
            Involvement("a", "contributor", 1, "2024-02-01")]
    assert credits(both, "2023-05-05") == [("a", 0.5, "2023-05-05"), ("b", 0.5, "2023-05-05"),
                                           ("c", GIT_WEIGHT * 0.75, "2024-01-01"), ("a", GIT_WEIGHT * 0.25, "2024-02-01")]
    git_only = [Involvement("c", "contributor", 3, "2024-01-01"), Involvement("d", "contributor", 1, None)]
    assert credits(git_only, None) == [("c", 0.75, "2024-01-01"), ("d", 0.25, None)]


def test_worked_example_of_the_docs():
    """docs/experts.md walks through exactly this."""
    passages = [Passage(1, "adr-012.md#decision", "ADR-012", "a", 0.9), Passage(2, "retro.md", "Retro", "b", 0.7),
                Passage(1, "adr-012.md#context", "ADR-012", "c", 0.5), Passage(3, "wiki/pg.md", "Postgres tips", "d", 0.3),
                Passage(4, "faq.md", "FAQ", "e", 0.1)]
    people = {1: [Involvement("priya@x", "author"), Involvement("carol@x", "contributor", 2, "2025-01-01")],
              2: [Involvement("priya@x", "author"), Involvement("aisha@x", "author")],
              3: [Involvement("bob@x", "contributor", 3, "2025-01-01"), Involvement("priya@x", "contributor", 1, "2023-01-02")]}
    dates = {1: "2025-01-01", 2: "2023-01-02", 3: None, 4: "2020-01-01"}
    names = {"priya@x": "Priya", "carol@x": "Carol", "aisha@x": "Aisha", "bob@x": "Bob"}
    experts = rank_experts(passages, people, dates, names, dt.date(2025, 1, 1), 730, k=10)
    assert [(e.name, e.score, e.documents, e.last_date) for e in experts] == [
        ("Priya", pytest.approx(1.328125, abs=1e-4), 3, "2025-01-01"),
        ("Aisha", pytest.approx(0.28125, abs=1e-4), 1, "2023-01-02"),
        ("Carol", 0.25, 1, "2025-01-01"),
        ("Bob", 0.1875, 1, "2025-01-01"),
    ]
    assert [(e.doc_id, e.source, e.role) for e in experts[0].evidence] == [
        (1, "adr-012.md#decision", "author"), (2, "retro.md", "author"), (3, "wiki/pg.md", "edited")]
    assert [e.role for e in experts[2].evidence] == ["edited"]
    assert rank_experts(passages, people, dates, names, dt.date(2025, 1, 1), 730, k=1)[0].name == "Priya"
    assert rank_experts([], people, dates, names, dt.date(2025, 1, 1)) == []


def test_one_person_per_email_across_formats_and_namesakes_stay_apart(settings, fake_embedder):
    docs = [
        ("a.md", ("Priya Raman <Priya.Raman+docs@X.example>",), ()),
        ("b.docx", ("Priya Raman",), ()),  # Word: a name only
        ("c.md", ("priya.raman@x.example",), ()),  # a sidecar owner: an email only
        ("d.md", (), (Contributor("praman", "PRIYA.RAMAN@x.example", 4, "2024-01-01"),)),  # git
        ("e.md", ("Sam Lee <sam.lee@x.example>",), ()),
        ("f.md", ("Sam Lee <slee@y.example>",), ()),  # a namesake: another organization, nothing ties them
        ("g.md", ("Sam Lee",), ()),  # two Sam Lees have emails: this one cannot be told apart
    ]
    writer = SnapshotWriter(settings.index_path("default"), {"name": "default", "model": {"name": fake_embedder.model_name}})
    for path, authors, contributors in docs:
        doc = Document(path, "md", (Section("postgres replication and vacuum tuning"),),
                       DocumentMeta(title="Postgres notes", authors=authors, contributors=contributors, created="2024-01-01"))
        chunks = chunk_document(doc)
        writer.add(doc, SourceInfo(path, "h", 1), chunks, fake_embedder.encode([c.indexed_text() for c in chunks]))
    writer.publish()
    service = SearchService(settings.model_copy(update={"expert_passages": 8}), embedder=fake_embedder)
    keys = dict(service.retriever.snapshot.db.execute(
        "SELECT d.path, p.key FROM people p JOIN documents d ON d.id = p.doc_id").fetchall())
    assert {keys[p] for p in "a.md b.docx c.md d.md".split()} == {"priya.raman@x.example"}
    assert keys["g.md"] == "name:sam lee"
    # same title and text: every passage ties, so each document counts fully
    experts = service.experts("postgres replication", k=10).experts
    assert [(e.name, e.email, e.documents) for e in experts][0] == ("Priya Raman", "priya.raman@x.example", 4)
    assert sorted((e.name, e.email or "") for e in experts[1:]) == [
        ("Sam Lee", ""), ("Sam Lee", "sam.lee@x.example"), ("Sam Lee", "slee@y.example")]


# --- one person per human -----------------------------------------------------------------------------


def rows(*people: tuple[str, str | None, int]) -> list[tuple[str, str, str | None, int]]:
    """(key, name, email, doc id) rows of the people table from (name, email, doc id)."""
    return [(person_key(name, normalize_email(email)), name, normalize_email(email), doc) for name, email, doc in people]


def test_one_name_with_several_tied_emails_is_one_person():
    merged = merge_identities(rows(("Priya Raman", "priya.raman@corp.example", 1), ("Priya Raman", "priya.raman@gmail.com", 2),
                                   ("Priya Raman", "priya.raman@corp.example", 3)))
    assert merged == {"priya.raman@gmail.com": "priya.raman@corp.example"}  # the most used, the organization's
    # a personal or forge address beside an organization's, under one name
    merged = merge_identities(rows(("Priya Raman", "pr@corp.example", 1), ("Priya Raman", "12345+praman@users.noreply.github.com", 2)))
    assert merged == {"12345@users.noreply.github.com": "pr@corp.example"}
    # two addresses of one organization, both on one document's history
    merged = merge_identities(rows(("Priya Raman", "pr@corp.example", 1), ("Priya Raman", "priya@corp.example", 1)))
    assert len(merged) == 1


def test_namesakes_stay_apart_when_nothing_ties_them_and_single_words_never_merge():
    assert merge_identities(rows(("Sam Lee", "sam.lee@x.example", 1), ("Sam Lee", "slee@y.example", 2))) == {}
    assert merge_identities(rows(("admin", "admin@x.example", 1), ("admin", "admin@gmail.com", 2))) == {}
    # a name-only entry joins a name only when exactly one person has it
    assert merge_identities(rows(("Sam Lee", "sam.lee@x.example", 1), ("Sam Lee", "slee@y.example", 2), ("Sam Lee", None, 3))) == {}
    assert merge_identities(rows(("Sam Lee", "sam.lee@x.example", 1), ("sam  LEE", None, 3))) == {"name:sam lee": "sam.lee@x.example"}


@pytest.mark.parametrize("handle", ["priyaraman", "priya-raman", "PriyaRaman", "priya_raman"])
def test_a_github_handle_that_spells_the_name_is_that_person(handle):
    merged = merge_identities(rows(("Priya Raman", "priya@corp.example", 1), (handle, "priya.r@home.example", 2),
                                   (handle, None, 3)))
    assert merged == {"priya.r@home.example": "priya@corp.example", f"name:{handle.lower()}": "priya@corp.example"}
    assert display_name([(handle, False, 9), ("Priya Raman", False, 2)], "p@x") == "Priya Raman"  # the full name shows


def test_a_handle_spelling_two_people_or_nobody_joins_nobody():
    assert merge_identities(rows(("Priya Raman", "priya@corp.example", 1), ("Priya Raman", "pr@other.example", 2),
                                 ("priyaraman", "pr@home.example", 3))) == {}
    assert merge_identities(rows(("Priya Raman", "priya@corp.example", 1), ("bobray", "bob@home.example", 2))) == {}


@pytest.mark.parametrize(("value", "expected"), [
    ("Ann Lee <ann@x.example> Bob Ray <bob@x.example> Cy Doe", ("Ann Lee <ann@x.example>", "Bob Ray <bob@x.example>", "Cy Doe")),
    ("Ann Lee <ann@x.example>, Bob Ray <bob@x.example>", ("Ann Lee <ann@x.example>", "Bob Ray <bob@x.example>")),
    ("Ann Lee and Bob Ray; Cy Doe", ("Ann Lee", "Bob Ray", "Cy Doe")),
    ("Jessie Frazelle <jess@oxide.computer>", ("Jessie Frazelle <jess@oxide.computer>",)),
])
def test_author_lines_without_commas_split_into_people(value, expected):
    assert split_names(value) == expected


def test_the_declared_author_outranks_a_maintainer_who_committed_to_every_file():
    """The record the topic is about has an author; the maintainer committed to it and to five other
    relevant records (each with its own author): the author comes first, and the evidence says who
    wrote and who edited."""
    passages = [Passage(1, "adr/0007.md", "ADR 7", "a", 1.0), Passage(1, "adr/0007.md#context", "ADR 7", "b", 0.9)]
    passages += [Passage(d, f"adr/000{d}.md", f"ADR {d}", "c", 0.6) for d in range(2, 7)]
    passages.append(Passage(9, "faq.md", "FAQ", "z", 0.0))
    people = {1: [Involvement("ann@x", "author"), Involvement("max@x", "contributor", 6, "2025-01-01")]}
    for d in range(2, 7):
        people[d] = [Involvement(f"author{d}@x", "author"), Involvement("max@x", "contributor", 3, "2025-01-01")]
    dates = dict.fromkeys(range(1, 10), "2025-01-01")
    experts = rank_experts(passages, people, dates, {}, dt.date(2025, 1, 1), 730, k=3)
    assert [e.email for e in experts[:2]] == ["ann@x", "max@x"]
    assert experts[0].evidence[0].role == "author" and {e.role for e in experts[1].evidence} == {"edited"}


def test_middle_initials_initial_and_last_name_and_a_bare_address_are_one_person():
    from km_search.experts.people import merge_identities

    def rows(*people):
        return [(email, name, email, doc) for name, email, doc in people]

    # 'Pedro P. Candel' (git, a personal address) is 'Pedro Palazón Candel' (work)
    assert merge_identities(rows(("Pedro Palazón Candel", "pedro@joyent.example", 1),
                                 ("Pedro P. Candel", "kusorbox@gmail.com", 2))) == {"kusorbox@gmail.com": "pedro@joyent.example"}
    assert merge_identities(rows(("Pedro Q. Candel", "pq@a.example", 1), ("Pedro P. Candel", "kusorbox@gmail.com", 2))) == {}
    # an author field holding only an address whose local part is initial + last name
    assert merge_identities(rows(("mdanciu@redhat.example", "mdanciu@redhat.example", 1),
                                 ("Marius Danciu", "marius.danciu@gmail.com", 2))) == {"marius.danciu@gmail.com": "mdanciu@redhat.example"}
    # ...but not when it spells two people
    assert merge_identities(rows(("jsmith@x.example", "jsmith@x.example", 1), ("John Smith", "john.smith@a.example", 2),
                                 ("Jane Smith", "jane.smith@b.example", 3))) == {}


def test_a_long_document_of_middling_passages_does_not_outweigh_the_record_the_topic_is_about():
    record = [Passage(1, "rfd/51.md", "Code review", "a", 1.0)]
    long_doc = [Passage(2, f"rfd/45.md#{i}", "Big RFD", "b", 0.6) for i in range(8)]
    people = {1: [Involvement("jerry@x", "author")], 2: [Involvement("dave@x", "author")]}
    ranked = rank_experts(record + long_doc + [Passage(3, "z.md", "Z", "z", 0.0)], people, {}, {}, dt.date(2025, 1, 1))
    assert [e.email for e in ranked[:2]] == ["jerry@x", "dave@x"]
