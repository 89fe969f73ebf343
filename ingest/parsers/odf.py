"""OpenDocument (.odt, .odp, .ods), read from the package's content.xml and meta.xml.

- text (.odt): headings cut sections with slug anchors, as for Word (`file.odt#heading-slug`);
  lists, tables (' | '-joined rows), text boxes and footnotes are kept in place; tables of contents
  and indexes (they repeat the headings), tracked deletions and comments are left out;
- presentation (.odp): one section per slide, as for PowerPoint (`deck.odp#slide=3`);
- spreadsheet (.ods): one section per visible sheet, rows under their headers, as for Excel
  (`book.ods#sheet=Budget`, `…&rows=2-41` for the parts of a long sheet); cells give the text the
  application displayed, so formulas give their saved values.

The kind is taken from the document body, not the extension. The XML is read with lxml with
entities and network access off; a sheet's thousands of repeated empty rows and cells (how
LibreOffice pads a sheet) are counted, never expanded.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from km_search.errors import ParseError
from km_search.types import Document, Section

from ._common import (
    EMPTY_FILE,
    SectionBuilder,
    SlugDeduper,
    collapse,
    iso_date,
    normalize_lines,
    path_of,
    push_heading,
    read_bytes,
    require_text,
)
from ._office import check_unpacked_size, fragment_value, office_meta, row_sections


MAX_UNPACKED_MB = 256  # content.xml is parsed whole: this bounds the memory a file can take
MAX_REPEAT = 256  # a non-empty cell or row "repeated" more often than this is written this often

NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "presentation": "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0",
    "style": "urn:oasis:names:tc:opendocument:xmlns:style:1.0",
    "meta": "urn:oasis:names:tc:opendocument:xmlns:meta:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
    "manifest": "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0",
}


def q(name: str) -> str:
    """'text:p' -> '{urn:…:text:1.0}p' (lxml's Clark notation)."""
    prefix, local = name.split(":")
    return f"{{{NS[prefix]}}}{local}"


_P, _H, _SPAN, _A, _S, _TAB, _BR = q("text:p"), q("text:h"), q("text:span"), q("text:a"), q("text:s"), q("text:tab"), q("text:line-break")
_LIST, _LIST_ITEM, _LIST_HEADER = q("text:list"), q("text:list-item"), q("text:list-header")
_NOTE, _NOTE_BODY, _NOTE_CITATION = q("text:note"), q("text:note-body"), q("text:note-citation")
_TABLE, _ROW, _CELL, _COVERED = q("table:table"), q("table:table-row"), q("table:table-cell"), q("table:covered-table-cell")
_FRAME, _TEXT_BOX, _GROUP, _PAGE = q("draw:frame"), q("draw:text-box"), q("draw:g"), q("draw:page")
_NOTES = q("presentation:notes")
_PRESENTATION_CLASS = q("presentation:class")
_ROW_GROUPS = frozenset(q(f"table:{n}") for n in ("table-header-rows", "table-rows", "table-row-group"))
# Never text: repeats of the headings, deleted text, comments, declarations, shapes' alt text.
_SKIP = frozenset(
    [q("text:tracked-changes"), q("office:annotation"), q("office:annotation-end"), q("office:forms"),
     q("text:sequence-decls"), q("text:variable-decls"), q("text:user-field-decls"), q("text:table-of-content"),
     q("text:alphabetical-index"), q("text:illustration-index"), q("text:table-index"), q("text:object-index"),
     q("text:user-index"), q("text:bibliography"), q("draw:image"),
     q("table:table-columns"), q("table:table-column"), q("table:table-header-columns"), q("table:shapes")]
)  # fmt: skip
_INLINE_SKIP = frozenset([_NOTE_CITATION, q("office:annotation"), q("office:annotation-end"), q("text:tracked-changes")])
_SLIDE_CHROME = frozenset({"page-number", "footer", "header", "date-time"})
_KINDS = {q("office:text"): "odt", q("office:presentation"): "odp", q("office:spreadsheet"): "ods"}


def parse(path: Path, rel_path: str) -> Document:
    content, meta_xml = read_package(read_bytes(path))
    body = content.find(q("office:body"))
    top = next((el for el in (body if body is not None else ()) if el.tag in _KINDS), None)
    if top is None:
        raise ParseError("not a valid OpenDocument file: content.xml has no text, presentation or spreadsheet body")
    kind = _KINDS[top.tag]
    if kind == "odt":
        sections, first_title = text_sections(top, content)
    elif kind == "odp":
        sections, first_title = slide_sections(top)
    else:
        sections, first_title = sheet_sections(top, content), None
    meta = office_meta(meta_fields(meta_xml), first_title or path.stem)
    return Document(path=rel_path, format=kind, sections=sections, meta=meta)


# --- the package -----------------------------------------------------------------------------


def xml_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True, remove_pis=True)


