"""Office parsers (PowerPoint, Excel, CSV, OpenDocument text/presentation/spreadsheet): sections,
heading paths, deep links, metadata, saved formula values, row ranges of long sheets, broken files,
and one end-to-end run that ingests one file of each format and finds each by a query.

The files are built at test time from real text: chapters of the Debian FAQ
(tests/ingest/data/debian-faq, from the debian-faq package, read with our own HTML parser), or the example corpus where
that folder is not there.
"""

from __future__ import annotations

import csv as stdlib_csv
import datetime as dt
import json
import os
import re
import subprocess
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import EXAMPLES, KM, start_server
from ingest.chunking import chunk_document
from ingest.parsers import PARSERS, parse_file
from ingest.parsers import _office, odf, pptx, xlsx
from ingest.parsers._common import EMPTY_FILE, SlugDeduper
from km_search.errors import ParseError
from km_search.types import Section

FAQ = Path(__file__).resolve().parent / "data" / "debian-faq"  # real chapters of the debian-faq package
FORMATS = (".pptx", ".xlsx", ".csv", ".odt", ".odp", ".ods")


@dataclass(frozen=True)
class Passage:
    """A section of a real document: its heading and its lines."""

    heading: str
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _passages_of(paths) -> list[Passage]:
    out, seen = [], set()
    for path in paths:
        for s in parse_file(path, path.name).sections:
            heading = s.heading_path[-1] if s.heading_path else ""
            # lines of at most 20 words: a few rows of a sheet stay one section (a section holds ~250 words)
            lines = tuple(" ".join(line.split()[:20]) for line in s.text.split("\n") if len(line.split()) >= 4)
            if heading and heading not in seen and len(lines) >= 2 and len(s.text.split()) >= 40:
                seen.add(heading)
                out.append(Passage(heading, lines))
    return out


@pytest.fixture(scope="session")
def passages() -> list[Passage]:
    """At least 24 real sections with distinct headings."""
    found = _passages_of(sorted(FAQ.glob("*.html"))) if FAQ.is_dir() else []
    if len(found) < 24:
        found = _passages_of(sorted(p for p in EXAMPLES.rglob("*") if p.suffix in (".md", ".html")))
    assert len(found) >= 24, "not enough real text to build the test files from"
    return found


def sentences(passages: list[Passage]) -> list[str]:
    return [s for p in passages for line in p.lines for s in re.split(r"(?<=[.!?])\s+", line) if len(s.split()) >= 4]


def parse(path: Path):
    return parse_file(path, path.name)


def links(doc) -> list[str]:
    return [c.source for c in chunk_document(doc)]


# --- builders ----------------------------------------------------------------------------------

CREATED, MODIFIED = dt.datetime(2024, 3, 1, 9, 30), dt.datetime(2024, 4, 2, 17, 0)


