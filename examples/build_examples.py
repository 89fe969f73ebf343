"""Rebuild the binary documents (PDF and DOCX) of the example corpus from their sources.

The Markdown, HTML and plain-text documents under examples/corpus/ are written by hand. The PDF
and DOCX documents are generated from examples/sources/*.yaml so that their text stays reviewable
in git and the files can be rebuilt byte for byte:

    .venv/bin/python examples/build_examples.py            # rebuild everything
    .venv/bin/python examples/build_examples.py --check    # fail if a committed file is out of date

Each source file holds the output path (relative to examples/corpus/), the metadata (title,
authors, date, type, status, tags, project, subject) and a `body` in a tiny Markdown subset:

    # Heading 1            -> bold 15 pt heading + top-level PDF bookmark / Word "Heading 1"
    ## Heading 2           -> bold 12.5 pt heading + nested PDF bookmark / Word "Heading 2"
    plain lines            -> a paragraph (blank line between paragraphs)
    - item                 -> bullet list
    | a | b |              -> table row (first row is the header)
    [pagebreak]            -> explicit page break (PDF only)

Output is deterministic: reportlab runs with invariant=1 and SOURCE_DATE_EPOCH set to the
document's date, and DOCX zip entries are rewritten with a fixed timestamp and order.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import yaml

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "sources"
CORPUS = HERE / "corpus"
ORG = "Northwind Analytics"
CREATOR = "km-search examples/build_examples.py"


# --------------------------------------------------------------------------------------------
# Source parsing
# --------------------------------------------------------------------------------------------


@dataclass
class Block:
    kind: str  # h1 | h2 | p | bullets | table | pagebreak
    text: str = ""
    items: list = field(default_factory=list)


@dataclass
class Source:
    path: Path
    output: str
    title: str
    authors: list[str]
    date: dt.date
    modified: dt.date
    doc_type: str
    status: str | None
    tags: list[str]
    project: str | None
    subject: str
    blocks: list[Block]

    @property
    def author_names(self) -> list[str]:
        return [a.split("<", 1)[0].strip() for a in self.authors]


def parse_body(body: str) -> list[Block]:
    blocks: list[Block] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            blocks.append(Block("p", " ".join(para)))
            para.clear()

    for raw in body.splitlines():
        line = raw.strip()
        if not line:
            flush()
            continue
        if line == "[pagebreak]":
            flush()
            blocks.append(Block("pagebreak"))
        elif line.startswith("## "):
            flush()
            blocks.append(Block("h2", line[3:].strip()))
        elif line.startswith("# "):
            flush()
            blocks.append(Block("h1", line[2:].strip()))
        elif line.startswith("- "):
            flush()
            if not blocks or blocks[-1].kind != "bullets":
                blocks.append(Block("bullets"))
            blocks[-1].items.append(line[2:].strip())
        elif line.startswith("|"):
            flush()
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not blocks or blocks[-1].kind != "table":
                blocks.append(Block("table"))
            blocks[-1].items.append(cells)
        else:
            para.append(line)
    flush()
    return blocks


def load_source(path: Path) -> Source:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    date = data["date"]
    if isinstance(date, str):
        date = dt.date.fromisoformat(date)
    modified = data.get("modified", date)
    if isinstance(modified, str):
        modified = dt.date.fromisoformat(modified)
    return Source(
        path=path,
        output=data["output"],
        title=data["title"],
        authors=list(data["authors"]),
        date=date,
        modified=modified,
        doc_type=data["type"],
        status=data.get("status"),
        tags=list(data.get("tags", [])),
        project=data.get("project"),
        subject=data.get("subject", ""),
        blocks=parse_body(data["body"]),
    )


# --------------------------------------------------------------------------------------------
# PDF (reportlab)
# --------------------------------------------------------------------------------------------


def build_pdf(src: Source) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_LEFT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        ListFlowable,
        ListItem,
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    body = ParagraphStyle("body", fontName="Helvetica", fontSize=10.5, leading=14.5, spaceAfter=7, alignment=TA_LEFT)
    title = ParagraphStyle("title", fontName="Helvetica-Bold", fontSize=19, leading=23, spaceAfter=6)
    meta = ParagraphStyle("meta", fontName="Helvetica-Oblique", fontSize=9.5, leading=13, textColor=colors.HexColor("#444444"), spaceAfter=12)
    h1 = ParagraphStyle("h1", fontName="Helvetica-Bold", fontSize=15, leading=19, spaceBefore=12, spaceAfter=6, keepWithNext=1)
    h2 = ParagraphStyle("h2", fontName="Helvetica-Bold", fontSize=12.5, leading=16, spaceBefore=9, spaceAfter=4, keepWithNext=1)
    cell = ParagraphStyle("cell", fontName="Helvetica", fontSize=9.5, leading=12)
    cell_head = ParagraphStyle("cellh", parent=cell, fontName="Helvetica-Bold")

    class Heading(Paragraph):
        def __init__(self, text: str, style, level: int, key: str):
            super().__init__(escape(text), style)
            self.outline = (text, level, key)

    class Doc(SimpleDocTemplate):
        def afterFlowable(self, flowable):  # noqa: N802 (reportlab API)
            outline = getattr(flowable, "outline", None)
            if outline:
                text, level, key = outline
                self.canv.bookmarkPage(key)
                self.canv.addOutlineEntry(text, key, level=level, closed=False)

    def page_decor(canv, doc):
        canv.saveState()
        canv.setFont("Helvetica", 8)
        canv.setFillColor(colors.HexColor("#666666"))
        canv.drawString(20 * mm, 12 * mm, f"{ORG} - Internal - {src.title}")
        canv.drawRightString(A4[0] - 20 * mm, 12 * mm, f"Page {doc.page}")
        canv.restoreState()

    story = [Paragraph(escape(src.title), title)]
    meta_line = f"{', '.join(src.author_names)} - {src.date.isoformat()}"
    if src.status:
        meta_line += f" - Status: {src.status}"
    story.append(Paragraph(escape(meta_line), meta))
    n = 0
    has_h1 = False
    for b in src.blocks:
        if b.kind in ("h1", "h2"):
            n += 1
            level = 0 if b.kind == "h1" or not has_h1 else 1
            has_h1 = has_h1 or b.kind == "h1"
            story.append(Heading(b.text, h1 if b.kind == "h1" else h2, level, f"s{n}"))
        elif b.kind == "p":
            story.append(Paragraph(escape(b.text), body))
        elif b.kind == "bullets":
            items = [ListItem(Paragraph(escape(t), body), leftIndent=14) for t in b.items]
            story.append(ListFlowable(items, bulletType="bullet", start="\u2022", leftIndent=14, bulletFontSize=8))
        elif b.kind == "table":
            rows = [[Paragraph(escape(c), cell_head if i == 0 else cell) for c in r] for i, r in enumerate(b.items)]
            width = A4[0] - 40 * mm
            t = Table(rows, colWidths=[width / len(rows[0])] * len(rows[0]), repeatRows=1, hAlign="LEFT")
            t.setStyle(
                TableStyle(
                    [
                        ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#999999")),
                        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#E8EEF4")),
                        ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ]
                )
            )
            story += [t, Spacer(1, 8)]
        elif b.kind == "pagebreak":
            story.append(PageBreak())

    buf = io.BytesIO()
    doc = Doc(
        buf,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=20 * mm,
        bottomMargin=22 * mm,
        title=src.title,
        author="; ".join(src.authors),
        subject=src.subject or src.title,
        keywords=", ".join(src.tags),
        creator=CREATOR,
        producer="ReportLab",
        invariant=1,
        lang="en-GB",
    )
    # CreationDate/ModDate come from SOURCE_DATE_EPOCH: the document's own date, 09:00 UTC.
    epoch = int(dt.datetime(src.date.year, src.date.month, src.date.day, 9, 0, tzinfo=dt.timezone.utc).timestamp())
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(epoch)
    try:
        doc.build(story, onFirstPage=page_decor, onLaterPages=page_decor, canvasmaker=_outline_canvas())
    finally:
        if old is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old
    return buf.getvalue()


def _outline_canvas():
    """A canvas that opens the bookmarks pane when the PDF is viewed."""
    from reportlab.pdfgen.canvas import Canvas

    class OutlineCanvas(Canvas):
        def save(self):
            self.showOutline()
            super().save()

    return OutlineCanvas


# --------------------------------------------------------------------------------------------
# DOCX (python-docx)
# --------------------------------------------------------------------------------------------

FIXED_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def build_docx(src: Source) -> bytes:
    import docx
    from docx.shared import Pt

    d = docx.Document()
    d.styles["Normal"].font.name = "Calibri"
    d.styles["Normal"].font.size = Pt(11)

    d.add_heading(src.title, level=0)
    meta_line = f"{', '.join(src.author_names)} - {src.date.isoformat()}"
    if src.status:
        meta_line += f" - Status: {src.status}"
    p = d.add_paragraph()
    run = p.add_run(meta_line)
    run.italic = True

    for b in src.blocks:
        if b.kind == "h1":
            d.add_heading(b.text, level=1)
        elif b.kind == "h2":
            d.add_heading(b.text, level=2)
        elif b.kind == "p":
            d.add_paragraph(b.text)
        elif b.kind == "bullets":
            for t in b.items:
                d.add_paragraph(t, style="List Bullet")
        elif b.kind == "table":
            rows = b.items
            table = d.add_table(rows=len(rows), cols=len(rows[0]))
            table.style = "Table Grid"
            for i, r in enumerate(rows):
                for j, c in enumerate(r):
                    cell = table.cell(i, j)
                    cell.text = c
                    if i == 0:
                        for run in cell.paragraphs[0].runs:
                            run.bold = True
        elif b.kind == "pagebreak":
            d.add_page_break()

    cp = d.core_properties
    created = dt.datetime(src.date.year, src.date.month, src.date.day, 9, 0, 0)
    modified = dt.datetime(src.modified.year, src.modified.month, src.modified.day, 9, 0, 0)
    cp.title = src.title
    cp.author = "; ".join(src.authors)
    cp.last_modified_by = src.author_names[0]
    cp.created = created
    cp.modified = modified
    cp.last_printed = created
    cp.keywords = ", ".join(src.tags)
    cp.category = src.doc_type
    cp.content_status = src.status or "Final"
    cp.subject = src.project or "company"
    cp.comments = src.subject or f"{ORG} {src.doc_type}"
    cp.revision = 1
    cp.language = "en-GB"
    cp.identifier = src.output
    cp.version = "1"

    raw = io.BytesIO()
    d.save(raw)
    return _normalise_zip(raw.getvalue())


def _normalise_zip(data: bytes) -> bytes:
    """Rewrite a zip with fixed timestamps and attributes so identical content gives identical bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            zi.create_system = 0
            zout.writestr(zi, zin.read(info.filename))
    return out.getvalue()


# --------------------------------------------------------------------------------------------


def build(src: Source) -> bytes:
    suffix = Path(src.output).suffix.lower()
    if suffix == ".pdf":
        return build_pdf(src)
    if suffix == ".docx":
        return build_docx(src)
    raise ValueError(f"{src.path.name}: unsupported output type {suffix!r}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="do not write; exit 1 if any output differs")
    ap.add_argument("names", nargs="*", help="only these source files (stem or file name)")
    args = ap.parse_args(argv)

    paths = sorted(SOURCES.glob("*.yaml"))
    if args.names:
        wanted = {Path(n).stem for n in args.names}
        paths = [p for p in paths if p.stem in wanted]
    stale = 0
    for path in paths:
        src = load_source(path)
        data = build(src)
        target = CORPUS / src.output
        if args.check:
            if not target.exists() or target.read_bytes() != data:
                print(f"out of date: {target.relative_to(HERE)}")
                stale += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        changed = not target.exists() or target.read_bytes() != data
        target.write_bytes(data)
        print(f"{'wrote' if changed else 'unchanged'}: {target.relative_to(HERE)} ({len(data):,} bytes)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