def read_package(data: bytes) -> tuple[etree._Element, etree._Element | None]:
    """The parsed content.xml and meta.xml (None when it is missing or broken: only metadata is lost)."""
    check_unpacked_size(data, "OpenDocument", MAX_UNPACKED_MB)
    try:
        package = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise ParseError(
            "not a valid OpenDocument file: not a zip package (an old .doc/.ppt/.xls, or another file renamed?)"
        ) from exc
    with package:
        names = set(package.namelist())
        if "content.xml" not in names:
            raise ParseError("not a valid OpenDocument file: it has no content.xml (a flat .fodt, or another zip?)")
        if "META-INF/manifest.xml" in names and b"encryption-data" in member(package, "META-INF/manifest.xml"):
            raise ParseError("encrypted OpenDocument file: save it without a password to index it")
        try:
            content = etree.fromstring(member(package, "content.xml"), xml_parser())
        except etree.XMLSyntaxError as exc:
            raise ParseError(f"not a valid OpenDocument file: content.xml is not well-formed XML ({exc})") from exc
        meta = None
        if "meta.xml" in names:
            try:
                meta = etree.fromstring(member(package, "meta.xml"), xml_parser())
            except (etree.XMLSyntaxError, ParseError):
                meta = None
    return content, meta


def member(package: zipfile.ZipFile, name: str) -> bytes:
    try:
        return package.read(name)
    except (zipfile.BadZipFile, OSError, EOFError, zipfile.LargeZipFile, NotImplementedError, RuntimeError) as exc:
        raise ParseError(f"not a valid OpenDocument file: {name} cannot be unpacked ({exc})") from exc


def meta_fields(meta: etree._Element | None) -> dict[str, str]:
    """meta.xml as the core-property fields the Office parsers use: the initial creator is the author
    (dc:creator is whoever saved it last), dc:date the modification date, meta:keyword the tags."""
    if meta is None:
        return {}
    root = meta.find(q("office:meta"))
    if root is None:
        return {}

    def first(*names: str) -> str | None:
        for name in names:
            el = root.find(q(name))
            if el is not None and collapse(el.text or ""):
                return collapse(el.text or "")
        return None

    out = {
        "title": first("dc:title"),
        "author": first("meta:initial-creator", "dc:creator"),
        "created": iso_date(first("meta:creation-date")),
        "modified": iso_date(first("dc:date")),
        "subject": first("dc:subject"),
        "language": first("dc:language"),
        "keywords": ", ".join(collapse(k.text or "") for k in root.iter(q("meta:keyword")) if collapse(k.text or "")),
    }
    return {k: v for k, v in out.items() if v}


# --- text ------------------------------------------------------------------------------------


def inline_text(el: etree._Element, notes: list[etree._Element] | None = None) -> str:
    """A paragraph's text on one line (line breaks kept); its footnotes are collected into `notes`."""
    parts: list[str] = [el.text or ""]
    for child in el:
        tag = child.tag
        if tag == _S:
            parts.append(" " * min(int(child.get(q("text:c"), "1") or 1), 64))
        elif tag == _TAB:
            parts.append(" ")
        elif tag == _BR:
            parts.append("\n")
        elif tag == _NOTE:
            body = child.find(_NOTE_BODY)
            if notes is not None and body is not None:
                notes.append(body)
        elif tag in _INLINE_SKIP or tag == _FRAME or not isinstance(tag, str):
            pass  # frames anchored in a paragraph are read as blocks after it
        else:
            parts.append(inline_text(child, notes))
        parts.append(child.tail or "")
    return "".join(parts)