def make_pptx(path: Path, slides: list[Passage]) -> Path:
    """Titled slides (body: the first lines, notes: the last), then an untitled slide holding a
    text box inside a group and a table."""
    from pptx import Presentation
    from pptx.util import Inches

    prs = Presentation()
    for p in slides:
        slide = prs.slides.add_slide(prs.slide_layouts[1])  # Title and Content
        slide.shapes.title.text = p.heading
        body = slide.placeholders[1].text_frame
        body.text = p.lines[0]
        body.add_paragraph().text = p.lines[1]
        slide.notes_slide.notes_text_frame.text = p.lines[-1]
    blank = prs.slides.add_slide(prs.slide_layouts[6])
    group = blank.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(1), Inches(1), Inches(6), Inches(1)).text_frame.text = slides[0].lines[-1]
    table = blank.shapes.add_table(2, 2, Inches(1), Inches(3), Inches(6), Inches(2)).table
    for r, row in enumerate([("Tool", "Chapter"), ("dpkg", slides[0].heading)]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    props = prs.core_properties
    props.title, props.author, props.subject = "Debian package tools", "Susan G. Kleinmann; Sven Rudolph", "debian"
    props.keywords, props.category = "dpkg, apt; packages", "FAQ"
    props.created, props.modified = CREATED, MODIFIED
    prs.save(path)
    return path


def make_xlsx(path: Path, rows: list[Passage], long_rows: list[str]) -> Path:
    """'Questions' (a title line, headers, one row per passage), 'Sentences' (hundreds of rows),
    a sheet whose name needs escaping in a link, a hidden sheet and an empty one."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Questions"
    sheet.append(["Debian FAQ: questions and answers"])
    sheet.append(["Question", "Answer", "Words", "Reviewed"])
    for p in rows:
        sheet.append([p.heading, p.lines[0], len(p.text.split()), dt.date(2024, 3, 1)])
    long = book.create_sheet("Sentences")
    long.append(["No", "Sentence"])
    for n, s in enumerate(long_rows, start=1):
        long.append([n, s])
    book.create_sheet("R&D plans").append(["Plan", rows[0].lines[1]])
    hidden = book.create_sheet("Secret")
    hidden.append(["Note", "hidden sheet text never indexed"])
    hidden.sheet_state = "hidden"
    book.create_sheet("Empty")
    props = book.properties
    props.title, props.creator, props.subject = "Debian FAQ workbook", "Javier Fernández-Sanguino Peña", "faq"
    props.keywords, props.category, props.created, props.modified = "faq; debian", "Reference", CREATED, MODIFIED
    book.save(path)
    return path


def make_xlsx_with_formulas(path: Path, passage: Passage) -> Path:
    """Formulas saved with their results, as Excel saves them (openpyxl writes none: XlsxWriter)."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Counts")
    sheet.write_row(0, 0, ["Line", "Words"])
    words = [len(line.split()) for line in passage.lines[:3]]
    for r, (line, n) in enumerate(zip(passage.lines, words), start=1):
        sheet.write_row(r, 0, [line, n])
    sheet.write(4, 0, "Total")
    sheet.write_formula(4, 1, "=SUM(B2:B4)", None, sum(words))
    sheet.write_formula(5, 1, '=IF(B5>10,"long","short")', None, "long" if sum(words) > 10 else "short")
    book.close()
    return path


def make_csv(path: Path, rows: list[Passage], delimiter: str = ";") -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = stdlib_csv.writer(f, delimiter=delimiter)
        writer.writerow(["Question", "Answer"])
        for p in rows:
            writer.writerow([p.heading, "\n".join(p.lines[:2])])  # a quoted field over two lines
    return path


def _odf_meta(doc, title: str) -> None:
    from odf import dc, meta

    doc.meta.addElement(dc.Title(text=title))
    doc.meta.addElement(meta.InitialCreator(text="Susan G. Kleinmann"))
    doc.meta.addElement(dc.Creator(text="Last Editor"))
    doc.meta.addElement(meta.CreationDate(text="2024-03-01T09:30:00"))
    doc.meta.addElement(dc.Date(text="2024-04-02T17:00:00"))
    doc.meta.addElement(dc.Subject(text="debian"))
    for keyword in ("apt", "upgrades"):
        doc.meta.addElement(meta.Keyword(text=keyword))


