"""PowerPoint (.pptx): one Section per slide, under the slide's title ("Slide N" when it has none).

A slide's text is its text frames (group shapes included) other than the title, its tables as
' | '-joined rows, then the speaker notes; footers, dates and slide numbers are left out. The anchor
is `slide=N` (1-based, hidden slides counted, as PowerPoint numbers them): `deck.pptx#slide=3`.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pptx
from pptx.enum.shapes import MSO_SHAPE_TYPE, PP_PLACEHOLDER
from pptx.exc import PackageNotFoundError

from km_search.errors import ParseError
from km_search.types import Document, Section

from ._common import collapse, normalize_lines, read_bytes, require_text
from ._office import check_unpacked_size, core_fields, office_meta


MAX_UNPACKED_MB = 256  # as for Word: slides of text and images unpack to well under this
_TITLES = (PP_PLACEHOLDER.TITLE, PP_PLACEHOLDER.CENTER_TITLE, PP_PLACEHOLDER.VERTICAL_TITLE)
_CHROME = (PP_PLACEHOLDER.DATE, PP_PLACEHOLDER.FOOTER, PP_PLACEHOLDER.HEADER, PP_PLACEHOLDER.SLIDE_NUMBER)
_CORE = {
    "title": "title", "author": "author", "created": "created", "modified": "modified", "subject": "subject",
    "keywords": "keywords", "category": "category", "content_status": "content_status", "language": "language",
}  # fmt: skip


def parse(path: Path, rel_path: str) -> Document:
    prs = open_pptx(read_bytes(path))
    sections: list[Section] = []
    first_title: str | None = None
    try:
        for number, slide in enumerate(prs.slides, start=1):
            title, lines = slide_text(slide)
            first_title = first_title or title
            text = normalize_lines("\n".join(lines)) or (title or "")  # a title-only slide (a divider) keeps its title
            sections.append(Section(text, (title or f"Slide {number}",), f"slide={number}"))
    except Exception as exc:  # noqa: BLE001 - a slide part python-pptx cannot read
        raise ParseError(f"not a valid PowerPoint file: slide {len(sections) + 1}: {exc}") from exc
    try:
        props = prs.core_properties
    except Exception:  # noqa: BLE001 - a broken docProps/core.xml costs the metadata, not the slides
        props = None
    core = core_fields(props, _CORE) if props is not None else {}
    meta = office_meta(core, first_title or path.stem)
    return Document(path=rel_path, format="pptx", sections=require_text(sections), meta=meta)


def open_pptx(data: bytes) -> Any:
    check_unpacked_size(data, "PowerPoint", MAX_UNPACKED_MB)
    try:
        return pptx.Presentation(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile) as exc:
        raise ParseError(
            "not a valid PowerPoint file: not a zip package (an old .ppt, or another file renamed?)"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - missing parts, broken XML, a .potx/.docx renamed ...
        raise ParseError(f"not a valid PowerPoint file: {exc}") from exc


def slide_text(slide: Any) -> tuple[str | None, list[str]]:
    """The slide's title and its lines: body text and tables in shape order, then the notes."""
    title: str | None = None
    lines: list[str] = []
    for shape in walk_shapes(slide.shapes):
        kind = placeholder_type(shape)
        if kind in _CHROME:
            continue
        if kind in _TITLES and title is None and shape.has_text_frame:
            title = collapse(shape.text_frame.text) or None
            if title:
                continue
        if getattr(shape, "has_table", False) and shape.has_table:
            lines.extend(table_lines(shape.table))
        elif shape.has_text_frame:
            lines.extend(frame_lines(shape.text_frame))
    if slide.has_notes_slide:
        notes = slide.notes_slide.notes_text_frame
        if notes is not None:
            lines.extend(frame_lines(notes))
    return title, lines


def walk_shapes(shapes: Iterable[Any]) -> Iterator[Any]:
    """Shapes in document order, the members of group shapes in place of the group."""
    for shape in shapes:
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from walk_shapes(shape.shapes)
        else:
            yield shape


def placeholder_type(shape: Any) -> Any:
    if not shape.is_placeholder:
        return None
    try:
        return shape.placeholder_format.type
    except Exception:  # noqa: BLE001 - a placeholder without <p:ph> details
        return None


def frame_lines(frame: Any) -> list[str]:
    """One line per paragraph; a line break inside a paragraph (\\v in python-pptx) starts a line too."""
    return [p.text.replace("\v", "\n") for p in frame.paragraphs if p.text.strip()]


def table_lines(table: Any) -> list[str]:
    """One line per row, cells joined with ' | '; a merged cell is written once."""
    lines = []
    for row in table.rows:
        cells = [collapse(c.text) for c in row.cells if not c.is_spanned]
        line = " | ".join(c for c in cells if c)
        if line:
            lines.append(line)
    return lines
