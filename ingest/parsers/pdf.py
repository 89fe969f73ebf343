"""PDF: one section per page (deep links are #page=N), headings from the outline when there is one.

Pages without a text layer (scans) are OCR'd with Tesseract when it is installed (_ocr.py); the
pages that stay unread are named in the ParseError of a document left without text, or in
meta.extra["ocr"] of one that has text on other pages.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from dataclasses import replace
from pathlib import Path
from typing import Any

from pypdf import PdfReader
from pypdf.errors import DependencyError

from km_search.errors import ParseError
from km_search.types import Document, DocumentMeta, Section

from ._common import collapse, iso_date, normalize_lines, read_bytes, require_text, split_names, split_tags
from ._ocr import ocr_pages


NO_TEXT = "no extractable text: no text layer, and OCR found no text"
_MAX_TITLE = 200
_EDGE = 2  # lines at the top and at the bottom of a page that may be running headers/footers
_DIGITS = re.compile(r"\d+")
_WRAPPED = 50  # a line at least this long that runs on into the next one was wrapped by the layout
_SENTENCE_ENDS = (".", "!", "?", ":", ";")
_HYPHENATED = re.compile(r"[a-z]-$")
_ITEM_START = re.compile(r"^(?:[•◦▪‣●*+\-–]|\d{1,3}[.)]|\[\d+\])(?:\s|$)")
# Glyphs a page font draws but that reach the text layer as code points no web font renders (a box on
# the search page): WinAnsiEncoding draws every unused code as a bullet, and pypdf passes 0x7F and the
# C1 gaps through as control characters; Symbol and Wingdings bullets land in the private-use area.
_GLYPHS = str.maketrans({
    **dict.fromkeys(["\x7f", "\x81", "\x8d", "\x8f", "\x90", "\x9d", "\uf0b7", "\uf06c", "\uf09f", "\uf0a8"], "•"),
    "\uf0a7": "▪", "\uf0d8": "•", "\uf0e0": "→", "\uf0fc": "✓", "\uf02d": "-",
})
_LIGATURES = re.compile("[\ufb00-\ufb06]")  # ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ: NFKC spells them out ("ﬁle" -> "file")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x80-\x9f]")  # never drawn: dropped
_LONE_BULLET = re.compile(r"^([•◦▪‣●])\n(?=\S)", re.MULTILINE)  # a bullet pypdf put on a line of its own
# Values PDF producers write when the author left a field blank (reportlab: 'untitled', 'anonymous').
_PLACEHOLDERS = frozenset({"untitled", "unspecified", "anonymous", "unknown", "none"})

# pypdf logs a warning for every small defect it repairs; the ingest report is where problems go.
logging.getLogger("pypdf").setLevel(logging.ERROR)


def parse(path: Path, rel_path: str, max_pages: int | None = None) -> Document:
    read_bytes(path)  # a 0-byte file is "empty", not "not a valid PDF"
    reader = open_reader(path)
    try:
        pages = len(reader.pages)
        if max_pages is not None and pages > max_pages:
            raise ParseError(f"PDF has {pages} pages, over the {max_pages} page limit (KM_MAX_PAGES)")
        texts = [page_text(page) for page in reader.pages]
    except ParseError:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds of errors on broken files
        raise ParseError(f"not a valid PDF: {exc}") from exc
    texts, notes = with_ocr(path, texts)
    if not any(texts):
        raise ParseError("; ".join(notes) if notes else NO_TEXT)
    meta = meta_of(reader, texts)  # before stripping: a running header may be the best title we have
    paths = page_heading_paths(reader, len(texts))
    texts = [join_wrapped(t) for t in strip_running_lines(texts)]
    sections = require_text(Section(t, paths[i], None, i + 1) for i, t in enumerate(texts) if t)
    if notes:
        meta = replace(meta, extra={**meta.extra, "ocr": "; ".join(notes)})
    return Document(path=rel_path, format="pdf", sections=sections, meta=meta)


def with_ocr(path: Path, texts: list[str]) -> tuple[list[str], list[str]]:
    """Texts with the pages that have none OCR'd, and sentences naming the pages still unread."""
    missing = [i for i, t in enumerate(texts) if not t]
    if not missing:
        return texts, []
    outcome = ocr_pages(path, missing)
    texts = [normalize_lines(outcome.texts[i]) if i in outcome.texts else t for i, t in enumerate(texts)]
    return texts, outcome.notes()


def open_reader(path: Path) -> PdfReader:
    """A readable, decrypted reader; broken and password-protected files become ParseErrors."""
    try:
        reader = PdfReader(path)
        encrypted = reader.is_encrypted
    except Exception as exc:  # noqa: BLE001
        raise ParseError(f"not a valid PDF: {exc}") from exc
    if encrypted:
        try:
            ok = reader.decrypt("")
        except DependencyError as exc:
            raise ParseError(f"encrypted PDF: cannot decrypt ({exc})") from exc
        except Exception as exc:  # noqa: BLE001
            raise ParseError("encrypted PDF: needs a password") from exc
        if not ok:
            raise ParseError("encrypted PDF: needs a password")
    return reader


def page_text(page: Any) -> str:
    """A page's text, lines kept; a page pypdf cannot read counts as a page without text."""
    try:
        return normalize_lines(normalize_glyphs(page.extract_text() or ""))
    except Exception:  # noqa: BLE001 - one bad page must not lose the whole document
        return ""


def normalize_glyphs(text: str) -> str:
    """Text as a browser can show it: bullets the font drew from an unused or private-use code become
    '•' (joined to the item they mark), ligatures are spelled out, undrawable control codes go."""
    text = _LIGATURES.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text.translate(_GLYPHS))
    return _LONE_BULLET.sub(r"\1 ", _CONTROL.sub("", text))