def paragraph_blocks(el: etree._Element, prefix: str = "") -> Iterator[str]:
    """A paragraph's line(s), then the text boxes and footnotes it holds."""
    notes: list[etree._Element] = []
    text = inline_text(el, notes)
    if text.strip():
        yield prefix + text
    for frame in el.iter(_FRAME):
        yield from frame_blocks(frame)
    for note in notes:
        yield from blocks(note)


def frame_blocks(frame: etree._Element) -> Iterator[str]:
    for child in frame:
        if child.tag == _TEXT_BOX:
            yield from blocks(child)
        elif child.tag == _TABLE:
            yield from table_lines(child)


def blocks(container: etree._Element, prefix: str = "") -> Iterator[str]:
    """Lines of text of a container (a text box, a list item, a cell, a note), headings as text."""
    for el in container:
        tag = el.tag
        if tag in (_P, _H):
            yield from paragraph_blocks(el, prefix)
        elif tag == _LIST:
            yield from list_blocks(el)
        elif tag == _TABLE:
            yield from table_lines(el)
        elif tag == _FRAME:
            yield from frame_blocks(el)
        elif tag not in _SKIP and isinstance(tag, str):
            yield from blocks(el, prefix)


def list_blocks(el: etree._Element) -> Iterator[str]:
    for item in el:
        if item.tag == _LIST_ITEM:
            yield from blocks(item, "- ")
        elif item.tag == _LIST_HEADER:
            yield from blocks(item)


def table_lines(table: etree._Element) -> Iterator[str]:
    """One line per row, cells joined with ' | ' (a repeated cell is written once)."""
    for row in table_rows(table):
        cells = [collapse(" ".join(blocks(c))) for c in row if c.tag == _CELL]
        line = " | ".join(c for c in cells if c)
        if line:
            yield line


def table_rows(table: etree._Element) -> Iterator[etree._Element]:
    for el in table:
        if el.tag == _ROW:
            yield el
        elif el.tag in _ROW_GROUPS:
            yield from table_rows(el)


def style_parents(content: etree._Element) -> dict[str, str]:
    """Automatic style -> the style it derives from ('P1' -> 'Title')."""
    out = {}
    styles = content.find(q("office:automatic-styles"))
    for st in styles if styles is not None else ():
        name, parent = st.get(q("style:name")), st.get(q("style:parent-style-name"))
        if name and parent:
            out[name] = parent
    return out


def text_sections(top: etree._Element, content: etree._Element) -> tuple[tuple[Section, ...], str | None]:
    """Sections cut at each heading (text:h, its text:outline-level the level), and the title: the
    first paragraph in the 'Title' style, else the first heading."""
    builder, stack, slugs = SectionBuilder(), (), SlugDeduper()
    parents = style_parents(content)
    title_para: str | None = None
    first_heading: str | None = None

    def walk(container: etree._Element) -> None:
        nonlocal stack, title_para, first_heading
        for el in container:
            tag = el.tag
            if tag == _H and collapse(inline_text(el)):
                title = collapse(inline_text(el))
                first_heading = first_heading or title
                try:
                    level = max(1, min(int(el.get(q("text:outline-level"), "1")), 10))
                except ValueError:
                    level = 1
                stack = push_heading(stack, level, title)
                builder.cut(path_of(stack), slugs(title))
                for extra in list(paragraph_blocks(el))[1:]:  # its footnotes and text boxes
                    builder.add(extra)
            elif tag == _P:
                style = el.get(q("text:style-name"), "")
                if title_para is None and "Title" in (style, parents.get(style)) and collapse(inline_text(el)):
                    title_para = collapse(inline_text(el))
                    continue
                for line in paragraph_blocks(el):
                    builder.add(line)
            elif tag in (_LIST, _TABLE, _FRAME):
                for line in blocks_of(el):
                    builder.add(line)
            elif tag not in _SKIP and isinstance(tag, str):
                walk(el)  # text:section, text:soft-page-break, …

    walk(top)
    return builder.finish(), title_para or first_heading


def blocks_of(el: etree._Element) -> Iterator[str]:
    if el.tag == _LIST:
        return list_blocks(el)
    if el.tag == _TABLE:
        return table_lines(el)
    return frame_blocks(el)


