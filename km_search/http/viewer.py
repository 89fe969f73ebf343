"""The source viewer's rendering: PDF and HTML files are served as they are (the browser's PDF viewer
honours `#page=N` and an HTML page carries its own ids). Other formats are parsed again by the parser
that indexed them and rendered as a plain HTML page whose heading ids are the sections' anchors, so
every deep link the index hands out (`#anchor`) lands on its heading by construction."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

from km_search.index.documents import SourceDocument
from km_search.types import Section

FORMAT_NAMES = {
    "markdown": "Markdown", "docx": "Word", "text": "text", "pdf": "PDF", "html": "HTML", "pptx": "PowerPoint",
    "xlsx": "Excel", "csv": "CSV", "odt": "OpenDocument text", "odp": "OpenDocument presentation",
    "ods": "OpenDocument spreadsheet", "email": "e-mail", "mbox": "mail archive", "epub": "EPUB", "rtf": "RTF",
    "rst": "reStructuredText", "asciidoc": "AsciiDoc",
}

_BULLET = re.compile(r"^(?:[-*+•◦▪‣●–])\s+(.*)$")
_NUMBERED = re.compile(r"^\d{1,3}[.)]\s+(.*)$")


def render(doc: SourceDocument) -> str:
    """The HTML text rendering of a Markdown, Word or text document."""
    # Imported here, as the CLI's `ingest` command does: serving never needs the parsers until a
    # reader opens a source, and re-parsing with them is what makes the anchors match the index.
    from ingest.parsers import parse_file

    return render_sections(doc, parse_file(doc.abs_path, doc.path).sections)


def render_sections(doc: SourceDocument, sections: Iterable[Section]) -> str:
    """A standalone page: the document's sections in order, each heading carrying its section's anchor."""
    sections = list(sections)
    first_heading = next((s.heading_path[0] for s in sections if s.heading_path), None)
    show_title = first_heading != doc.title
    shift = 1 if show_title else 0  # the document title is the page's h1 when no heading repeats it
    body: list[str] = []
    shown: tuple[str, ...] = ()
    used: set[str] = set()
    for section in sections:
        path = section.heading_path
        common = 0
        while common < min(len(path), len(shown)) and path[common] == shown[common]:
            common += 1
        anchor = section.anchor if section.anchor and section.anchor not in used else None
        if anchor:
            used.add(anchor)
        new_headings = path[common:]
        # the id goes on the section's own heading; a section that opens no new heading carries it itself
        body.append(f"<section{_id(None if new_headings else anchor)}>")
        for depth, heading in enumerate(new_headings, start=common + 1):
            level = min(depth + shift, 6)
            body.append(f"<h{level}{_id(anchor if depth == len(path) else None)}>{html.escape(heading)}</h{level}>")
        body.append(_blocks(section.text))
        body.append("</section>")
        shown = path
    return _page(doc, show_title, "\n".join(body))


def _id(anchor: str | None) -> str:
    return f' id="{html.escape(anchor, quote=True)}"' if anchor else ""


def _blocks(text: str) -> str:
    """Section text (one line per paragraph, list item or table row) as paragraphs, lists and tables."""
    out: list[str] = []
    group: str | None = None
    for line in text.split("\n"):
        if m := _BULLET.match(line):
            kind, cell = "ul", f"<li>{html.escape(m[1])}</li>"
        elif m := _NUMBERED.match(line):
            kind, cell = "ol", f"<li>{html.escape(m[1])}</li>"
        elif " | " in line:
            kind = "table"
            cell = "<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in line.split(" | ")) + "</tr>"
        else:
            kind, cell = "p", f"<p>{html.escape(line)}</p>"
        if kind != group:
            if group not in (None, "p"):
                out.append(f"</{group}>")
            if kind != "p":
                out.append(f"<{kind}>")
            group = kind
        out.append(cell)
    if group not in (None, "p"):
        out.append(f"</{group}>")
    return "\n".join(out)


def _page(doc: SourceDocument, show_title: bool, body: str) -> str:
    meta = doc.meta
    facts = [f'<span class="badge">{html.escape(v)}</span>' for v in (meta.doc_type, meta.project) if v]
    date = meta.modified or meta.created
    if date:
        facts.append(f'<span class="badge">{html.escape(date)}</span>')
    if meta.authors:
        facts.append(f"<span>{html.escape(', '.join(meta.authors))}</span>")
    title = html.escape(doc.title)
    kind = FORMAT_NAMES.get(doc.format, doc.format)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · km-search</title>
<link rel="stylesheet" href="/static/viewer.css">
<link rel="icon" href="/static/icon.svg" type="image/svg+xml">
</head>
<body>
<header class="doc-header">
  <nav aria-label="Breadcrumb"><a href="/">Search</a> <span aria-hidden="true">›</span> <span class="path">{html.escape(doc.path)}</span></nav>
  {f'<h1 class="doc-title">{title}</h1>' if show_title else ''}
  <p class="facts">{' '.join(facts)}</p>
  <p class="note">Text of a {html.escape(kind)} document as indexed ·
    <a href="/documents/{doc.id}?download=1" download>Download the original</a></p>
</header>
<main class="doc-body">
{body}
</main>
</body>
</html>
"""
