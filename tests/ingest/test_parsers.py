"""Parsers: exact sections, heading paths, anchors, pages and metadata from small fixture files."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest

from ingest.parsers import PARSERS, parse_file
from ingest.parsers._common import SlugDeduper, iso_date, slugify, split_names
from km_search.errors import ParseError
from km_search.types import Section

EMPTY = "empty file: no text to index"


def write(tmp_path: Path, name: str, content: str | bytes, newline: str = "\n") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.replace("\n", newline).encode("utf-8")
    path.write_bytes(content)
    return path


def parse(path: Path):
    return parse_file(path, path.name)


# --- shared helpers ---------------------------------------------------------------------------


def test_registry_covers_all_formats():
    import importlib
    import pkgutil

    import ingest.parsers

    assert {".pdf", ".docx", ".md", ".markdown", ".html", ".htm", ".txt", ".text"} <= set(PARSERS)
    modules = {m.name for m in pkgutil.iter_modules(ingest.parsers.__path__) if not m.name.startswith("_")}
    assert set(PARSERS.values()) == modules  # every parser module registered, each one real
    assert all(callable(importlib.import_module(f"ingest.parsers.{name}").parse) for name in modules)


def test_finding_files_loads_no_format_library():
    import subprocess
    import sys

    code = ("import sys, ingest.discovery, ingest.parsers as p; from pathlib import Path; "
            "assert p.format_of(Path('a/b.PDF')) == 'pdf' and p.format_of(Path('x.html.md.erb')) == 'erb'; "
            "assert p.format_of(Path('a.erb')) is None; "
            "print(sorted(m for m in ('pypdf', 'docx', 'pptx', 'openpyxl', 'docutils', 'lxml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_slugify_is_github_style_and_dedupes():
    assert slugify("Hello, World!") == "hello-world"
    assert slugify("C++ & Go") == "c--go"
    assert slugify("snake_case Über") == "snake_case-über"
    slugs = SlugDeduper()
    assert [slugs(t) for t in ("Usage", "Usage", "Usage 1", "Usage")] == ["usage", "usage-1", "usage-1-1", "usage-2"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("D:20240301120000+00'00'", "2024-03-01"),
        ("D:2024", "2024-01-01"),
        ("2024-3-5T10:00:00Z", "2024-03-05"),
        ("2024/03/01", "2024-03-01"),
        (dt.date(2023, 1, 2), "2023-01-02"),
        (dt.datetime(2023, 1, 2, 3, 4), "2023-01-02"),
        ("2024-13-01", None),
        ("12345", None),
        ("yesterday", None),
        (None, None),
    ],
)
def test_iso_date(value, expected):
    assert iso_date(value) == expected


def test_split_names():
    assert split_names("Ann Lee, Bob Ray; Cy Doe and Di Roe") == ("Ann Lee", "Bob Ray", "Cy Doe", "Di Roe")


# --- Markdown ---------------------------------------------------------------------------------

MARKDOWN = """---
title: Onboarding Guide
authors: [Ann Lee, Bob Ray]
date: 2024-03-01
updated: 2024-04-02
project: Apollo
type: guide
tags: hr, onboarding
status: approved
groups: [staff, managers]
owner: Cy Doe
version: 3
nested: {a: 1}
---
Intro with **bold** and a [link](https://example.com/x) and `code`.

# Welcome
## Setup
### Laptop
Get a *laptop*
from IT.

- first item
- second [item](http://x)

1. one
2. two

## Usage
```python
print("hi")

x = 1
```

| Col A | Col B |
|-------|-------|
| 1     | 2     |

## Usage
Again.

# Empty Heading
# Last
Bye ![logo](logo.png)
"""

MARKDOWN_SECTIONS = (
    Section("Intro with bold and a link and code.", (), None),
    Section("Get a laptop from IT.\n- first item\n- second item\n1. one\n2. two", ("Welcome", "Setup", "Laptop"), "laptop"),
    Section('print("hi")\nx = 1\nCol A | Col B\n1 | 2', ("Welcome", "Usage"), "usage"),
    Section("Again.", ("Welcome", "Usage"), "usage-1"),
    Section("Bye", ("Last",), "last"),
)


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_markdown_sections_and_front_matter(tmp_path, newline):
    doc = parse(write(tmp_path, "guide.md", MARKDOWN, newline))
    assert doc.format == "markdown" and doc.path == "guide.md"
    assert doc.sections == MARKDOWN_SECTIONS
    m = doc.meta
    assert (m.title, m.authors, m.created, m.modified) == ("Onboarding Guide", ("Ann Lee", "Bob Ray"), "2024-03-01", "2024-04-02")
    assert (m.project, m.doc_type, m.tags, m.status) == ("Apollo", "guide", ("hr", "onboarding"), "approved")
    assert m.extra == {"owner": "Cy Doe", "version": "3"} and m.groups == ("staff", "managers")


@pytest.mark.parametrize(
    "front", ["title: [unclosed\nauthor: x: y", "date: 2024-13-45", "- just\n- a list", "x: *undefined_alias"]
)
def test_markdown_malformed_front_matter_is_ignored(tmp_path, front):
    doc = parse(write(tmp_path, "bad.md", f"---\n{front}\n---\n# Real Title\nBody text.\n"))
    assert doc.meta.title == "Real Title" and doc.meta.authors == () and doc.meta.created is None
    assert doc.sections == (Section("Body text.", ("Real Title",), "real-title"),)


def test_markdown_title_falls_back_to_file_stem_and_setext_headings(tmp_path):
    doc = parse(write(tmp_path, "notes.markdown", "Setext\n------\nText <b>here</b>.\n\n<div>\nraw &amp; html\n</div>\n"))
    assert doc.meta.title == "notes"
    assert doc.sections == (Section("Text here.\nraw & html", ("Setext",), "setext"),)


@pytest.mark.parametrize("content", ["", "   \n\n", "---\ntitle: Only metadata\n---\n", "# Heading only\n"])
def test_markdown_without_text_is_empty(tmp_path, content):
    with pytest.raises(ParseError, match=EMPTY):
        parse(write(tmp_path, "e.md", content))


# --- plain text -------------------------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_text_single_section_joins_wrapped_lines(tmp_path, newline):
    text = (
        "Quarterly memo\n\nSales grew by ten percent in the third quarter,\nmostly   in Europe.\n\n"
        "- item one that is long enough to look wrapped\n- item two\n\nAnn Lee\nLondon\n"
    )
    doc = parse(write(tmp_path, "memo.txt", text, newline))
    assert doc.format == "text" and doc.meta.title == "Quarterly memo"
    assert doc.sections == (
        Section(
            "Quarterly memo\nSales grew by ten percent in the third quarter, mostly in Europe.\n"
            "- item one that is long enough to look wrapped\n- item two\nAnn Lee\nLondon"
        ),
    )


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_text_memo_header_and_capital_headings(tmp_path, newline):
    text = (
        "BILLING REVIEW - MEETING NOTES\nDate: 2023-01-24\nAuthor: Ann Lee, Bob Ray\nProject: billing\n"
        "Type: meeting\nTags: db; billing\nAttendees: Ann, Bob\n\nPURPOSE\n\nDecide on the database.\n\n"
        "NEXT STEPS\n\n1. Write the ADR.\nNOT A HEADING: it runs on\n"
    )
    doc = parse(write(tmp_path, "notes.txt", text, newline))
    m = doc.meta
    assert (m.title, m.authors, m.created, m.project, m.doc_type) == (
        "BILLING REVIEW - MEETING NOTES", ("Ann Lee", "Bob Ray"), "2023-01-24", "billing", "meeting")  # fmt: skip
    assert (m.tags, m.extra) == (("db", "billing"), {"attendees": "Ann, Bob"})
    assert doc.sections == (
        Section("BILLING REVIEW - MEETING NOTES\nDate: 2023-01-24\nAuthor: Ann Lee, Bob Ray\nProject: billing\n"
                "Type: meeting\nTags: db; billing\nAttendees: Ann, Bob"),  # fmt: skip
        Section("Decide on the database.", ("PURPOSE",)),
        Section("1. Write the ADR.\nNOT A HEADING: it runs on", ("NEXT STEPS",)),
    )


def test_text_without_known_header_fields_has_no_metadata(tmp_path):
    doc = parse(write(tmp_path, "n.txt", "Note: call Bob\nAbout: lunch\n"))
    assert (doc.meta.title, doc.meta.extra, doc.meta.created) == ("Note: call Bob", {}, None)


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_text_setext_headings_split_sections(tmp_path, newline):
    text = "Preface line.\n\nInstall\n=======\nRun the installer.\n\nLinux\n-----\nUse apt.\n\nUsage\n=====\nStart it.\n"
    doc = parse(write(tmp_path, "readme.text", text, newline))
    assert doc.sections == (
        Section("Preface line."),
        Section("Run the installer.", ("Install",)),
        Section("Use apt.", ("Install", "Linux")),
        Section("Start it.", ("Usage",)),
    )


def test_text_latin1_utf16_and_bom(tmp_path):
    latin = parse(write(tmp_path, "latin.txt", "Café crème à la carte\n".encode("latin-1")))
    assert latin.sections[0].text == "Café crème à la carte"
    utf16 = parse(write(tmp_path, "u16.txt", "Grüße aus Köln\nZeile zwei\n".encode("utf-16")))
    assert utf16.sections[0].text == "Grüße aus Köln\nZeile zwei" and utf16.meta.title == "Grüße aus Köln"
    bom = parse(write(tmp_path, "bom.txt", "\ufeffTitle here\n\nBody".encode("utf-8")))
    assert bom.meta.title == "Title here"


def test_text_long_first_line_is_not_a_title(tmp_path):
    doc = parse(write(tmp_path, "long.txt", "word " * 40))
    assert doc.meta.title == "long"


def test_text_empty_files_raise(tmp_path):
    for content in (b"", b" \n\t\r\n"):
        with pytest.raises(ParseError, match=EMPTY):
            parse(write(tmp_path, "empty.txt", content))


# --- HTML -------------------------------------------------------------------------------------

HTML = """<!DOCTYPE html>
<html lang="en"><head>
<meta charset="utf-8">
<title>Handbook</title>
<meta name="author" content="Ann Lee, Bob Ray">
<meta name="description" content="The staff handbook">
<meta name="keywords" content="hr; policy">
<meta name="dcterms.created" content="2024-03-01">
<meta name="dcterms.modified" content="2024-04-02T10:00:00Z">
<meta name="project" content="Apollo">
<meta name="doc-type" content="handbook">
<style>p { color: red }</style><script>var secret = 1;</script>
</head><body>
<header><a href="/">Home</a> | Site banner</header>
<nav><a href="/prev">Prev</a> <a href="/next">Next</a></nav>
<div class="navheader"><table><tr><td><a>Prev</a></td><td><a>Up</a></td></tr></table></div>
<div class="sphinxsidebar"><h3>Quick search</h3><p>Sidebar text</p></div>
<div class="toc"><p>Table of Contents</p><dl><dt>1. Leave</dt></dl></div>
<p>Welcome   to the
handbook.</p>
<h1 id="top">Handbook <a class="headerlink" href="#top">¶</a></h1>
<section id="leave"><h2>Leave<a class="headerlink" href="#leave">¶</a></h2>
<p>Ask your <em>manager</em>.</p>
<ul><li>Annual leave</li><li>Sick leave</li></ul>
<table><tr><th>Days</th><th>Type</th></tr><tr><td>25</td><td>Annual</td></tr></table>
</section>
<div class="section"><div class="titlepage"><h2 class="title"><a name="s-pay"></a>Pay</h2></div>
<p>Paid monthly.<br>On the last day.</p>
<pre>line one
    line   two</pre>
<div class="section"><p>A headingless answer.</p></div>
<p>Back in Pay.</p>
</div>
<a name="misc"></a>
<h3>Misc</h3>
<dl><dt id="index-term"><span>Term<a href="#index-term" class="copiable-anchor"> &para;</a></span></dt><dd>Definition<a href="/_modules/x"><span class="viewcode-link"><span class="pre">[source]</span></span></a></dd></dl>
<script>document.write("injected")</script><noscript>Enable JS</noscript>
<div role="contentinfo">Copyright footer</div>
<footer>Footer links</footer>
</body></html>
"""


def test_html_sections_anchors_and_boilerplate_removed(tmp_path):
    doc = parse(write(tmp_path, "handbook.html", HTML))
    assert doc.format == "html"
    assert doc.sections == (
        Section("Welcome to the handbook."),
        Section("Ask your manager.\nAnnual leave\nSick leave\nDays | Type\n25 | Annual", ("Handbook", "Leave"), "leave"),
        Section("Paid monthly.\nOn the last day.\nline one\nline two", ("Handbook", "Pay"), "s-pay"),
        Section("A headingless answer.", ("Handbook", "Pay"), "s-pay"),
        Section("Back in Pay.", ("Handbook", "Pay"), "s-pay"),
        Section("Term\nDefinition", ("Handbook", "Misc"), "misc"),
    )
    everything = "\n".join(s.text for s in doc.sections)
    for chrome in ("Prev", "Next", "Up", "Home", "banner", "Sidebar", "Table of Contents", "secret", "injected",
                   "Enable JS", "footer", "Footer", "¶", "[source]"):  # fmt: skip
        assert chrome not in everything


def test_html_meta(tmp_path):
    m = parse(write(tmp_path, "handbook.htm", HTML)).meta
    assert (m.title, m.authors, m.created, m.modified) == ("Handbook", ("Ann Lee", "Bob Ray"), "2024-03-01", "2024-04-02")
    assert (m.project, m.doc_type, m.tags) == ("Apollo", "handbook", ("hr", "policy"))
    assert m.extra == {"description": "The staff handbook", "lang": "en"}


def test_html_docbook_sections_inherit_the_chapter_anchor(tmp_path):
    page = """<html><body><div class="navheader">Prev Next</div><div class="chapter"><div class="titlepage">
    <h1 class="title"><a id="basic"></a>Chapter 1. Basics</h1></div>
    <div class="section"><div class="titlepage"><div><div></div></div></div><p>First answer.</p></div>
    <div class="section" id="q2"><p>Second answer.</p></div></div>
    <div class="navfooter"><a>Home</a></div></body></html>"""
    doc = parse(write(tmp_path, "faq.html", page))
    assert doc.meta.title == "Chapter 1. Basics"  # no <title>: the first h1
    assert doc.sections == (
        Section("First answer.", ("Chapter 1. Basics",), "basic"),
        Section("Second answer.", ("Chapter 1. Basics",), "q2"),
    )


def test_html_article_header_and_main_are_content(tmp_path):
    page = """<html><body><header><h1>Site</h1><nav>Menu</nav></header><div id="sidebar">Links</div>
    <main><article><header><h1>Post title</h1><p>By Ann</p></header><p>Post body.</p></article></main>
    <footer>Footer</footer></body></html>"""
    doc = parse(write(tmp_path, "post.html", page))
    assert doc.sections == (Section("By Ann\nPost body.", ("Post title",), None),)


def test_html_chrome_rules_spare_the_content_wrapper(tmp_path):
    page = """<html><body><div id="header"><h1>git-commit(1)</h1><h2>NAME</h2><p>git-commit - record changes</p></div>
    <div class="layout-with-sidebar"><h1 id="opts">Options</h1><p>-a stages all.</p>
    <p hidden>Hidden text</p><span aria-hidden="true">#</span><p hidden="until-found">Collapsed answer.</p></div>
    <div id="footer">Last updated</div></body></html>"""
    assert parse(write(tmp_path, "man.html", page)).sections == (
        Section("git-commit - record changes", ("git-commit(1)", "NAME"), None),
        Section("-a stages all.\nCollapsed answer.", ("Options",), "opts"),
    )


def test_html_texinfo_node_navigation_is_chrome(tmp_path):
    # texi2any 6 (R's manuals, libffi) writes <div class="header">, texi2any 7 <div class="nav-panel">
    page = """<html><body><h1 class="settitle">R Admin</h1><div class="top" id="Top"><div class="header"><p>
    Next: <a href="#a">Obtaining R</a> [<a href="#c">Contents</a>][<a href="#i">Index</a>]</p></div>
    <h1 class="top">R Admin</h1><p>A guide.</p></div><div class="chapter" id="Obtaining-R">
    <div class="nav-panel"><p>Next: <a href="#b">Installing</a>, Previous: <a href="#Top">Top</a></p></div>
    <h2 class="chapter">1 Obtaining R</h2><p>From CRAN.</p></div></body></html>"""
    doc = parse(write(tmp_path, "R-admin.html", page))
    assert [s.text for s in doc.sections] == ["A guide.", "From CRAN."]


def test_html_unclosed_heading_does_not_swallow_the_page(tmp_path):
    doc = parse(write(tmp_path, "broken.html", "<body><h2>Unclosed <p>para <table><tr><td>cell<td>two</table>"))
    assert doc.sections == (Section("Unclosed\npara\ncell | two"),)


def test_html_keeps_page_when_chrome_rules_would_empty_it(tmp_path):
    doc = parse(write(tmp_path, "odd.html", '<html><body><div class="related"><p>Only real text.</p></div></body></html>'))
    assert doc.sections == (Section("Only real text."),)


def test_html_charset_declared_and_undeclared(tmp_path):
    declared = b"<html><head><meta charset='iso-8859-1'><title>Caf\xe9</title></head><body><p>\x93cr\xe8me\x94</p></body></html>"
    doc = parse(write(tmp_path, "latin.html", declared))
    assert doc.meta.title == "Café" and doc.sections[0].text == "\u201ccrème\u201d"
    undeclared = "<html><body><p>na\xefve r\xe9sum\xe9</p></body></html>".encode("latin-1")
    assert parse(write(tmp_path, "raw.html", undeclared)).sections[0].text == "naïve résumé"


@pytest.mark.parametrize("name", ["image.html", "image.md", "image.txt"])
def test_binary_content_is_not_text(tmp_path, name):
    with pytest.raises(ParseError, match="binary file, not text"):
        parse(write(tmp_path, name, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))))


@pytest.mark.parametrize("content", ["", "<html><head><title>T</title></head><body>  </body></html>",
                                     "<html><body><script>x()</script><h1>Only a heading</h1></body></html>"])  # fmt: skip
def test_html_without_text_is_empty(tmp_path, content):
    with pytest.raises(ParseError, match=EMPTY):
        parse(write(tmp_path, "e.html", content))


# --- DOCX -------------------------------------------------------------------------------------


def make_docx(path: Path) -> Path:
    import docx

    d = docx.Document()
    props = d.core_properties
    props.title, props.author = "Leave Policy", "Ann Lee; Bob Ray"
    props.created, props.modified = dt.datetime(2024, 3, 1, 9, 0), dt.datetime(2024, 4, 2, 9, 0)
    props.keywords, props.category, props.subject, props.content_status = "hr, leave", "Policy", "Time off", "Draft"
    d.add_paragraph("Leave Policy", style="Title")
    d.add_paragraph("Read   this first.")
    d.add_heading("Annual Leave", level=1)
    d.add_paragraph("Staff get 25 days.")
    table = d.add_table(rows=2, cols=3)
    for r, row in enumerate([("Years", "Days", "Note"), ("0-5", "25", "")]):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    table.cell(0, 1).merge(table.cell(0, 2))  # a merged cell is written once
    table.cell(1, 2).add_table(rows=1, cols=1).cell(0, 0).text = "nested"
    d.add_heading("Carry over", level=2)
    d.add_paragraph("Up to 5 days.", style="List Bullet")
    d.add_heading("Annual Leave", level=1)
    d.add_heading("Empty", level=2)
    d.add_heading("Notes", level=2)
    d.add_paragraph("Last words.")
    d.save(path)
    return path


def make_docx_sections() -> tuple[Section, ...]:
    return (
        Section("Read this first."),
        Section("Staff get 25 days.\nYears | Days Note\n0-5 | 25 | nested", ("Annual Leave",), "annual-leave"),
        Section("- Up to 5 days.", ("Annual Leave", "Carry over"), "carry-over"),
        Section("Last words.", ("Annual Leave", "Notes"), "notes"),
    )


def test_docx_sections_tables_and_meta(tmp_path):
    doc = parse(make_docx(tmp_path / "policy.docx"))
    assert doc.format == "docx"
    assert doc.sections == make_docx_sections()
    m = doc.meta
    assert (m.title, m.authors, m.created, m.modified) == ("Leave Policy", ("Ann Lee", "Bob Ray"), "2024-03-01", "2024-04-02")
    assert (m.tags, m.doc_type, m.status, m.extra) == (("hr", "leave"), "Policy", "Draft", {"subject": "Time off"})


def test_docx_title_paragraph_when_core_title_is_missing(tmp_path):
    import docx

    d = docx.Document()
    d.core_properties.title = ""
    d.add_paragraph("Handbook 2024", style="Title")
    d.add_paragraph("Body.")
    d.save(tmp_path / "h.docx")
    doc = parse(tmp_path / "h.docx")
    assert doc.meta.title == "Handbook 2024" and doc.sections == (Section("Body."),)


def test_docx_with_broken_core_properties_still_parses(tmp_path):
    import zipfile

    good = make_docx(tmp_path / "good.docx").read_bytes()
    for name, core in [("garbage.docx", b"<not xml"), ("dates.docx", CORE_WITH_BAD_DATES)]:
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(good)) as zin, zipfile.ZipFile(out, "w") as zout:
            for item in zin.infolist():
                zout.writestr(item, core if item.filename == "docProps/core.xml" else zin.read(item.filename))
        doc = parse(write(tmp_path, name, out.getvalue()))
        assert doc.sections[1:] == make_docx_sections()[1:]
        assert (doc.meta.created, doc.meta.modified) == (None, None)
    assert doc.meta.title == "Kept"  # the Title paragraph differs from it, so it stays in the text
    assert doc.sections[0] == Section("Leave Policy\nRead this first.")


CORE_WITH_BAD_DATES = (
    b'<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
    b'xmlns:dcterms="http://purl.org/dc/terms/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
    b"<dc:title>Kept</dc:title><dcterms:created>garbage</dcterms:created><dcterms:modified>2024-99-99</dcterms:modified>"
    b"</cp:coreProperties>"
)


def test_docx_bad_and_empty_files(tmp_path):
    with pytest.raises(ParseError, match="not a valid DOCX"):
        parse(write(tmp_path, "bad.docx", b"PK\x03\x04 this is not really a zip"))
    with pytest.raises(ParseError, match=EMPTY):
        parse(write(tmp_path, "zero.docx", b""))
    import docx

    d = docx.Document()
    d.add_paragraph("   ")
    d.save(tmp_path / "blank.docx")
    with pytest.raises(ParseError, match=EMPTY):
        parse(tmp_path / "blank.docx")


# --- PDF --------------------------------------------------------------------------------------


def reportlab_pdf(pages: list[list[str]], **info: str) -> bytes:
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, invariant=1)
    if "title" in info:
        c.setTitle(info["title"])
    for lines in pages:
        for i, line in enumerate(lines):
            c.drawString(72, 720 - 20 * i, line)
        c.showPage()
    c.save()
    return buf.getvalue()


def rewrite_pdf(data: bytes, metadata: dict | None = None, outline: bool = False, encrypt: str | None = None,
                xmp: bytes | None = None) -> bytes:  # fmt: skip
    """reportlab's PDF rewritten by pypdf: info replaced by `metadata`, outline, XMP or encryption added."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import DecodedStreamObject, NameObject

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.metadata = None
    if metadata:
        writer.add_metadata(metadata)
    if outline:
        chapter = writer.add_outline_item(title="Chapter One", page_number=1)
        writer.add_outline_item(title="Details", page_number=2, parent=chapter)
    if xmp is not None:
        stream = DecodedStreamObject()
        stream.set_data(xmp)
        stream[NameObject("/Type")], stream[NameObject("/Subtype")] = NameObject("/Metadata"), NameObject("/XML")
        writer._root_object[NameObject("/Metadata")] = writer._add_object(stream)
    if encrypt is not None:
        writer.encrypt(user_password=encrypt, owner_password="owner-secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


THREE_PAGES = [["Cover page"], ["Chapter One", "Text of   page two."], ["Details on page three."]]


def test_pdf_pages_outline_and_info(tmp_path):
    meta = {"/Title": "Annual Report", "/Author": "Ann Lee and Bob Ray", "/Subject": "Finance",
            "/Keywords": "report, 2024", "/CreationDate": "D:20240301120000+00'00'", "/ModDate": "D:20240402"}  # fmt: skip
    doc = parse(write(tmp_path, "report.pdf", rewrite_pdf(reportlab_pdf(THREE_PAGES), meta, outline=True)))
    assert doc.format == "pdf"
    assert doc.sections == (
        Section("Cover page", (), None, 1),
        Section("Chapter One\nText of page two.", ("Chapter One",), None, 2),
        Section("Details on page three.", ("Chapter One", "Details"), None, 3),
    )
    m = doc.meta
    assert (m.title, m.authors, m.created, m.modified) == ("Annual Report", ("Ann Lee", "Bob Ray"), "2024-03-01", "2024-04-02")
    assert (m.tags, m.extra) == (("report", "2024"), {"subject": "Finance"})


XMP = b"""<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""
 xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xmp="http://ns.adobe.com/xap/1.0/">
<dc:title><rdf:Alt><rdf:li xml:lang="x-default">XMP Title</rdf:li></rdf:Alt></dc:title>
<dc:creator><rdf:Seq><rdf:li>Cy Doe</rdf:li><rdf:li>Di Roe</rdf:li></rdf:Seq></dc:creator>
<xmp:CreateDate>2023-05-06T10:00:00Z</xmp:CreateDate></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>"""


def test_pdf_xmp_fills_missing_info_and_bad_xmp_is_ignored(tmp_path):
    doc = parse(write(tmp_path, "x.pdf", rewrite_pdf(reportlab_pdf([["First line here"]]), xmp=XMP)))
    assert (doc.meta.title, doc.meta.authors, doc.meta.created) == ("XMP Title", ("Cy Doe", "Di Roe"), "2023-05-06")
    bad = parse(write(tmp_path, "y.pdf", rewrite_pdf(reportlab_pdf([["First line here", "more"]]), xmp=b"<x:xmpmeta><broken")))
    assert bad.meta.title == "First line here" and bad.meta.authors == ()
    assert bad.sections == (Section("First line here\nmore", (), None, 1),)


def test_pdf_running_headers_and_footers_are_dropped(tmp_path):
    bodies = ["Leave rules.", "Pay dates.", "Travel costs.", "Laptop care.", "Exit steps."]
    pages = [["ACME Handbook", body, f"Page {n} of 5"] for n, body in enumerate(bodies, 1)]
    doc = parse(write(tmp_path, "handbook.pdf", reportlab_pdf(pages)))
    assert doc.meta.title == "ACME Handbook"
    assert [s.text for s in doc.sections] == bodies
    assert [s.page for s in doc.sections] == [1, 2, 3, 4, 5]


def test_pdf_wrapped_lines_are_joined():
    from ingest.parsers.pdf import join_wrapped

    text = (
        "Purpose\nThis policy explains how employees book business travel and how they\n"
        "are reimbursed. It applies to all staff and to contractors whose manip-\nulated contracts say so.\n"
        "Next heading\n• a bullet that follows a long line which does not end a sentence\n• next\n"
        "A table cell that is long enough to be wrapped in two\nlines\nHeading after a joined cell"
    )
    assert join_wrapped(text) == (
        "Purpose\nThis policy explains how employees book business travel and how they are reimbursed. "
        "It applies to all staff and to contractors whose manipulated contracts say so.\n"
        "Next heading\n• a bullet that follows a long line which does not end a sentence\n• next\n"
        "A table cell that is long enough to be wrapped in two lines\nHeading after a joined cell"
    )


def test_pdf_reportlab_placeholders_are_not_metadata(tmp_path):
    doc = parse(write(tmp_path, "plain.pdf", reportlab_pdf([["Plain first line"]])))
    assert (doc.meta.title, doc.meta.authors, doc.meta.extra) == ("Plain first line", (), {})
    assert doc.meta.created == "2000-01-01"  # reportlab's invariant date


def test_pdf_encrypted(tmp_path):
    data = reportlab_pdf([["Secret text"]])
    with pytest.raises(ParseError, match="encrypted PDF: needs a password"):
        parse(write(tmp_path, "locked.pdf", rewrite_pdf(data, encrypt="s3cret")))
    opened = parse(write(tmp_path, "owner-only.pdf", rewrite_pdf(data, encrypt="")))
    assert opened.sections == (Section("Secret text", (), None, 1),)


def test_pdf_broken_files(tmp_path):
    data = reportlab_pdf(THREE_PAGES)
    with pytest.raises(ParseError, match="not a valid PDF"):
        parse(write(tmp_path, "cut.pdf", data[: len(data) // 2]))
    with pytest.raises(ParseError, match="not a valid PDF"):
        parse(write(tmp_path, "garbage.pdf", b"%PDF-1.4\n this is \x00 garbage " * 20))
    with pytest.raises(ParseError, match="not a valid PDF"):
        parse(write(tmp_path, "html.pdf", b"<html>not a pdf</html>"))
    with pytest.raises(ParseError, match=EMPTY):
        parse(write(tmp_path, "zero.pdf", b""))


def test_pdf_without_text_layer(tmp_path):
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.rect(72, 72, 200, 200, fill=1)
    c.showPage()
    c.save()
    # a drawing and no text: OCR finds nothing (tests/ingest/test_ocr.py), or says to install tesseract
    with pytest.raises(ParseError, match=r"no extractable text: no text layer, and OCR found no text|page 1 has no text layer; install tesseract-ocr"):
        parse(write(tmp_path, "scan.pdf", buf.getvalue()))


def test_pdf_glyphs_a_browser_cannot_draw_are_normalized():
    """WinAnsi bullets pypdf passes through as 0x7F, Symbol-font bullets in the private-use area and
    ligatures become text every font renders (they showed as boxes on the search page)."""
    from ingest.parsers.pdf import normalize_glyphs

    assert normalize_glyphs("Action items\n\x7f\nIntroduce keys.\n\x7f\nAdd a constraint.") == \
        "Action items\n• Introduce keys.\n• Add a constraint."
    assert normalize_glyphs("\uf0b7 first\n\uf0a7 second") == "• first\n▪ second"
    assert normalize_glyphs("the ﬁle and the ﬂow, eﬀort") == "the file and the flow, effort"
    assert normalize_glyphs("a\x00b\x9fc") == "abc"
    assert normalize_glyphs("Ünïcödé – “quotes” · 38,940 £") == "Ünïcödé – “quotes” · 38,940 £"


def test_example_pdfs_have_only_drawable_characters():
    import unicodedata

    root = Path(__file__).resolve().parents[2] / "examples" / "corpus"
    for path in sorted(root.rglob("*.pdf")):
        doc = parse_file(path, str(path.relative_to(root)))
        text = "".join(s.text for s in doc.sections)
        odd = {c for c in text if unicodedata.category(c) in ("Cc", "Co", "Cn") and c != "\n"}
        assert not odd, (path.name, sorted(map(hex, map(ord, odd))))
    postmortem = parse_file(root / "billing/lessons/postmortem-2023-11-duplicate-invoices.pdf", "p.pdf")
    assert "• Introduce idempotency keys" in postmortem.sections[-1].text