# --- presentations ---------------------------------------------------------------------------


def slide_sections(top: etree._Element) -> tuple[tuple[Section, ...], str | None]:
    """One section per draw:page: its title frame is the heading, the other shapes and the notes the text."""
    sections: list[Section] = []
    first_title: str | None = None
    for number, page in enumerate(top.iter(_PAGE), start=1):
        title: str | None = None
        lines: list[str] = []
        for shape in page:
            if shape.tag == _NOTES:
                continue
            cls = shape.get(_PRESENTATION_CLASS, "")
            if cls in _SLIDE_CHROME:
                continue
            shape_lines = list(shape_blocks(shape))
            if cls == "title" and title is None and collapse(" ".join(shape_lines)):
                title = collapse(" ".join(shape_lines))
                continue
            lines.extend(shape_lines)
        for notes in page.iter(_NOTES):
            for frame in notes.iter(_FRAME):
                if frame.get(_PRESENTATION_CLASS) == "notes":
                    lines.extend(frame_blocks(frame))
        first_title = first_title or title
        text = normalize_lines("\n".join(lines)) or (title or "")
        sections.append(Section(text, (title or f"Slide {number}",), f"slide={number}"))
    return require_text(sections), first_title


def shape_blocks(shape: etree._Element) -> Iterator[str]:
    """A frame's text box or table, a group's members, a drawn shape's own paragraphs."""
    if shape.tag == _FRAME:
        yield from frame_blocks(shape)
    elif shape.tag == _GROUP:
        for member_shape in shape:
            yield from shape_blocks(member_shape)
    elif isinstance(shape.tag, str) and shape.tag not in _SKIP:
        yield from blocks(shape)  # draw:custom-shape, draw:rect, …: text:p children


# --- spreadsheets ----------------------------------------------------------------------------


def hidden_table_styles(content: etree._Element) -> set[str]:
    """Names of the table styles that hide a sheet (table:display="false")."""
    hidden = set()
    styles = content.find(q("office:automatic-styles"))
    for st in styles if styles is not None else ():
        props = st.find(q("style:table-properties"))
        if props is not None and props.get(q("table:display")) == "false":
            hidden.add(st.get(q("style:name")))
    return hidden


def sheet_sections(top: etree._Element, content: etree._Element) -> tuple[Section, ...]:
    hidden = hidden_table_styles(content)
    sections: list[Section] = []
    for table in top:
        if table.tag != _TABLE or table.get(q("table:style-name")) in hidden:
            continue
        name = table.get(q("table:name")) or f"Sheet{len(sections) + 1}"
        sections.extend(row_sections(sheet_rows(table), (name,), f"sheet={fragment_value(name)}"))
    if not sections:
        raise ParseError(EMPTY_FILE)
    return tuple(sections)


def repeat(el: etree._Element, attr: str) -> int:
    try:
        return max(1, int(el.get(attr, "1")))
    except ValueError:
        return 1


def sheet_rows(table: etree._Element) -> Iterator[tuple[int, list[str]]]:
    """(row number, cell texts); runs of repeated empty rows and cells only move the counters."""
    number = 1
    for row in table_rows(table):
        times = repeat(row, q("table:number-rows-repeated"))
        cells = row_cells(row)
        if any(cells):
            for i in range(min(times, MAX_REPEAT)):
                yield number + i, cells
        number += times


def row_cells(row: etree._Element) -> list[str]:
    cells: list[str] = []
    column = 0
    for cell in row:
        if cell.tag not in (_CELL, _COVERED):
            continue
        times = repeat(cell, q("table:number-columns-repeated"))
        value = cell_value(cell)
        if value:
            cells.extend([""] * (column - len(cells)))
            cells.extend([value] * min(times, MAX_REPEAT))
        column += times
    return cells


def cell_value(cell: etree._Element) -> str:
    """The text the application displayed (a formula's saved result, a number as formatted), else
    the typed value."""
    shown = collapse(" ".join(blocks(cell)))
    if shown:
        return shown
    for attr in ("office:value", "office:date-value", "office:time-value", "office:boolean-value", "office:string-value"):
        if cell.get(q(attr)):
            return collapse(cell.get(q(attr)))
    return ""
