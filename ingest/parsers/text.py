"""Plain text: one section, or one per clear heading line.

Clear headings are setext-style (a line underlined with ===, --- or ~~~) and lines in capitals
standing alone between blank lines ("DISCUSSION"), as in memos and meeting notes. A memo-style
header block at the top ("Date: 2024-03-01", "Author: …", "Tags: …") fills the metadata; its
lines stay in the text.
"""

from __future__ import annotations

import re
from pathlib import Path

from km_search.types import Document, DocumentMeta, Section

from .markdown import declared_groups

from ._common import (
    SectionBuilder,
    collapse,
    decode_text,
    iso_date,
    path_of,
    push_heading,
    read_bytes,
    split_names,
    split_tags,
)


_UNDERLINE = re.compile(r"^\s*([=\-~])\1{2,}\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)]|[a-z][.)])\s+\S")
_FIELD = re.compile(r"^\s*([A-Za-z][A-Za-z _-]{0,30}):\s+(\S.*)$")
_MAX_TITLE = 100
_MAX_CAPS_HEADING = 80
_WRAPPED = 40  # a line at least this long that runs on into the next one is a wrapped line
_CAPS = "CAPS"  # the heading kind of capitals-only lines, next to the underline characters
_KNOWN_FIELDS = frozenset(
    "title author authors by date created modified updated project type doc_type doc-type tags keywords "
    "status groups".split()
)


def parse(path: Path, rel_path: str) -> Document:
    lines = decode_text(read_bytes(path)).splitlines()
    sections = build_sections(lines)
    return Document(path=rel_path, format="text", sections=sections, meta=meta_of(lines, path))


def title_of(lines: list[str], path: Path) -> str:
    """The first non-empty line when it is short enough to be a title, else the file name."""
    first = next((collapse(line) for line in lines if line.strip()), "")
    return first if first and len(first) < _MAX_TITLE and not _UNDERLINE.match(first) else path.stem


def header_fields(lines: list[str]) -> dict[str, str]:
    """'Key: value' lines at the top (after an optional title line), when one key is a known one."""
    start = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    if start < len(lines) and not _FIELD.match(lines[start]):
        start += 1  # the title line
    fields: dict[str, str] = {}
    for line in lines[start:]:
        m = _FIELD.match(line)
        if not m:
            break
        fields.setdefault(m[1].strip().lower(), collapse(m[2]))
    return fields if _KNOWN_FIELDS & fields.keys() else {}


def meta_of(lines: list[str], path: Path) -> DocumentMeta:
    fields = header_fields(lines)

    def first(*keys: str) -> str | None:
        return next((fields[k] for k in keys if fields.get(k)), None)

    extra = {k: v for k, v in fields.items() if k not in _KNOWN_FIELDS}
    return DocumentMeta(
        title=first("title") or title_of(lines, path),
        authors=split_names(first("authors", "author", "by") or ""),
        created=iso_date(first("created", "date")),
        modified=iso_date(first("modified", "updated")),
        project=first("project"),
        doc_type=first("doc_type", "doc-type", "type"),
        tags=split_tags(first("tags", "keywords") or ""),
        status=first("status"),
        extra=extra,
        groups=declared_groups(split_tags(fields.get("groups") or "")),
    )


def is_blank(lines: list[str], i: int) -> bool:
    return i < 0 or i >= len(lines) or not lines[i].strip()


def heading_at(lines: list[str], i: int) -> tuple[str, int] | None:
    """(heading kind, lines it takes) when lines[i] is a heading: a short line after a blank one,
    either underlined or in capitals and followed by a blank line."""
    line = lines[i].strip()
    if not line or not is_blank(lines, i - 1) or _UNDERLINE.match(line) or len(line) >= _MAX_TITLE:
        return None
    if i + 1 < len(lines) and (m := _UNDERLINE.match(lines[i + 1])):
        return m[1], 2
    if is_blank(lines, i + 1) and is_caps_heading(line):
        return _CAPS, 1
    return None


def is_caps_heading(line: str) -> bool:
    letters = [c for c in line if c.isalpha()]
    return (
        len(letters) >= 3
        and len(line) <= _MAX_CAPS_HEADING
        and all(c.isupper() for c in letters)
        and not line.endswith((".", ",", ";"))
        and not _LIST_ITEM.match(line)
    )


def build_sections(lines: list[str]) -> tuple[Section, ...]:
    """Cut at headings; heading levels follow the order in which heading kinds first appear."""
    builder, stack, levels = SectionBuilder(), (), {}
    paragraph: list[str] = []
    i = 0
    while i < len(lines):
        heading = heading_at(lines, i)
        if heading is not None:
            builder.add(join_paragraph(paragraph))
            paragraph = []
            kind, taken = heading
            stack = push_heading(stack, levels.setdefault(kind, len(levels) + 1), collapse(lines[i]))
            builder.cut(path_of(stack), None)
            i += taken
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
    """Hard-wrapped prose becomes one line; short lines (headers, addresses) and list items keep theirs."""
    out: list[str] = []
    previous = 0
    for raw in lines:
        line = collapse(raw)
        if out and previous >= _WRAPPED and not _LIST_ITEM.match(line) and not _FIELD.match(line):
            out[-1] += " " + line
        else:
            out.append(line)
        previous = len(line)
    return "\n".join(out)
