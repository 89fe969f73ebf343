"""RTF: the text striprtf reads, one line per paragraph, as one section.

striprtf gives plain paragraphs without styles, so there are no headings to cut at (guessing them
from bold or short lines would cut documents at random places). The title is the document's
{\\info}{\\title}, else its first line when that is short, else the file name; {\\info} also gives
the author, subject, keywords and creation/revision dates.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from striprtf.striprtf import rtf_to_text

from km_search.errors import ParseError
from km_search.types import Document, DocumentMeta

from ._common import (
    SectionBuilder,
    collapse,
    iso_date,
    read_bytes,
    split_names,
    split_tags,
)
from .text import title_of


_CODEPAGE = re.compile(rb"\\ansicpg(\d+)")
_INFO_FIELD = re.compile(r"\{\\(title|author|subject|keywords|doccomm|company|category)\b ?((?:[^{}\\]|\\.)*)\}")
_INFO_DATE = re.compile(r"\{\\(creatim|revtim)((?:\\[a-z]+-?\d+ ?)*)\}")
_DATE_PART = re.compile(r"\\(yr|mo|dy)(\d+)")


def parse(path: Path, rel_path: str) -> Document:
    data = read_bytes(path)
    if not data.lstrip().startswith(b"{\\rtf"):
        raise ParseError("not an RTF file: it does not start with '{\\rtf' (another format renamed?)")
    encoding = codepage_of(data)
    source = data.decode(encoding, errors="replace")
    try:
        text = rtf_to_text(source, encoding=encoding, errors="replace")
    except Exception as exc:
        raise ParseError(f"not a valid RTF file: {exc}") from exc
    lines = text.splitlines()
    builder = SectionBuilder()
    for line in lines:
        builder.add(line)
    sections = builder.finish()
    info = info_fields(source, encoding)
    meta = DocumentMeta(
        title=info.get("title") or title_of(lines, path),
        authors=split_names(info.get("author", "")),
        created=info.get("creatim"),
        modified=info.get("revtim"),
        doc_type=info.get("category"),
        tags=split_tags(info.get("keywords", "")),
        extra={k: info[k] for k in ("subject", "company", "doccomm") if info.get(k)},
    )
    return Document(path=rel_path, format="rtf", sections=sections, meta=meta)


def codepage_of(data: bytes) -> str:
    """The code page \\ansicpgN declares for bytes and \\'hh escapes; Windows-1252 when none (or unknown)."""
    m = _CODEPAGE.search(data[:4096])
    if m:
        name = f"cp{int(m[1])}"
        try:
            codecs.lookup(name)
            return name
        except LookupError:
            pass
    return "cp1252"


def info_fields(source: str, encoding: str) -> dict[str, str]:
    """{\\info} text fields (their escapes decoded by striprtf) and dates as 'YYYY-MM-DD'."""
    out: dict[str, str] = {}
    for m in _INFO_FIELD.finditer(source):
        try:
            value = collapse(rtf_to_text("{\\rtf1 " + m[2] + "}", encoding=encoding, errors="replace"))
        except Exception:  # noqa: BLE001, S112 - one unreadable field must not cost the others
            continue
        if value:
            out.setdefault(m[1], value)
    for m in _INFO_DATE.finditer(source):
        parts = dict(_DATE_PART.findall(m[2]))
        date = iso_date(f"{int(parts['yr']):04d}-{parts.get('mo', 1)}-{parts.get('dy', 1)}") if "yr" in parts else None
        if date:
            out.setdefault(m[1], date)
    return out