def make_odt(path: Path, chapter: Passage, subsections: list[Passage]) -> Path:
    """A chapter heading, its paragraphs, level-2 headings (one repeated), a list, a table and a
    table of contents that must not be indexed."""
    from odf.opendocument import OpenDocumentText
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import H, IndexBody, List, ListItem, P, TableOfContent

    doc = OpenDocumentText()
    _odf_meta(doc, "Keeping Debian up to date")
    toc = TableOfContent(name="Contents")
    body = IndexBody()
    body.addElement(P(text="TOC ENTRY NEVER INDEXED"))
    toc.addElement(body)
    doc.text.addElement(toc)
    doc.text.addElement(H(outlinelevel=1, text=chapter.heading))
    for line in chapter.lines[:2]:
        doc.text.addElement(P(text=line))
    for sub in subsections:
        doc.text.addElement(H(outlinelevel=2, text=sub.heading))
        doc.text.addElement(P(text=sub.lines[0]))
    doc.text.addElement(H(outlinelevel=2, text=subsections[0].heading))  # the same heading again
    items = List()
    for line in subsections[0].lines[1:3]:
        item = ListItem()
        item.addElement(P(text=line))
        items.addElement(item)
    doc.text.addElement(items)
    table = Table(name="T1")
    table.addElement(TableColumn(numbercolumnsrepeated=2))
    for cells in (("Tool", "Use"), ("apt-get", subsections[1].heading)):
        row = TableRow()
        for value in cells:
            cell = TableCell()
            cell.addElement(P(text=value))
            row.addElement(cell)
        table.addElement(row)
    doc.text.addElement(table)
    doc.save(str(path))
    return path


def make_odp(path: Path, slides: list[Passage]) -> Path:
    from odf.draw import Frame, Page, TextBox
    from odf.opendocument import OpenDocumentPresentation
    from odf.presentation import Notes
    from odf.style import MasterPage, PageLayout
    from odf.text import P

    doc = OpenDocumentPresentation()
    _odf_meta(doc, "Debian and the kernel")
    layout = PageLayout(name="PL1")
    doc.automaticstyles.addElement(layout)
    master = MasterPage(name="Default", pagelayoutname=layout)
    doc.masterstyles.addElement(master)

    def frame(cls: str | None, lines) -> Frame:
        attrs = {"width": "20cm", "height": "4cm", "x": "1cm", "y": "1cm"}
        f = Frame(**attrs, **({"class": cls} if cls else {}))
        box = TextBox()
        for line in lines:
            box.addElement(P(text=line))
        f.addElement(box)
        return f

    for n, p in enumerate(slides, start=1):
        page = Page(name=f"page{n}", masterpagename=master)
        page.addElement(frame("title", [p.heading]))
        page.addElement(frame("outline", p.lines[:2]))
        page.addElement(frame("page-number", [str(n)]))
        notes = Notes()
        notes.addElement(frame("notes", [p.lines[-1]]))
        page.addElement(notes)
        doc.presentation.addElement(page)
    untitled = Page(name="last", masterpagename=master)
    untitled.addElement(frame(None, [slides[0].lines[-1]]))
    doc.presentation.addElement(untitled)
    doc.save(str(path))
    return path


def make_ods(path: Path, rows: list[Passage], long_rows: list[str]) -> Path:
    """'Questions' with a formula cell (its saved result in the cell's text) and LibreOffice's
    padding (a million repeated empty rows, a thousand repeated empty cells), a long sheet, a
    hidden sheet."""
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.style import Style, TableProperties
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    _odf_meta(doc, "Debian FAQ sheet")
    hidden_style = Style(name="ta_hidden", family="table")
    hidden_style.addElement(TableProperties(display="false"))
    doc.automaticstyles.addElement(hidden_style)

    def row(*values, repeat_empty: int = 1000) -> TableRow:
        tr = TableRow()
        for value in values:
            if isinstance(value, tuple):  # (shown text, formula, value)
                cell = TableCell(valuetype="float", value=value[2], formula=value[1])
                cell.addElement(P(text=value[0]))
            else:
                cell = TableCell(valuetype="string")
                cell.addElement(P(text=str(value)))
            tr.addElement(cell)
        tr.addElement(TableCell(numbercolumnsrepeated=repeat_empty))
        return tr

    sheet = Table(name="Questions")
    sheet.addElement(row("Question", "Answer", "Words"))
    for p in rows:
        sheet.addElement(row(p.heading, p.lines[0], str(len(p.text.split()))))
    total = sum(len(p.text.split()) for p in rows)
    sheet.addElement(row("Total", "", (f"{total}", f"of:=SUM([.C2:.C{len(rows) + 1}])", str(total))))
    padding = TableRow(numberrowsrepeated=1048000)
    padding.addElement(TableCell(numbercolumnsrepeated=1024))
    sheet.addElement(padding)
    doc.spreadsheet.addElement(sheet)
    long = Table(name="Sentences")
    long.addElement(row("No", "Sentence"))
    for n, s in enumerate(long_rows, start=1):
        long.addElement(row(str(n), s))
    doc.spreadsheet.addElement(long)
    hidden = Table(name="Secret", stylename=hidden_style)
    hidden.addElement(row("Note", "hidden sheet text never indexed"))
    doc.spreadsheet.addElement(hidden)
    doc.save(str(path))
    return path


