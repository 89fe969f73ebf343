"""Plain text: one section, or one per setext-style heading (a line underlined with === / --- / ~~~)."""

from __future__ import annotations

import re
from pathlib import Path

from km_search.errors import ParseError
from km_search.types import Document, DocumentMeta

from ._common import SectionBuilder, collapse, decode_fallback, path_of, push_heading, read_bytes

EXTENSIONS: tuple[str, ...] = (".txt", ".text")

_UNDERLINE = re.compile(r"^\s*([=\-~])\1{2,}\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)]|[a-z][.)])\s+\S")
_MAX_TITLE = 100


def parse(path: Path, rel_path: str) -> Document:
    text = decode_text(read_bytes(path))
    lines = text.splitlines()
    sections = build_sections(lines)
    return Document(path=rel_path, format="text", sections=sections, meta=DocumentMeta(title=title_of(lines, path)))


def decode_text(data: bytes) -> str:
    """UTF-8 (BOM or not) or UTF-16/32 with a BOM, else cp1252/Latin-1; NUL bytes mean binary."""
    has_bom = data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff"))
    if not has_bom and b"\x00" in data[:8192]:
        raise ParseError("binary file, not text")
    return decode_fallback(data)


def title_of(lines: list[str], path: Path) -> str:
    """The first non-empty line when it is short enough to be a title, else the file name."""
    first = next((collapse(line) for line in lines if line.strip()), "")
    return first if first and len(first) < _MAX_TITLE and not _UNDERLINE.match(first) else path.stem


def heading_at(lines: list[str], i: int) -> str | None:
    """The underline character when lines[i] is a setext heading: a short line after a blank one."""
    if i + 1 >= len(lines) or not lines[i].strip() or _UNDERLINE.match(lines[i]):
        return None
    if i > 0 and lines[i - 1].strip():
        return None
    m = _UNDERLINE.match(lines[i + 1])
    return m[1] if m and len(lines[i].strip()) < _MAX_TITLE else None


def build_sections(lines: list[str]) -> tuple:
    """Cut at setext headings; heading levels follow the order underline characters first appear."""
    builder, stack, levels = SectionBuilder(), (), {}
    paragraph: list[str] = []
    i = 0
    while i < len(lines):
        mark = heading_at(lines, i)
        if mark is not None:
            builder.add(join_paragraph(paragraph))
            paragraph = []
            level = levels.setdefault(mark, len(levels) + 1)
            stack = push_heading(stack, level, collapse(lines[i]))
            builder.cut(path_of(stack), None)
            i += 2
            continue
        if lines[i].strip():
            paragraph.append(lines[i])
        else:
            builder.add(join_paragraph(paragraph))
            paragraph = []
        i += 1
    builder.add(join_paragraph(paragraph))
    return builder.finish()


def join_paragraph(lines: list[str]) -> str:
    """Wrapped lines of a paragraph become one line; list items keep a line each."""
    out: list[str] = []
    for line in lines:
        if out and not _LIST_ITEM.match(line):
            out[-1] += " " + line.strip()
        else:
            out.append(line.strip())
    return "\n".join(collapse(line) for line in out)
