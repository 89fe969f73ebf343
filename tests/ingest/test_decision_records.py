"""Decision records as organizations write them: MADR and Nygard ADRs (with or without a 'Decision'
heading), Oxide-style RFDs (`:state:` / `state:`), Rust-style RFCs (`date_approved:`), ADR index pages,
status written as a line, list item, table cell, section or front matter with emoji, links, bold and
dates around it, supersession stated on either side, and /decisions listing the current record first.
The fixtures reproduce the real templates (adr.github.io/madr, adr-tools, oxidecomputer/rfd,
rust-lang/rfcs) line for line where it matters."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import HashingEmbedder
from ingest.discovery import SourceFile, with_folder_metadata
from ingest.metadata import (
    infer_status,
    infer_type,
    normalize_status,
    record_ref,
    superseding,
    supersession_pairs,
    supersessions,
)
from ingest.pipeline import ingest, source_info
from ingest.workers import parse_one
from km_search.index.snapshot import Snapshot
from km_search.search.records import NOT_CURRENT_FACTOR, current_first
from km_search.service import SearchService
from km_search.settings import Settings
from km_search.types import DocumentMeta, Section

MADR = """\
---
status: accepted
date: 2022-11-08
deciders: Oliver Kopp, Olaf Zimmermann
---
# Use Markdown Architectural Decision Records

## Context and Problem Statement

We want to record architectural decisions made in this project independent whether decisions concern the
architecture ("architecture decision record"), the code, or other fields. Which format and structure should
these records follow?

## Considered Options