@pytest.fixture
def files(tmp_path, passages):
    """One file of each format, each from its own passages."""
    sents = sentences(passages)
    return {
        ".pptx": make_pptx(tmp_path / "tools.pptx", passages[0:4]),
        ".xlsx": make_xlsx(tmp_path / "faq.xlsx", passages[4:8], sents[:420]),
        ".csv": make_csv(tmp_path / "faq.csv", passages[8:12]),
        ".odt": make_odt(tmp_path / "uptodate.odt", passages[12], passages[13:16]),
        ".odp": make_odp(tmp_path / "kernel.odp", passages[16:19]),
        ".ods": make_ods(tmp_path / "faq.ods", passages[19:23], sents[:420]),
    }


# --- registry ----------------------------------------------------------------------------------


def test_every_office_format_is_registered():
    assert set(FORMATS) <= set(PARSERS)


# --- PowerPoint --------------------------------------------------------------------------------


def test_pptx_one_section_per_slide_with_title_body_tables_and_notes(files, passages):
    doc = parse(files[".pptx"])
    slides = passages[0:4]
    assert doc.format == "pptx"
    expected = [Section("\n".join([p.lines[0], p.lines[1], p.lines[-1]]), (p.heading,), f"slide={n}")
                for n, p in enumerate(slides, start=1)]
    expected.append(Section(f"{slides[0].lines[-1]}\nTool | Chapter\ndpkg | {slides[0].heading}", ("Slide 5",), "slide=5"))
    assert list(doc.sections) == expected


def test_pptx_deep_links_are_slide_numbers(files):
    doc = parse(files[".pptx"])
    assert {s.split("#", 1)[1] for s in links(doc)} == {f"slide={n}" for n in range(1, 6)}
    assert all(s.startswith("tools.pptx#slide=") for s in links(doc))


def test_pptx_core_properties_are_metadata(files):
    m = parse(files[".pptx"]).meta
    assert (m.title, m.authors, m.created, m.modified) == (
        "Debian package tools", ("Susan G. Kleinmann", "Sven Rudolph"), "2024-03-01", "2024-04-02")
    assert (m.tags, m.doc_type, m.project, m.extra) == (("dpkg", "apt", "packages"), "FAQ", "debian", {"subject": "debian"})


def test_pptx_title_falls_back_to_the_first_slide_title(tmp_path, passages):
    from pptx import Presentation

    prs = Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[0])  # title slide: only a title, nothing else
    slide.shapes.title.text = passages[0].heading
    prs.core_properties.title = ""
    prs.save(tmp_path / "divider.pptx")
    doc = parse(tmp_path / "divider.pptx")
    assert doc.meta.title == passages[0].heading
    assert doc.sections == (Section(passages[0].heading, (passages[0].heading,), "slide=1"),)  # a divider keeps its title


# --- Excel -------------------------------------------------------------------------------------


