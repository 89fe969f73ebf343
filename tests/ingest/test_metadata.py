"""Metadata after parsing: every format's own metadata through the pipeline, folder sidecars, type and
status rules, superseded decisions; missing and malformed metadata never stop a file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ingest.metadata import (
    FolderDefaults,
    finish_meta,
    infer_status,
    infer_type,
    normalize_status,
    normalize_type,
    record_id,
    supersessions,
)
from ingest.discovery import SourceFile, with_folder_metadata
from ingest.pipeline import source_info
from ingest.workers import parse_one
from km_search.types import Contributor, DocumentMeta, Section
from test_parsers import XMP, make_docx, reportlab_pdf, rewrite_pdf


def meta_of(path: Path, root: Path, settings) -> DocumentMeta:
    """What ingest stores for one file: parser, sidecars of its folders, rules (git off)."""
    (file,), _ = with_folder_metadata([SourceFile(path, path.relative_to(root).as_posix(), root=root)], git_authors=False)
    return parse_one(file, settings, source_info(file)).doc.meta


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# --- rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "expected"),
    [("ADR", "decision"), ("Decision record", "decision"), ("Post-mortem", "lesson"), ("retrospective", "lesson"),
     ("how_to", "howto"), ("Runbook", "howto"), ("Policy", "policy"), ("Meeting notes", "meeting"),
     ("minutes", "meeting"), ("Report", "report"), ("", None), (None, None)],
)
def test_declared_types_are_normalized(declared, expected):
    assert normalize_type(declared) == expected


@pytest.mark.parametrize(
    ("title", "headings", "path", "expected"),
    [
        ("ADR-013: Move the warehouse", [], "dw/adr-013.pdf", "decision"),
        ("Use MySQL", [], "billing/adr-007-use-mysql.md", "decision"),  # file name
        ("Use MySQL", [], "billing/decisions/use-mysql.md", "decision"),  # folder
        ("Use MySQL", [("Context",), ("Decision",), ("Consequences",)], "notes/use-mysql.md", "decision"),  # ADR headings
        ("Post-mortem: duplicate invoices", [], "billing/docs/x.pdf", "lesson"),
        ("Billing", [], "billing/retro-2023-07-postgres.md", "lesson"),
        ("Q3 outage", [("Timeline",), ("Root cause",)], "misc/q3.md", "lesson"),
        ("Release planning", [], "mobile/meetings/2025-01-09.txt", "meeting"),
        ("Weekly stand-up", [], "misc/a.md", "meeting"),
        ("Search quality sync", [], "misc/a.md", "meeting"),  # weak word, no folder
        ("Kickoff", [("Attendees",), ("Agenda",)], "misc/a.md", "meeting"),
        ("How to set up the VPN", [], "it/vpn.html", "howto"),
        ("Mobile release runbook", [], "mobile/release.pdf", "howto"),
        ("Performance calibration guide", [], "policies/hr/calibration.md", "policy"),  # folder beats a weak word
        ("Performance calibration guide", [], "misc/calibration.md", "howto"),
        ("Travel and expenses policy", [], "docs/travel.pdf", "policy"),
        ("Salary bands 2025", [], "policies/hr/salary-bands.md", "policy"),  # nearest known folder
        ("Quarterly numbers", [("Revenue",)], "finance/q3.md", "other"),
        ("", [], "x.txt", "other"),
    ],
)
def test_type_inference_rules(title, headings, path, expected):
    assert infer_type(title, headings, path) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("accepted", ("Accepted", None)), ("Superseded by ADR-012", ("Superseded", "ADR-012")),
     ("superseded by adr 12 on 2023-03-06", ("Superseded", "ADR-12")), ("Final", ("Final", None)),
     ("On hold", ("On hold", None)), ("In review", ("Proposed", None)), ("Pending", ("Proposed", None)),
     ("Partly superseded", ("Superseded", None)), ("  ", (None, None)), (None, (None, None))],
)
def test_status_normalization(value, expected):
    assert normalize_status(value) == expected


def test_decision_status_from_its_status_section_or_a_status_line():
    sections = (Section("ADR-12"), Section("Accepted on 2023-03-06. Supersedes ADR-007 (MySQL).", ("ADR-12", "Status")))
    assert infer_status(sections) == ("Accepted", None, "ADR-007")
    assert infer_status((Section("Superseded by ADR-020.", ("Status",)),)) == ("Superseded", "ADR-020", None)
    assert infer_status((Section("Daniel Cho - 2023-05-22 - Status: Accepted\nContext ..."),)) == ("Accepted", None, None)
    assert infer_status((Section("We discussed the status of the project."),)) == (None, None, None)
    far = Section("x " * 400 + "Status: Accepted")  # a 'Status:' deep in the text is not the record's
    assert infer_status((far,)) == (None, None, None)


def test_record_ids_and_superseded_decisions():
    assert [record_id(t) for t in ("ADR-007: Use MySQL", "adr-012-move.md", "retro-2023-07-x.md", "2023-01-24-x")] == [
        "ADR-007", "ADR-012", None, None]
    rows = [
        (1, "ADR-007: Use MySQL", "b/adr-007-mysql.md", "Accepted", {}),  # does not know it was superseded
        (2, "Move billing to PostgreSQL", "b/adr-012-move.md", "Accepted", {"supersedes": "ADR-7"}),
        (3, "ADR-003: Stripe", "b/adr-003.md", "Superseded", {"superseded_by": "ADR-009"}),  # says so already
        (4, "ADR-009: Adyen", "b/adr-009.md", "Accepted", {"supersedes": "ADR-003, ADR-404"}),
    ]
    assert supersessions(rows) == {1: "ADR-012"}


# --- precedence -------------------------------------------------------------------------------


def test_own_metadata_wins_over_sidecars_and_owners_only_fill_missing_authors():
    defaults = {"project": "billing", "type": "decision", "tags": ["billing"], "owners": ["ann@x.example"],
                "groups": ["hr", "leads"], "review": "yearly"}
    own = DocumentMeta(title="T", authors=("Bob <bob@x.example>",), project="payments", doc_type="Runbook",
                       tags=("stripe",), extra={"review": "monthly"})
    done = finish_meta(own, "a/t.md", (Section("x"),), defaults)
    assert (done.authors, done.project, done.doc_type, done.tags) == (("Bob <bob@x.example>",), "payments", "howto", ("stripe",))
    assert done.extra == {"review": "monthly"} and done.groups == ("hr", "leads")
    bare = finish_meta(DocumentMeta(title="T"), "a/t.md", (Section("Status: Accepted"),), defaults)
    assert (bare.authors, bare.project, bare.doc_type, bare.tags, bare.status) == (
        ("ann@x.example",), "billing", "decision", ("billing",), "Accepted")


def test_git_gives_contributors_and_a_date_only_to_documents_without_one():
    people = (Contributor("Ann", "ann@x.example", 3, "2024-05-01"), Contributor("Bob", "bob@x.example", 1, "2024-06-02"))
    undated = finish_meta(DocumentMeta(title="T"), "t.md", (Section("x"),), {}, people)
    assert undated.contributors == people and undated.modified == "2024-06-02" and undated.authors == ()
    dated = finish_meta(DocumentMeta(title="T", created="2020-01-01"), "t.md", (Section("x"),), {}, people)
    assert dated.modified is None and dated.created == "2020-01-01"


def test_folder_defaults_nearest_wins_root_is_the_boundary_and_bad_sidecars_are_reported(tmp_path):
    write(tmp_path / "_meta.yaml", "project: outside\n")  # above the ingest root: ignored
    root = tmp_path / "docs"
    write(root / "_meta.yaml", "project: acme\ntags: [all]\n")
    write(root / "billing" / "_meta.yml", "project: billing\nowners: [a@x.example]\n")
    write(root / "billing" / "decisions" / "_meta.yaml", "type: decision\n")
    write(root / "broken" / "_meta.yaml", "project: [unclosed\n")
    write(root / "broken" / "list" / "_meta.yaml", "- just\n- a list\n")
    defaults = FolderDefaults(root)
    assert defaults(root / "billing" / "decisions") == {
        "project": "billing", "tags": ["all"], "owners": ["a@x.example"], "type": "decision"}
    assert defaults(root / "broken" / "list") == {"project": "acme", "tags": ["all"]}
    assert len(defaults.warnings) == 2
    assert any("invalid YAML" in w for w in defaults.warnings) and any("not a YAML mapping" in w for w in defaults.warnings)


# --- every format, through the pipeline ---------------------------------------------------------


def test_markdown_front_matter(tmp_path, settings):
    path = write(tmp_path / "notes" / "a.md", "---\ntitle: 'ADR-2: Use Kafka'\nauthors: ['Ann Lee <Ann@X.example>']\n"
                 "date: 2024-03-01\nproject: data\ntype: ADR\nstatus: superseded by ADR-9\ntags: [kafka]\n"
                 "groups: [eng]\n---\n# Use Kafka\n\nText.\n")
    m = meta_of(path, tmp_path, settings)
    assert (m.title, m.authors, m.created, m.project, m.doc_type, m.status, m.tags) == (
        "ADR-2: Use Kafka", ("Ann Lee <Ann@X.example>",), "2024-03-01", "data", "decision", "Superseded", ("kafka",))
    assert m.extra == {"superseded_by": "ADR-9"} and m.groups == ("eng",)


@pytest.mark.parametrize("front", ["---\ntitle: [unclosed\n---\n", "---\n- a\n- list\n---\n", "---\ndate: 2024-13-45\n---\n"])
def test_markdown_malformed_front_matter_falls_back_to_rules(tmp_path, settings, front):
    path = write(tmp_path / "lessons" / "q3.md", front + "# Q3 outage\n\n## Root cause\n\nDisk full.\n")
    m = meta_of(path, tmp_path, settings)
    assert (m.title, m.authors, m.doc_type, m.created) == ("Q3 outage", (), "lesson", None)


def test_docx_core_properties_subject_is_the_project_when_it_is_one_word(tmp_path, settings):
    import docx

    m = meta_of(make_docx(tmp_path / "policy.docx"), tmp_path, settings)  # Subject 'Time off' is a sentence
    assert (m.title, m.authors, m.doc_type, m.project, m.status) == ("Leave Policy", ("Ann Lee", "Bob Ray"), "policy", None, "Draft")
    d = docx.Document()
    d.core_properties.subject, d.core_properties.category = "billing", "Post-mortem"
    d.add_heading("Duplicate invoices", level=1)
    d.add_paragraph("Retries created duplicates.")
    d.save(tmp_path / "pm.docx")
    m = meta_of(tmp_path / "pm.docx", tmp_path, settings)
    assert (m.project, m.doc_type, m.extra["subject"]) == ("billing", "lesson", "billing")


def test_docx_without_core_properties_uses_sidecar_and_rules(tmp_path, settings):
    import io
    import zipfile

    good = make_docx(tmp_path / "good.docx").read_bytes()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            if item.filename != "docProps/core.xml":
                zout.writestr(item, zin.read(item.filename))
    write(tmp_path / "hr" / "_meta.yaml", "project: people\nowners: [hannah@x.example]\n")
    m = meta_of(write(tmp_path / "hr" / "policies" / "leave.docx", out.getvalue()), tmp_path, settings)
    assert (m.title, m.authors, m.project, m.doc_type, m.created) == (
        "Leave Policy", ("hannah@x.example",), "people", "policy", None)


def test_pdf_info_and_xmp(tmp_path, settings):
    info = {"/Title": "ADR-13: Move to BigQuery", "/Author": "Dan Cho", "/Subject": "Architecture decision record",
            "/Keywords": "bigquery, adr", "/CreationDate": "D:20230522"}
    m = meta_of(write(tmp_path / "dw" / "adr.pdf", rewrite_pdf(reportlab_pdf([["Status: Accepted", "Body"]]), info)),
                tmp_path, settings)
    assert (m.title, m.authors, m.created, m.tags, m.doc_type, m.status) == (
        "ADR-13: Move to BigQuery", ("Dan Cho",), "2023-05-22", ("bigquery", "adr"), "decision", "Accepted")
    xmp = XMP.replace(b"</dc:creator>", b"</dc:creator><dc:subject><rdf:Bag><rdf:li>wal</rdf:li>"
                      b"<rdf:li>disk</rdf:li></rdf:Bag></dc:subject>")
    m = meta_of(write(tmp_path / "lessons" / "x.pdf", rewrite_pdf(reportlab_pdf([["Disk full"]]), xmp=xmp)), tmp_path, settings)
    assert (m.title, m.authors, m.tags, m.doc_type) == ("XMP Title", ("Cy Doe", "Di Roe"), ("wal", "disk"), "lesson")


def test_pdf_without_metadata_and_with_broken_xmp(tmp_path, settings):
    data = rewrite_pdf(reportlab_pdf([["Mobile release runbook", "Steps"]]), xmp=b"<x:xmpmeta><broken")
    m = meta_of(write(tmp_path / "mobile" / "r.pdf", data), tmp_path, settings)
    assert (m.title, m.authors, m.created, m.doc_type, m.project) == ("Mobile release runbook", (), None, "howto", None)


def test_html_meta_and_missing_meta(tmp_path, settings):
    page = ('<html><head><title>Stale index</title><meta name="author" content="Elena Petrova">'
            '<meta name="date" content="2022-09-16"><meta name="type" content="post-mortem">'
            '<meta name="project" content="search"><meta name="keywords" content="es, incident"></head>'
            "<body><h1>Stale index</h1><p>Text.</p></body></html>")
    m = meta_of(write(tmp_path / "a.html", page), tmp_path, settings)
    assert (m.title, m.authors, m.created, m.doc_type, m.project, m.tags) == (
        "Stale index", ("Elena Petrova",), "2022-09-16", "lesson", "search", ("es", "incident"))
    m = meta_of(write(tmp_path / "meetings" / "b.html", "<p>Only a paragraph.</p>"), tmp_path, settings)
    assert (m.title, m.authors, m.doc_type, m.created) == ("b", (), "meeting", None)


def test_text_header_and_no_header(tmp_path, settings):
    memo = "BILLING DATABASE REVIEW\nAuthor: Priya Raman <priya@x.example>\nDate: 2023-01-24\nType: Meeting notes\n\nText.\n"
    m = meta_of(write(tmp_path / "a.txt", memo), tmp_path, settings)
    assert (m.title, m.authors, m.created, m.doc_type) == (
        "BILLING DATABASE REVIEW", ("Priya Raman <priya@x.example>",), "2023-01-24", "meeting")
    m = meta_of(write(tmp_path / "b.txt", "How to reset a password\n\nOpen the portal.\n"), tmp_path, settings)
    assert (m.title, m.authors, m.doc_type) == ("How to reset a password", (), "howto")


def test_example_corpus_metadata_is_complete():
    """Every example document gets a type, and every one under a project folder its project."""
    from helpers import EXAMPLES
    from km_search.settings import Settings

    settings = Settings()
    files, _ = with_folder_metadata(
        [SourceFile(p, p.relative_to(EXAMPLES).as_posix(), root=EXAMPLES)
         for p in sorted(EXAMPLES.rglob("*")) if p.is_file() and not p.name.startswith("_meta")],
        git_authors=False,
    )
    metas = {f.rel: parse_one(f, settings, source_info(f)).doc.meta for f in files}
    folders = {"billing", "search-platform", "mobile-app", "data-warehouse"}
    for rel, m in metas.items():
        assert m.doc_type in {"decision", "lesson", "howto", "policy", "meeting"}, rel
        assert rel.split("/")[0] not in folders or m.project == rel.split("/")[0], rel
        assert m.authors, rel
    assert sum(m.doc_type == "decision" for m in metas.values()) == 12
    assert sum(m.doc_type == "lesson" for m in metas.values()) == 8
    assert metas["data-warehouse/decisions/adr-013-move-warehouse-to-bigquery.pdf"].status == "Accepted"
    assert metas["billing/decisions/adr-007-use-mysql-for-billing.md"].extra["superseded_by"] == "ADR-012"
    assert dt.date.fromisoformat(metas["policies/hr/salary-bands-2025.md"].created)
    assert metas["policies/hr/salary-bands-2025.md"].groups == ("hr",)