* [MADR](https://adr.github.io/madr/) 3.0.0 – The Markdown Architectural Decision Records
* [Michael Nygard's template](http://thinkrelentless.com/blog/2011/11/15/documenting-architecture-decisions) – The first incarnation of the term "ADR"
* Other templates listed at <https://github.com/joelparkerhenderson/architecture_decision_record>

## Decision Outcome

Chosen option: "MADR 3.0.0", because it is lean and fits our development style.
"""

MADR2 = """\
# Use Plain JUnit5 for TDD

* Status: {status}
* Deciders: Oliver Kopp
* Date: 2017-12-02

Technical Story: Choose a testing framework for the new services.

## Context and Problem Statement

We need a testing framework. Which one?

## Considered Options

* JUnit5
* Hamcrest

## Decision Outcome

Chosen option: "JUnit5", because it comes out best.
"""

NYGARD = """\
# {n}. {title}

Date: 2016-02-12

## Status

{status}

## Context

We need to record the architectural decisions made on this project.

## Decision

We will use Architecture Decision Records, as described by Michael Nygard.

## Consequences

See Michael Nygard's article, linked above.
"""

OXIDE_ADOC = """\
:showtitle:
:toc: left
:numbered:
:icons: font
:state: published
:discussion: https://github.com/oxidecomputer/rfd/pull/1
:revremark: State: {state} | {discussion}
:authors: Jessie Frazelle <jess@oxide.computer>

= RFD 1 Requests for Discussion

Writing down ideas is important: it allows them to be rigorously formulated, and it allows them to be
shared asynchronously.

== When to use an RFD

The following are examples of when an RFD is appropriate: an architectural or design decision.
"""

OXIDE_MD = """\
---
authors: Adam Leventhal <ahl@oxide.computer>
state: {state}
discussion: https://github.com/oxidecomputer/rfd/pull/{n}
---
# RFD {n} {title}

## Determinations

We will ship the control plane with one rack per region at first, growing later.
"""

RUST_RFC = """\
---
date_approved: 2018-05-08
---
- Feature Name: `async_await`
- Start Date: 2018-03-30
- RFC PR: [rust-lang/rfcs#2394](https://github.com/rust-lang/rfcs/pull/2394)
- Rust Issue: [rust-lang/rust#50547](https://github.com/rust-lang/rust/issues/50547)

# Summary

Add async & await syntaxes to make it more ergonomic to write code manipulating futures.

# Motivation

Rust has become a successful language for writing high performance network services.
"""

ADR_INDEX = """\
# Architecture Decision Records

This folder holds the architecture decision records of the project, written with [MADR](https://adr.github.io/madr/).

| Number | Title | Status |
|--------|-------|--------|
| [ADR-0001](0001-use-madr.md) | Use MADR | Accepted |
| [ADR-0002](0002-use-postgres.md) | Use PostgreSQL | Superseded |
| [ADR-0003](0003-use-cockroachdb.md) | Use CockroachDB | Accepted |
"""

ADR_LOG = """\
# Decision log

- [ADR-0001](0001-use-madr.md) - Use MADR
- [ADR-0002](0002-use-postgres.md) - Use PostgreSQL
- [ADR-0003](0003-use-cockroachdb.md) - Use CockroachDB
- [ADR-0004](0004-use-grpc.md) - Use gRPC
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def meta_of(root: Path, rel: str, text: str) -> DocumentMeta:
    """What ingest stores for one file written at `rel` under `root` (parser, sidecars, rules; no git)."""
    path = write(root / rel, text)
    (file,), _ = with_folder_metadata([SourceFile(path, rel, root=root)], git_authors=False)
    return parse_one(file, Settings(), source_info(file)).doc.meta


# --- types ----------------------------------------------------------------------------------------


def test_madr_without_a_decision_heading_is_a_decision_anywhere(tmp_path):
    m = meta_of(tmp_path, "docs/architecture/0000-use-markdown-architectural-decision-records.md", MADR)
    assert (m.doc_type, m.status, m.created) == ("decision", "Accepted", "2022-11-08")
    # the MADR sections alone, in a folder that says nothing
    m = meta_of(tmp_path, "notes/use-junit.md", MADR2.format(status="accepted"))
    assert (m.doc_type, m.status) == ("decision", "Accepted")


@pytest.mark.parametrize(("rel", "headings"), [
    ("doc/adr/0001-record-architecture-decisions.md", [("Summary",)]),  # adr/ folder, numbered file
    ("docs/decisions/0007-use-grpc.md", [("Steps",)]),  # a howto heading does not beat the folder
    ("docs/architecture-decisions/0007-use-grpc.md", []),  # a folder named with decision words
    ("engineering/adr-log/0007-use-grpc.md", []),
    ("rfcs/0042-interning.md", []), ("rfd/0123/README.md", []),
])
def test_records_in_decision_folders_need_no_decision_heading(rel, headings):
    assert infer_type("Use gRPC between services", headings, rel) == "decision"


@pytest.mark.parametrize("title", ["ADR 12: Use gRPC", "RFD 123 Control plane", "RFC-0042: Interning", "RFC 7: Ids"])
def test_record_titles_make_decisions(title):
    assert infer_type(title, [("Background",)], "misc/x.md") == "decision"


def test_nygard_adr_with_and_without_decision_heading(tmp_path):
    text = NYGARD.format(n=1, title="Record architecture decisions", status="Accepted")
    m = meta_of(tmp_path, "doc/adr/0001-record-architecture-decisions.md", text)
    assert (m.doc_type, m.status) == ("decision", "Accepted")
    headless = text.replace("## Decision\n", "## The way forward\n")
    m = meta_of(tmp_path, "misc/record.md", headless)  # Status + Context + Consequences
    assert (m.doc_type, m.status) == ("decision", "Accepted")


def test_an_adr_folder_index_is_not_a_decision(tmp_path):
    assert meta_of(tmp_path, "docs/adr/README.md", ADR_INDEX).doc_type == "other"
    assert meta_of(tmp_path, "docs/adr/index.md", ADR_INDEX).doc_type == "other"
    # not named like an index, but a list of links to its siblings
    assert meta_of(tmp_path, "docs/decisions/decision-log.md", ADR_LOG).doc_type == "other"
    # a real record beside them stays one
    m = meta_of(tmp_path, "docs/adr/0001-use-madr.md", MADR)
    assert m.doc_type == "decision"


# --- RFC / RFD processes ----------------------------------------------------------------------------


def test_oxide_rfd_asciidoc_state_published(tmp_path):
    m = meta_of(tmp_path, "rfd/0001/README.adoc", OXIDE_ADOC)
    assert (m.doc_type, m.status) == ("decision", "Published")
    assert m.title.startswith("RFD 1")


@pytest.mark.parametrize(("state", "status"), [
    ("published", "Published"), ("committed", "Committed"), ("abandoned", "Abandoned"),
    ("discussion", "Discussion"), ("predraft", "Predraft"), ("draft", "Draft"),
])
def test_oxide_rfd_front_matter_state(tmp_path, state, status):
    # outside any decision folder and named README: the process field alone makes it a record
    m = meta_of(tmp_path, "0042/README.md", OXIDE_MD.format(state=state, n=42, title="Rack layout"))
    assert (m.doc_type, m.status) == ("decision", status)


def test_rust_rfc_date_approved_is_an_accepted_decision_of_that_day(tmp_path):
    m = meta_of(tmp_path, "text/2394-async_await.md", RUST_RFC)
    assert (m.doc_type, m.status, m.created) == ("decision", "Accepted", "2018-05-08")


def test_rfc_folder_and_title_are_decisions(tmp_path):
    m = meta_of(tmp_path, "rfcs/text/0042-interning.md", "# RFC-0042: String interning\n\nWe intern strings.\n")
    assert m.doc_type == "decision"


# --- status -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("⌛️ Superseded by [ADR 036](036-foo.md)", ("Superseded", "ADR-036")),
    ("Superseded by ADR-36", ("Superseded", "ADR-36")),
    ("superseded by [the event log](0009-event-log.md)", ("Superseded", "0009")),
    ("Replaced by ADR 12", ("Superseded", "ADR-12")),
    ("Superseded by Use PostgreSQL (2023-03-06)", ("Superseded", "Use PostgreSQL")),
    ("**Accepted** (2021-03-02)", ("Accepted", None)),
    ("✅ Accepted", ("Accepted", None)),
    ("2021-03-02 accepted", ("Accepted", None)),
    ("Deprecated", ("Deprecated", None)),
    ("Reverted by discussion #1198", ("Reverted", None)),
    ("Rejected", ("Rejected", None)), ("draft", ("Draft", None)), ("Proposed", ("Proposed", None)),
])
def test_status_values_with_emoji_links_bold_and_dates(value, expected):
    assert normalize_status(value) == expected


@pytest.mark.parametrize("body", [
    "Status: Accepted\n\nWe chose X.",
    "- Status: accepted\n- Deciders: Ann\n- Date: 2021-03-02",  # MADR 2 list item, as the parser writes it
    "Status | Accepted\nDeciders | Ann",  # a table row '| Status | Accepted |'
    "Jane Roe - 2023-05-22 - Status: Accepted",
])
def test_status_as_a_line_a_list_item_or_a_table_cell(body):
    assert infer_status((Section("Intro"), Section(body, ("Use X",)))) [0] == "Accepted"


def test_status_section_superseded_line_wins_over_the_accepted_above_it():
    sections = (Section("Accepted\nSuperseded by 3. Use CockroachDB", ("2. Use PostgreSQL", "Status")),)
    assert infer_status(sections) == ("Superseded", "3", None)


@pytest.mark.parametrize(("status_line", "status"), [
    ("⌛️ Superseded by [ADR 036](036-foo.md)", "Superseded"), ("**Accepted** (2021-03-02)", "Accepted"),
    ("✅ Accepted", "Accepted"), ("Deprecated", "Deprecated"), ("Reverted by discussion #1198", "Reverted"),
    ("Rejected", "Rejected"), ("Draft", "Draft"), ("Proposed", "Proposed"),
])
def test_status_through_the_markdown_parser(tmp_path, status_line, status):
    """Every style as written in a real file: heading section, list item, table cell, front matter."""
    nygard = NYGARD.format(n=35, title="Use X", status=status_line)
    madr2 = MADR2.format(status=status_line)
    table = f"# ADR 35: Use X\n\n| | |\n|---|---|\n| Status | {status_line} |\n| Date | 2021-03-02 |\n\n## Context\n\nWhy.\n"
    front = f"---\nstatus: '{status_line}'\n---\n# Use X\n\n## Context\n\nWhy.\n"
    for i, text in enumerate((nygard, madr2, table, front)):
        m = meta_of(tmp_path, f"docs/adr/003{i}-use-x.md", text)
        assert (m.doc_type, m.status) == ("decision", status), (i, text)
    m = meta_of(tmp_path, "docs/adr/0035-use-x.md", nygard)
    if status == "Superseded":
        assert m.extra["superseded_by"] == "ADR-036"


# --- supersession -----------------------------------------------------------------------------------


def test_record_refs_from_links_and_numbers():
    assert record_ref("[ADR 036](036-foo.md)") == "ADR-036"
    assert record_ref("[0012](0012-use-mysql.md)") == "0012"
    assert record_ref("[the old approach](../0012-use-mysql.md)") == "0012"
    assert record_ref("the old approach") is None


def test_supersession_from_the_old_side_resolves_to_the_sibling_of_that_number():
    rows = [
        (1, "Use MySQL", "a/adr/0035-use-mysql.md", "Superseded", {"superseded_by": "ADR-036"}),
        (2, "Use PostgreSQL", "a/adr/0036-use-postgres.md", "Accepted", {}),
        (3, "Use Redis", "b/adr/0036-use-redis.md", "Accepted", {}),  # another collection's 36
    ]
    assert supersession_pairs(rows) == [(1, 2)]
    assert supersessions(rows) == {}  # the old one says so already
    assert superseding(rows) == {2: "Use MySQL"}  # the new one learns what it replaced (no id: its title)


def test_supersession_from_the_new_side_by_number_or_link():
    rows = [
        (1, "12. Use MySQL", "adr/0012-use-mysql.md", "Accepted", {}),
        (2, "20. Use PostgreSQL", "adr/0020-use-postgres.md", "Accepted", {"supersedes": "0012"}),
        (3, "ADR 7: Use cron", "ops/adr-7.md", "Accepted", {}),
        (4, "ADR 9: Use Airflow", "ops/adr-9.md", "Accepted", {"supersedes": "ADR 7"}),
    ]
    assert supersessions(rows) == {1: "20. Use PostgreSQL", 3: "ADR-9"}
    assert superseding(rows) == {}


def test_supersession_by_title_only_within_the_collection():
    rows = [(1, "Use PostgreSQL", "adr/a.md", "Superseded", {"superseded_by": "Use CockroachDB"}),
            (2, "Use CockroachDB", "adr/b.md", None, {}), (3, "Use CockroachDB", "other/b.md", None, {})]
    assert supersession_pairs(rows) == [(1, 2)]


def test_supersession_end_to_end_either_side_and_current_first(tmp_path):
    """Real files through ingest: the old record says 'Superseded by [ADR 036]…', a MADR record says
    'Replaces [0012]…'; both sides end up linked, and /decisions lists the current record first."""
    docs = tmp_path / "docs"
    topic = "We store the billing ledger in {db}. The billing ledger database must keep invoices consistent."
    write(docs / "adr" / "0035-use-mysql.md", NYGARD.format(n=35, title="Use MySQL for the billing ledger",
          status="⌛️ Superseded by [ADR 036](0036-use-postgres.md)").replace(
          "We need to record the architectural decisions made on this project.", topic.format(db="MySQL")))
    write(docs / "adr" / "0036-use-postgres.md", NYGARD.format(n=36, title="Use PostgreSQL for the billing ledger",
          status="Accepted").replace("We need to record the architectural decisions made on this project.",
                                     topic.format(db="PostgreSQL")))
    write(docs / "adr" / "0012-use-cron.md", MADR2.format(status="accepted").replace("JUnit5", "cron"))
    write(docs / "adr" / "0013-use-airflow.md", MADR2.format(status="accepted").replace("JUnit5", "Airflow")
          .replace("Technical Story:", "Replaces [0012](0012-use-cron.md).\n\nTechnical Story:"))
    write(docs / "adr" / "README.md", ADR_INDEX)
    settings = Settings(index_dir=tmp_path / "indexes", index="t", parse_workers=0, git_authors=False)
    embedder = HashingEmbedder()
    ingest([docs], settings, embedder=embedder, progress=False)
    snap = Snapshot.open(settings.index_path("t"))
    rows = {r["path"]: r for r in snap.db.execute("SELECT path, doc_type, status, extra FROM documents")}
    snap.close()
    assert rows["adr/README.md"]["doc_type"] == "other"
    assert rows["adr/0035-use-mysql.md"]["status"] == "Superseded"
    assert '"superseded_by": "ADR-036"' in rows["adr/0035-use-mysql.md"]["extra"]
    assert '"supersedes": "35. Use MySQL for the billing ledger"' in rows["adr/0036-use-postgres.md"]["extra"]
    assert rows["adr/0012-use-cron.md"]["status"] == "Superseded"
    assert '"superseded_by": "Use Plain Airflow for TDD"' in rows["adr/0012-use-cron.md"]["extra"]
    assert '"supersedes": "0012"' in rows["adr/0013-use-airflow.md"]["extra"]
    service = SearchService(settings, embedder=embedder)
    hits = service.records("billing ledger database", "decision", k=2).hits
    assert [h.doc_path for h in hits] == ["adr/0036-use-postgres.md", "adr/0035-use-mysql.md"]
    service.close()


def test_current_first_demotes_records_no_longer_in_force_among_near_ties():
    ranked = [(1, 1.00, None, None), (2, 0.95, None, None), (3, 0.90, None, None), (4, 0.40, None, None)]
    docs = {1: (10, "Superseded"), 2: (20, "Accepted"), 3: (20, "Accepted"), 4: (30, None)}
    assert [c for c, *_ in current_first(ranked, docs, 3)] == [2, 1, 4]  # one passage per document
    assert current_first(ranked, docs, 3)[1][1] == pytest.approx(NOT_CURRENT_FACTOR)
    far = [(1, 1.0, None, None), (2, 0.5, None, None)]  # a clearly better match stays first
    assert [c for c, *_ in current_first(far, {1: (10, "Deprecated"), 2: (20, "Accepted")}, 2)] == [1, 2]
    negative = [(1, -0.10, None, None), (2, -0.11, None, None)]  # scores below zero are lowered too
    assert [c for c, *_ in current_first(negative, {1: (10, "Rejected"), 2: (20, None)}, 2)] == [2, 1]


# --- labelled on real collections (evalsets/decisions_real): one test per rule they needed ----------


def test_a_numbered_record_in_a_decision_folder_is_a_decision_whatever_its_title_says(tmp_path):
    # GOV.UK's 0039 and the MoJ's 011: "policy" in the title, a record by folder and number
    text = "# 39. Non-GOV.UK domain policy\n\nDate: 2018-01-01\n\n## Status\n\nAccepted\n\n## Context\n\nWe own domains.\n"
    m = meta_of(tmp_path, "docs/architecture/decisions/0039-non-govuk-domain-policy.md", text)
    assert (m.doc_type, m.status) == ("decision", "Accepted")
    assert infer_type("Introduce Open Policy Agent", [], "architecture-decision-record/011-Introduce-Open-Policy-Agent.md") == "decision"
    assert infer_type("Security policy", [], "policies/security-policy.md") == "policy"  # not numbered: as before


def test_record_templates_are_not_decisions(tmp_path):
    template = "# [short title]\n\n| Status | Approved |\n|---|---|\n| Authors | [list everyone involved] |\n\n## Context\n\nx\n\n## Decision\n\ny\n"
    for rel in ("docs/adr/template.md", "adr/ODH-ADR-0000-template.md", "decisions/adr-template.md"):
        m = meta_of(tmp_path, rel, template)
        assert m.doc_type == "other" and m.authors == (), rel


def test_joyent_publish_state_and_pending_review_incomplete_statuses(tmp_path):
    m = meta_of(tmp_path, "rfd/0009/README.md", "---\nauthors: Ann Lee <ann@x.example>\nstate: publish\n---\n\n# RFD 9 Fabrics\n\nText.\n")
    assert (m.doc_type, m.status) == ("decision", "Published")
    assert infer_status([Section("Pending", ("3. Networking", "Status"))])[0] == "Proposed"
    assert infer_status([Section("| Status | Review |\n| Authors | A |")])[0] == "Proposed"
    assert infer_status([Section("🤔 Incomplete", ("EKS Fargate", "Status"))])[0] == "Proposed"


def test_supersedes_cells_naming_no_record_give_none():
    assert record_ref("https://github.com/opendatahub-io/opendatahub-operator/pull/23") is None
    assert record_ref("Data Connections (pre-2.16)") is None
    assert record_ref("[ADR 12](https://github.com/org/repo/blob/main/adr/0012-use-x.md)") == "ADR-12"
    assert record_ref("[the old one](../0012-use-x.md)") == "0012"
    assert infer_status([Section("| Status | Accepted |\n| Supersedes | https://github.com/o/r/pull/23 |")])[2] is None


def test_a_supersession_names_a_record_that_shares_its_title_by_file_number():
    # GOV.UK's 0033 is headed "3. Networking Outline", as 0003 is
    rows = [(1, "3. Networking Outline", "decisions/0003-aws-networking-outline.md", "Accepted", {}),
            (2, "3. Networking Outline", "decisions/0033-ip-ranges.md", "Proposed", {"supersedes": "0003"})]
    assert supersessions(rows) == {1: "0033"}
    rows[0] = (1, "3. AWS networking", "decisions/0003-aws-networking-outline.md", "Accepted", {})
    assert supersessions(rows) == {1: "3. Networking Outline"}


def test_authors_stated_in_the_text_when_no_field_declares_them(tmp_path):
    odh = "# ODH-ADR-0003 Licence\n\n| | |\n|---|---|\n| Status | Accepted |\n| Authors | [Greg Sheremeta](@gregsheremeta), Ann Lee |\n\n## Decision\n\nApache 2.0.\n"
    assert meta_of(tmp_path, "adr/ODH-ADR-0003-licence.md", odh).authors == ("Greg Sheremeta", "Ann Lee")
    madr2 = "# Use X\n\n* Status: accepted\n* Deciders: Ann Lee and Bob Ray\n\n## Decision Outcome\n\nX.\n"
    assert meta_of(tmp_path, "adr/0002-use-x.md", madr2).authors == ("Ann Lee", "Bob Ray")
    declared = "---\nauthors: Cy Doe\n---\n" + madr2
    assert meta_of(tmp_path, "adr/0003-use-x.md", declared).authors == ("Cy Doe",)