def test_xlsx_rows_are_read_under_their_headers(files, passages):
    doc = parse(files[".xlsx"])
    assert doc.format == "xlsx"
    questions = [s for s in doc.sections if s.heading_path == ("Questions",)]
    assert len(questions) == 1 and questions[0].anchor == "sheet=Questions"
    lines = questions[0].text.split("\n")
    assert lines[0] == "Debian FAQ: questions and answers"  # a title line above the header row
    for line, p in zip(lines[1:], passages[4:8], strict=True):
        assert line == f"Question: {p.heading}; Answer: {p.lines[0]}; Words: {len(p.text.split())}; Reviewed: 2024-03-01"


def test_xlsx_skips_hidden_and_empty_sheets_and_escapes_sheet_names(files):
    doc = parse(files[".xlsx"])
    assert [s.heading_path for s in doc.sections if s.heading_path != ("Sentences",)] == [("Questions",), ("R&D plans",)]
    assert "hidden sheet" not in " ".join(s.text for s in doc.sections)
    rd = next(s for s in doc.sections if s.heading_path == ("R&D plans",))
    assert rd.anchor == "sheet=R%26D%20plans"
    assert "faq.xlsx#sheet=R%26D%20plans" in links(doc)


def _check_row_ranges(sections: list[Section], prefix: str, first: int, last: int, rows: list[str]) -> None:
    """Contiguous ranges from `first` to `last`, each within the section budget, holding every row."""
    assert len(sections) > 2
    ranges = []
    for s in sections:
        m = re.fullmatch(re.escape(prefix) + r"rows=(\d+)-(\d+)", s.anchor or "")
        assert m, s.anchor
        a, b = int(m[1]), int(m[2])
        lines = s.text.split("\n")
        assert len(lines) == b - a + 1 <= _office.ROWS_PER_SECTION
        assert len(s.text.split()) <= _office.WORDS_PER_SECTION or len(lines) == 1
        ranges.append((a, b))
    assert ranges[0][0] == first and ranges[-1][1] == last
    assert all(nxt[0] == prev[1] + 1 for prev, nxt in zip(ranges, ranges[1:]))
    text = "\n".join(s.text for s in sections)
    assert text.split("\n") == [f"No: {n}; Sentence: {s}" for n, s in enumerate(rows, start=1)]


def test_xlsx_long_sheet_is_cut_into_row_ranges(files, passages):
    doc = parse(files[".xlsx"])
    long = [s for s in doc.sections if s.heading_path == ("Sentences",)]
    rows = sentences(passages)[:420]
    _check_row_ranges(long, "sheet=Sentences&", 2, len(rows) + 1, rows)
    assert all(link.startswith("faq.xlsx#sheet=Sentences&rows=") for link in links(doc) if "Sentences" in link)


def test_xlsx_formulas_give_their_saved_values(tmp_path, passages):
    p = passages[5]
    doc = parse(make_xlsx_with_formulas(tmp_path / "counts.xlsx", p))
    total = sum(len(line.split()) for line in p.lines[:3])
    assert doc.sections[0].text.split("\n")[-2:] == [f"Line: Total; Words: {total}", f"Words: {'long' if total > 10 else 'short'}"]
    assert "SUM" not in doc.sections[0].text


def test_xlsx_core_properties_are_metadata(files):
    m = parse(files[".xlsx"]).meta
    assert (m.title, m.authors, m.created) == ("Debian FAQ workbook", ("Javier Fernández-Sanguino Peña",), "2024-03-01")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", m.modified) and m.modified >= m.created  # openpyxl stamps the save time
    assert (m.tags, m.doc_type, m.project) == (("faq", "debian"), "Reference", "faq")