def strip_running_lines(texts: list[str]) -> list[str]:
    """Drop running headers and footers: edge lines that repeat (page numbers aside) on most pages.

    They would otherwise sit in every passage and match every query about the document's title.
    """
    pages = [t.split("\n") if t else [] for t in texts]
    if len(pages) < 2:
        return texts
    counts: dict[str, int] = {}
    for lines in pages:
        for key in {_DIGITS.sub("#", line) for line in lines[:_EDGE] + lines[-_EDGE:]}:
            counts[key] = counts.get(key, 0) + 1
    needed = max(2, math.ceil(len(pages) / 2))
    running = {key for key, n in counts.items() if n >= needed}

    def strip(lines: list[str]) -> str:
        edges = set(range(_EDGE)) | set(range(len(lines) - _EDGE, len(lines)))
        kept = (line for i, line in enumerate(lines) if i not in edges or _DIGITS.sub("#", line) not in running)
        return "\n".join(kept)

    stripped = [strip(lines) for lines in pages]
    return stripped if any(stripped) else texts


def join_wrapped(text: str) -> str:
    """Lines the PDF wrapped mid-sentence become one line again ('manip-' + 'ulation' too).

    A line joins the next only when it is long and does not end a sentence, so headings, table
    cells and list items keep their own lines.
    """
    out: list[str] = []
    prev = ""  # the previous physical line
    for line in text.split("\n"):
        if len(prev) >= _WRAPPED and not prev.endswith(_SENTENCE_ENDS) and not _ITEM_START.match(line):
            hyphenated = _HYPHENATED.search(prev) and line[:1].islower()
            out[-1] = out[-1][:-1] + line if hyphenated else out[-1] + " " + line
        else:
            out.append(line)
        prev = line
    return "\n".join(out)


def outline_entries(reader: PdfReader) -> list[tuple[int, tuple[str, ...]]]:
    """(0-based page, heading path) for every outline entry, in outline order; [] if unreadable."""
    entries: list[tuple[int, tuple[str, ...]]] = []

    def visit(items: list, parents: tuple[str, ...]) -> None:
        last: tuple[str, ...] = parents
        for item in items:
            if isinstance(item, list):
                visit(item, last)
                continue
            title = collapse(str(getattr(item, "title", "") or ""))
            if not title:
                continue
            last = (*parents, title)
            page = reader.get_destination_page_number(item)
            if page is not None and page >= 0:
                entries.append((page, last))

    try:
        visit(reader.outline, ())
    except Exception:  # noqa: BLE001 - a broken outline only costs the headings
        return []
    return entries


def page_heading_paths(reader: PdfReader, n_pages: int) -> list[tuple[str, ...]]:
    """Each page gets the path of the last outline entry that starts on or before it."""
    entries = sorted(outline_entries(reader), key=lambda e: e[0])  # stable: outline order per page
    paths: list[tuple[str, ...]] = []
    current: tuple[str, ...] = ()
    k = 0
    for page in range(n_pages):
        while k < len(entries) and entries[k][0] <= page:
            current = entries[k][1]
            k += 1
        paths.append(current)
    return paths


def meta_of(reader: PdfReader, texts: list[str]) -> DocumentMeta:
    """Document info first, XMP where info is silent, the first line of text as a last-resort title."""
    info = info_dict(reader)
    xmp = xmp_fields(reader)
    first_line = next((line for t in texts for line in t.split("\n") if line.strip()), "")
    title = info.get("/Title") or xmp.get("title") or (first_line if len(first_line) <= _MAX_TITLE else "")
    extra = {"subject": info["/Subject"]} if info.get("/Subject") else {}
    return DocumentMeta(
        title=title,
        authors=split_names(info.get("/Author", "")) or xmp.get("authors", ()),
        created=iso_date(info.get("/CreationDate")) or xmp.get("created"),
        modified=iso_date(info.get("/ModDate")) or xmp.get("modified"),
        tags=split_tags(info.get("/Keywords", "")) or xmp.get("tags", ()),
        extra=extra,
    )


def info_dict(reader: PdfReader) -> dict[str, str]:
    """The /Info entries as plain strings, placeholders dropped; a damaged dictionary is treated as empty."""
    try:
        info = reader.metadata or {}
        values = {str(k): collapse(str(info[k])) for k in info if info[k] is not None}
    except Exception:  # noqa: BLE001
        return {}
    return {k: v for k, v in values.items() if v and v.lower() not in _PLACEHOLDERS}


def xmp_fields(reader: PdfReader) -> dict[str, Any]:
    """dc:title, dc:creator, dc:subject (keywords) and the xmp dates; malformed XMP yields what could be read, or nothing."""
    out: dict[str, Any] = {}
    try:
        xmp = reader.xmp_metadata
    except Exception:  # noqa: BLE001
        return out
    if xmp is None:
        return out
    readers = {
        "title": lambda: collapse(next(iter((xmp.dc_title or {}).values()), "") or ""),
        "authors": lambda: tuple(a for a in (collapse(str(c)) for c in xmp.dc_creator or ()) if a),
        "created": lambda: iso_date(xmp.xmp_create_date),
        "modified": lambda: iso_date(xmp.xmp_modify_date),
        "tags": lambda: tuple(dict.fromkeys(t for t in (collapse(str(s)) for s in xmp.dc_subject or ()) if t)),
    }
    for key, read in readers.items():
        try:
            value = read()
        except Exception:  # noqa: BLE001
            continue
        if value:
            out[key] = value
    return out
