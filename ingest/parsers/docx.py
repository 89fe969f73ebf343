"""DOCX: 'Heading N' paragraphs cut sections; tables are kept in place as ' | '-joined rows.

The anchor is the heading's slug (as for Markdown): Word has no URL fragments, so `file.docx#slug`
only tells a reader which heading to look for.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docx
from docx.document import Document as DocxDocument
from docx.opc.exceptions import PackageNotFoundError
from docx.oxml.ns import qn
from docx.table import Table, _Row
from docx.text.paragraph import Paragraph

from km_search.errors import ParseError
from km_search.types import Document, Section

from ._office import core_fields as office_core_fields, office_meta
from ._common import (
    SectionBuilder,
    SlugDeduper,
    collapse,
    path_of,
    push_heading,
    read_bytes,
)


_HEADING_STYLE = re.compile(r"^heading\s*([1-9])$", re.IGNORECASE)
MAX_UNPACKED_MB = 256  # a 100 MB document of text and images unpacks to well under this
_P, _TBL, _SDT = qn("w:p"), qn("w:tbl"), qn("w:sdt")
_BLANK_CORE = (
    b'<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"/>'
)


def parse(path: Path, rel_path: str) -> Document:
    doc = open_docx(read_bytes(path))  # a 0-byte file is "empty", not "not a valid DOCX"
    core = core_fields(doc)
    sections, title_para, first_heading = build_sections(doc, core.get("title"))
    meta = office_meta(core, title_para or first_heading or path.stem)
    return Document(path=rel_path, format="docx", sections=sections, meta=meta)


def open_docx(data: bytes) -> DocxDocument:
    """The document, retried with blank core properties when only docProps/core.xml is broken."""
    check_unpacked_size(data)
    try:
        return docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile) as exc:
        raise ParseError("not a valid DOCX: not a zip package (an old .doc, or another file renamed?)") from exc
    except Exception as exc:  # noqa: BLE001 - missing parts, broken XML, ...
        error = exc
    try:
        return docx.Document(io.BytesIO(with_blank_core_properties(data)))
    except Exception:  # noqa: BLE001 - the damage is elsewhere: report the first error
        raise ParseError(f"not a valid DOCX: {error}") from error


def check_unpacked_size(data: bytes) -> None:
    """Refuse a zip bomb (kilobytes that inflate to gigabytes) before python-docx inflates anything.

    The sizes the zip declares are enough: zipfile never inflates a member past its declared size
    (a member that lies fails its CRC check instead).
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            total = sum(item.file_size for item in package.infolist())
    except (zipfile.BadZipFile, ValueError):
        return  # docx.Document says what is wrong with it
    if total > MAX_UNPACKED_MB * 1024 * 1024:
        raise ParseError(
            f"not a valid DOCX: it would unpack to {total / 1048576:,.0f} MB, over the {MAX_UNPACKED_MB} MB "
            "a Word document may unpack to (a zip bomb?)"
        )


def with_blank_core_properties(data: bytes) -> bytes:
    """The package with docProps/core.xml blanked, or added when a producer left it out."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            body = _BLANK_CORE if item.filename == "docProps/core.xml" else zin.read(item.filename)
            zout.writestr(item, body)
        if "docProps/core.xml" not in zin.namelist():
            zout.writestr("docProps/core.xml", _BLANK_CORE)
    return out.getvalue()


def core_fields(doc: DocxDocument) -> dict[str, str]:
    """The core properties as strings (dates ISO); unreadable core properties give none."""
    try:
        props = doc.core_properties
    except Exception:  # noqa: BLE001
        return {}
    return office_core_fields(props, {name: name for name in (
        "title", "author", "keywords", "category", "subject", "content_status", "language", "created", "modified")})


def body_blocks(doc: DocxDocument) -> Iterator[Paragraph | Table]:
    """Paragraphs and tables in document order, looking inside content controls (<w:sdt>)."""
    todo = list(doc.element.body.iterchildren())
    todo.reverse()
    while todo:
        el = todo.pop()
        if el.tag == _P:
            yield Paragraph(el, doc)
        elif el.tag == _TBL:
            yield Table(el, doc)
        elif el.tag == _SDT:
            content = el.find(qn("w:sdtContent"))
            if content is not None:
                todo.extend(reversed(list(content.iterchildren())))


def style_name(paragraph: Paragraph) -> str:
    try:
        return (paragraph.style.name or "") if paragraph.style is not None else ""
    except Exception:  # noqa: BLE001 - a dangling style reference
        return ""


def is_list_item(paragraph: Paragraph) -> bool:
    ppr = paragraph._p.pPr
    return (ppr is not None and ppr.numPr is not None) or style_name(paragraph).lower().startswith("list")


def build_sections(
    doc: DocxDocument, core_title: str | None
) -> tuple[tuple[Section, ...], str | None, str | None]:
    """Sections, the text of the first 'Title' paragraph, and the first heading (title fallbacks)."""
    builder, stack, slugs = SectionBuilder(), (), SlugDeduper()
    title_para: str | None = None
    first_heading: str | None = None
    for block in body_blocks(doc):
        if isinstance(block, Table):
            for line in table_lines(block):
                builder.add(line)
            continue
        text = block.text or ""
        style = style_name(block)
        heading = _HEADING_STYLE.match(style.strip())
        if heading and collapse(text):
            title = collapse(text)
            first_heading = first_heading or title
            stack = push_heading(stack, int(heading[1]), title)
            builder.cut(path_of(stack), slugs(title))
        elif style.strip().lower() == "title" and title_para is None and collapse(text):
            title_para = collapse(text)
            if core_title and core_title != title_para:
                builder.add(text)
        else:
            builder.add(("- " if is_list_item(block) and text.strip() else "") + text)
    return builder.finish(), title_para, first_heading


def table_lines(table: Table) -> list[str]:
    """One line per row, cells joined with ' | '; a merged cell is written once."""
    lines: list[str] = []
    for tr in table._tbl.tr_lst:
        cells = row_cells(tr, table)
        line = " | ".join(c for c in cells if c)
        if line:
            lines.append(line)
    return lines


def row_cells(tr: Any, table: Table) -> list[str]:
    """The row's cell texts; rows python-docx cannot lay out fall back to their <w:tc> elements."""
    try:
        tcs, seen = [], []  # seen holds the elements, so identity checks stay valid
        for cell in _Row(tr, table).cells:
            if not any(cell._tc is tc for tc in seen):
                seen.append(cell._tc)
                tcs.append(cell._tc)
    except Exception:  # noqa: BLE001
        tcs = list(tr.iterchildren(qn("w:tc")))
    return [cell_text(tc, table) for tc in tcs]


def cell_text(tc: Any, table: Table) -> str:
    """All paragraphs of a cell on one line, those of tables nested in it included."""
    return collapse(" ".join(Paragraph(p, table).text or "" for p in tc.iter(_P)))
