"""Helpers every parser shares, so all formats agree on slugs, dates, names and section cutting.

Conventions, the same for every format:
- text that comes before the first heading is a Section with heading_path () and anchor None;
- a Section's text is whitespace-collapsed lines joined with "\\n" (one line per paragraph,
  list item, table row or code line); sections whose text is empty are dropped;
- dates are ISO 'YYYY-MM-DD' strings.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from km_search.errors import ParseError
from km_search.types import Section

EMPTY_FILE = "empty file: no text to index"

_SPACES = re.compile(r"\s+")
_SLUG_DROP = re.compile(r"[^\w\- ]", re.UNICODE)
_NAME_SEP = re.compile(r"\s*(?:[,;]|\band\b|&)\s*", re.IGNORECASE)
_AFTER_EMAIL = re.compile(r"(?<=>)\s*(?=\S)")  # 'Ann <a@x> Bob <b@x>': between the two
_TAG_SEP = re.compile(r"\s*[,;]\s*")
_DATE_SEP = re.compile(r"(\d{4})[-/.](\d{1,2})(?:[-/.](\d{1,2}))?(?!\d)")
_DATE_COMPACT = re.compile(r"(?:D:)?(\d+)")


def collapse(text: str) -> str:
    """One line of text: every run of whitespace (newlines too) becomes one space."""
    return _SPACES.sub(" ", text).strip()


def normalize_lines(text: str) -> str:
    """Keep line breaks, collapse spaces inside each line and drop the blank lines."""
    lines = (collapse(line) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def slugify(text: str) -> str:
    """GitHub's heading slug: lowercase, punctuation dropped (not '-' or '_'), spaces -> '-'."""
    return _SLUG_DROP.sub("", text.strip().lower()).replace(" ", "-")


@dataclass
class SlugDeduper:
    """Hands out GitHub-style unique slugs: 'usage', 'usage-1', 'usage-2' for repeated headings."""

    _seen: dict[str, int] = field(default_factory=dict)

    def __call__(self, text: str) -> str:
        base = slugify(text)
        slug, n = base, self._seen.get(base, 0)
        while slug in self._seen:
            n += 1
            slug = f"{base}-{n}"
        self._seen[base] = n
        self._seen.setdefault(slug, 0)
        return slug


def split_names(value: str) -> tuple[str, ...]:
    """Author fields hold several people separated by ',', ';' or 'and', or listed one after another
    without commas as 'Ann Lee <ann@x> Bob Ray <bob@x> Cy Doe': a closing '>' ends a person."""
    parts = (collapse(y) for x in _NAME_SEP.split(value or "") for y in _AFTER_EMAIL.split(x))
    return tuple(p for p in parts if p)


def split_tags(value: str) -> tuple[str, ...]:
    """Keyword fields are ',' or ';' separated; duplicates are dropped, order kept."""
    parts = (collapse(x) for x in _TAG_SEP.split(value or ""))
    return tuple(dict.fromkeys(p for p in parts if p))


def iso_date(value: object) -> str | None:
    """Any date we meet (date/datetime, '2024-03-01…', PDF 'D:20240301…') as 'YYYY-MM-DD', else None."""
    if isinstance(value, dt.datetime | dt.date):
        return value.strftime("%Y-%m-%d")
    parts = _date_parts(value.strip()) if isinstance(value, str) else None
    if parts is None:
        return None
    try:
        return dt.date(*parts).isoformat()
    except ValueError:
        return None


def _date_parts(value: str) -> tuple[int, int, int] | None:
    """(year, month, day) from '2024-03-01', '2024/3/1' or the compact '20240301…' (PDF 'D:' too)."""
    if m := _DATE_SEP.match(value):
        return int(m[1]), int(m[2]), int(m[3] or 1)
    m = _DATE_COMPACT.match(value)
    if m and (len(m[1]) in (4, 6, 8) or len(m[1]) >= 10):
        digits = m[1][:8]
        return int(digits[:4]), int(digits[4:6] or 1), int(digits[6:8] or 1)
    return None


def scalar_str(value: object) -> str | None:
    """A metadata value as a string, or None for lists, mappings and nulls (they have no one string)."""
    if value is None or isinstance(value, list | tuple | dict | set):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime | dt.date):
        return iso_date(value)
    text = collapse(str(value))
    return text or None


def push_heading(stack: tuple[tuple[int, str], ...], level: int, text: str) -> tuple[tuple[int, str], ...]:
    """A new heading closes every open heading of the same or a deeper level."""
    return tuple(h for h in stack if h[0] < level) + ((level, text),)


def path_of(stack: tuple[tuple[int, str], ...]) -> tuple[str, ...]:
    return tuple(text for _, text in stack)


@dataclass
class SectionBuilder:
    """Collects text blocks under the current heading and cuts a Section at each boundary."""

    path: tuple[str, ...] = ()
    anchor: str | None = None
    _blocks: list[str] = field(default_factory=list)
    _sections: list[Section] = field(default_factory=list)

    def add(self, block: str) -> None:
        block = normalize_lines(block)
        if block:
            self._blocks.append(block)

    def cut(self, path: tuple[str, ...], anchor: str | None) -> None:
        """Close the running section (if it has text) and open one under `path`."""
        self.flush()
        self.path, self.anchor = path, anchor

    def flush(self) -> None:
        if self._blocks:
            self._sections.append(Section("\n".join(self._blocks), self.path, self.anchor))
            self._blocks = []

    def finish(self) -> tuple[Section, ...]:
        """All sections in document order; a document without any text is an error."""
        self.flush()
        return require_text(self._sections)


def require_text(sections: Iterable[Section]) -> tuple[Section, ...]:
    """The sections that have text; none at all means there is nothing to index."""
    kept = tuple(s for s in sections if s.text.strip())
    if not kept:
        raise ParseError(EMPTY_FILE)
    return kept


def read_bytes(path: Path) -> bytes:
    """The file's bytes; unreadable and 0-byte files get a ParseError the report can show."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParseError(f"cannot read file: {exc.strerror or exc}") from exc
    if not data.strip():
        raise ParseError(EMPTY_FILE)
    return data


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def decode_text(data: bytes, declared: str | None = None) -> str:
    """Text formats: NUL bytes without a UTF-16/32 BOM mean a binary file (an image, a zip)."""
    if b"\x00" in data[:8192] and not data.startswith(tuple(bom for bom, _ in _BOMS)):
        raise ParseError("binary file, not text")
    return decode_fallback(data, declared)


def decode_fallback(data: bytes, declared: str | None = None) -> str:
    """Bytes to text that never fails: BOM, then the declared charset, then UTF-8, cp1252, Latin-1."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    for codec in (declared, "utf-8", "cp1252"):
        if not codec:
            continue
        try:
            return data.decode(codec)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("latin-1")