def test_xlsx_without_text_is_empty(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    book.create_sheet("Hidden").append(["only hidden text"])
    book["Hidden"].sheet_state = "hidden"
    book.save(tmp_path / "blank.xlsx")
    with pytest.raises(ParseError, match=EMPTY_FILE):
        parse(tmp_path / "blank.xlsx")


# --- CSV ---------------------------------------------------------------------------------------


def test_csv_sniffs_the_dialect_and_reads_rows_under_headers(files, passages):
    doc = parse(files[".csv"])
    assert doc.format == "csv" and doc.meta.title == "faq"
    assert len(doc.sections) == 1 and doc.sections[0].anchor is None and doc.sections[0].heading_path == ()
    assert doc.sections[0].text.split("\n") == [
        f"Question: {p.heading}; Answer: {p.lines[0]} {p.lines[1]}" for p in passages[8:12]]
    assert links(doc) == ["faq.csv"] * len(links(doc))


def test_csv_long_file_is_cut_into_row_ranges(tmp_path, passages):
    rows = sentences(passages)[:420]
    path = tmp_path / "sentences.csv"
    with path.open("w", newline="", encoding="cp1252", errors="replace") as f:  # a Windows export
        writer = stdlib_csv.writer(f)
        writer.writerow(["No", "Sentence"])
        writer.writerows([n, s] for n, s in enumerate(rows, start=1))
    doc = parse(path)
    expected = [s.encode("cp1252", "replace").decode("cp1252") for s in rows]
    _check_row_ranges(list(doc.sections), "", 2, len(rows) + 1, expected)
    assert links(doc)[0].startswith("sentences.csv#rows=2-")


@pytest.mark.parametrize(("content", "reason"), [
    (b"", EMPTY_FILE),
    (b"\n\n  \r\n", EMPTY_FILE),
    (bytes(range(256)) * 8, "binary file"),
    (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(200), "binary file"),  # a zip renamed .csv
])
def test_csv_broken_files_fail_with_a_reason(tmp_path, content, reason):
    (tmp_path / "broken.csv").write_bytes(content)
    with pytest.raises(ParseError, match=reason):
        parse(tmp_path / "broken.csv")


# --- OpenDocument ------------------------------------------------------------------------------


def test_odt_headings_cut_sections_with_slug_anchors(files, passages):
    doc = parse(files[".odt"])
    chapter, subs = passages[12], passages[13:16]
    slugs = SlugDeduper()
    top = (chapter.heading,)
    expected = [Section("\n".join(chapter.lines[:2]), top, slugs(chapter.heading))]
    expected += [Section(s.lines[0], (*top, s.heading), slugs(s.heading)) for s in subs]
    expected.append(Section("\n".join(["- " + line for line in subs[0].lines[1:3]] + ["Tool | Use", f"apt-get | {subs[1].heading}"]),
                            (*top, subs[0].heading), slugs(subs[0].heading)))
    assert doc.format == "odt"
    assert list(doc.sections) == expected
    assert expected[-1].anchor.endswith("-1")  # the repeated heading's anchor is made unique
    assert "TOC ENTRY" not in " ".join(s.text for s in doc.sections)


def test_odf_meta_xml_is_metadata(files):
    for ext, title in ((".odt", "Keeping Debian up to date"), (".odp", "Debian and the kernel"), (".ods", "Debian FAQ sheet")):
        m = parse(files[ext]).meta
        assert (m.title, m.authors, m.created, m.modified) == (title, ("Susan G. Kleinmann",), "2024-03-01", "2024-04-02"), ext
        assert (m.tags, m.project) == (("apt", "upgrades"), "debian"), ext


def test_odp_one_section_per_slide_like_pptx(files, passages):
    doc = parse(files[".odp"])
    slides = passages[16:19]
    expected = [Section("\n".join([p.lines[0], p.lines[1], p.lines[-1]]), (p.heading,), f"slide={n}")
                for n, p in enumerate(slides, start=1)]
    expected.append(Section(slides[0].lines[-1], ("Slide 4",), "slide=4"))
    assert doc.format == "odp"
    assert list(doc.sections) == expected  # the page-number frames are left out
    assert all(link.startswith("kernel.odp#slide=") for link in links(doc))


def test_ods_sheets_rows_formulas_and_padding(files, passages):
    doc = parse(files[".ods"])
    assert doc.format == "ods"
    questions = [s for s in doc.sections if s.heading_path == ("Questions",)]
    assert len(questions) == 1 and questions[0].anchor == "sheet=Questions"
    rows = passages[19:23]
    total = sum(len(p.text.split()) for p in rows)
    assert questions[0].text.split("\n") == [
        f"Question: {p.heading}; Answer: {p.lines[0]}; Words: {len(p.text.split())}" for p in rows
    ] + [f"Question: Total; Words: {total}"]  # the formula's saved result
    assert "hidden sheet" not in " ".join(s.text for s in doc.sections)
    long = [s for s in doc.sections if s.heading_path == ("Sentences",)]
    sents = sentences(passages)[:420]
    _check_row_ranges(long, "sheet=Sentences&", 2, len(sents) + 1, sents)


# --- broken files, every zipped format ---------------------------------------------------------

ZIPPED = {".pptx": "PowerPoint", ".xlsx": "Excel", ".odt": "OpenDocument", ".odp": "OpenDocument", ".ods": "OpenDocument"}


@pytest.mark.parametrize("ext", list(ZIPPED))
def test_broken_office_files_fail_with_a_clear_reason(tmp_path, files, ext):
    data = files[ext].read_bytes()
    cases = {
        "truncated": (data[: len(data) // 2], f"not a valid {ZIPPED[ext]} file: not a zip package"),
        "garbage": (bytes(range(256)) * 16, f"not a valid {ZIPPED[ext]} file: not a zip package"),
        "empty": (b"", EMPTY_FILE),
    }
    for name, (content, reason) in cases.items():
        path = tmp_path / f"{name}{ext}"
        path.write_bytes(content)
        with pytest.raises(ParseError, match=re.escape(reason)):
            parse(path)


@pytest.mark.parametrize("ext", list(ZIPPED))
def test_another_zip_renamed_fails_with_a_clear_reason(tmp_path, ext):
    path = tmp_path / f"other{ext}"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "not an office document")
    with pytest.raises(ParseError, match=f"not a valid {ZIPPED[ext]} file"):
        parse(path)


@pytest.mark.parametrize("ext", list(ZIPPED))
def test_zip_bombs_are_refused_before_inflating(tmp_path, files, monkeypatch, ext):
    module = {".pptx": pptx, ".xlsx": xlsx}.get(ext, odf)
    monkeypatch.setattr(module, "MAX_UNPACKED_MB", 0)
    with pytest.raises(ParseError, match="zip bomb"):
        parse(files[ext])


ENCRYPTED_MANIFEST = b"""<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">
 <manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/>
 <manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml" manifest:size="4242">
  <manifest:encryption-data manifest:checksum-type="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0#sha256-1k"
   manifest:checksum="c2hh"><manifest:algorithm manifest:algorithm-name="http://www.w3.org/2001/04/xmlenc#aes256-cbc"
   manifest:initialisation-vector="aXY="/></manifest:encryption-data>
 </manifest:file-entry>
</manifest:manifest>"""


@pytest.mark.parametrize(("member", "body", "reason"), [
    ("content.xml", b"<office:document-content", "content.xml is not well-formed XML"),
    ("META-INF/manifest.xml", ENCRYPTED_MANIFEST, "encrypted OpenDocument file"),
])
def test_broken_content_xml_and_encrypted_odf(tmp_path, files, member, body, reason):
    out = tmp_path / "bad.odt"
    with zipfile.ZipFile(files[".odt"]) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, body if item.filename == member else zin.read(item.filename))
    with pytest.raises(ParseError, match=reason):
        parse(out)


# --- row rendering ---------------------------------------------------------------------------


def test_row_sections_headers_title_lines_and_one_column_sheets():
    rows = [(1, ["Budget 2024", "", ""]), (3, ["Team", "", "Cost"]), (4, ["Infra", "x", "1200"]), (5, ["", "", ""])]
    assert _office.row_sections(rows, ("S",), "sheet=S") == [
        Section("Budget 2024\nTeam: Infra; B: x; Cost: 1200", ("S",), "sheet=S")]
    one_column = [(1, ["Name"]), (2, ["Ann"]), (3, ["Bob"])]
    assert _office.row_sections(one_column, (), None) == [Section("Name: Ann\nName: Bob", (), None)]
    assert _office.row_sections([(1, ["Only", "headers"])], (), None) == [Section("Only | headers", (), None)]
    assert _office.row_sections([(1, ["", " "])], (), None) == []


@pytest.mark.parametrize(("value", "text"), [
    (3.0, "3"), (0.1 + 0.2, "0.3"), (True, "TRUE"), (dt.datetime(2024, 3, 1), "2024-03-01"),
    (dt.datetime(2024, 3, 1, 9, 5), "2024-03-01 09:05"), (dt.date(2024, 3, 1), "2024-03-01"), (None, ""),
    ("two\nlines", "two lines"),
])
def test_cell_text(value, text):
    assert _office.cell_text(value) == text


# --- end to end: ingest one file of each format with the real model, find each by a query -------


@pytest.mark.slow
def test_each_office_format_is_found_with_its_deep_link(tmp_path, files, passages):
    """`km ingest` a folder holding one file of each format, `km serve` it, and query each file
    with a sentence of its own: the hit from that file is on the first page, with its deep link."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for path in files.values():
        path.rename(docs / path.name)
    env = {**os.environ, "KM_INDEX_DIR": str(tmp_path / "indexes"), "HF_HUB_OFFLINE": "1", "KM_AUTH": "none"}
    run = subprocess.run([*KM, "ingest", str(docs), "--index", "office", "--json"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)
    assert not report["failed"], report["failed"]
    assert report["skipped"] == 0 and not report["skipped_files"], "a folder of office files ingests with nothing skipped"
    assert {Path(f["path"]).suffix for f in report["files"] if f["status"] == "added"} == set(FORMATS)

    sents = sentences(passages)
    cases = {
        "tools.pptx": (passages[2].lines[1], "tools.pptx#slide=3"),  # body text of slide 3
        "faq.xlsx": (passages[6].lines[0], "faq.xlsx#sheet=Questions"),
        "faq.csv": (passages[10].lines[0], "faq.csv"),
        "uptodate.odt": (passages[14].lines[0], None),
        "kernel.odp": (passages[17].lines[-1], "kernel.odp#slide=2"),  # speaker notes of slide 2
    }
    slugs = SlugDeduper()
    slugs(passages[12].heading)
    slugs(passages[13].heading)
    cases["uptodate.odt"] = (passages[14].lines[0], f"uptodate.odt#{slugs(passages[14].heading)}")
    ods_row = 300
    ods_ranges = [s.anchor for s in parse_file(docs / "faq.ods", "faq.ods").sections if "rows=" in (s.anchor or "")]
    ods_anchor = next(a for a in ods_ranges if _in_range(a, ods_row + 1))
    cases["faq.ods"] = (sents[ods_row - 1], f"faq.ods#{ods_anchor}")

    base, proc = start_server("office", env, tmp_path / "serve.log")
    try:
        for doc_path, (query, link) in cases.items():
            url = f"{base}/search?{urllib.parse.urlencode({'q': query, 'k': 10})}"
            with urllib.request.urlopen(url, timeout=60) as r:
                hits = json.load(r)["hits"]
            own = [h["source"] for h in hits if h["doc_path"] == doc_path]
            assert own, f"{doc_path} not found for {query!r}: got {[h['source'] for h in hits]}"
            assert link in own[:2], f"{doc_path}: {own}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _in_range(anchor: str, row: int) -> bool:
    m = re.search(r"rows=(\d+)-(\d+)", anchor)
    return bool(m) and int(m[1]) <= row <= int(m[2])
