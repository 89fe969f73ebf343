"""Helpers the office formats share: the zip-bomb check of zipped packages, core properties as
DocumentMeta, and how spreadsheet rows (Excel, OpenDocument, CSV) become text and Sections.

A sheet is rendered row by row under its column headers, "Header: value; Header2: value" (the
first non-empty row holds the headers), so a passage cut from the middle of a long sheet still
says what each number is. A long sheet is cut into several Sections by row ranges, each with its
own deep link (`sheet=Budget&rows=2-41`): spreadsheets have no URL fragments, the range tells a
reader where to look.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field

from km_search.errors import ParseError
from km_search.types import DocumentMeta, Section

from ._common import collapse, iso_date, scalar_str, split_names, split_tags

# A section of a sheet ends after this many rows or words, whichever comes first. The word budget
# keeps a section near one passage of the default chunk size (300 words), so the row range a hit
# links to is the one that holds it.
ROWS_PER_SECTION = 200
WORDS_PER_SECTION = 250
_TITLE_ROWS = 5  # one-cell rows above the header row ("Budget 2024") are read as title lines
_IDENTIFIER = re.compile(r"^[\w.-]{1,64}$")
_FRAGMENT_UNSAFE = re.compile(r"[\s%&=#?+]")


def check_unpacked_size(data: bytes, kind: str, max_mb: int) -> None:
    """Refuse a zip bomb (kilobytes that inflate to gigabytes) before anything is inflated.

    The sizes the zip declares are enough: zipfile never inflates a member past its declared size
    (a member that lies fails its CRC check instead). A file that is not a zip passes: the reader
    of the format says what is wrong with it.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            total = sum(item.file_size for item in package.infolist())
    except (zipfile.BadZipFile, ValueError):
        return
    if total > max_mb * 1024 * 1024:
        raise ParseError(
            f"not a valid {kind}: it would unpack to {total / 1048576:,.0f} MB, over the {max_mb} MB "
            f"a {kind} file may unpack to (a zip bomb?)"
        )


def project_of(subject: str | None) -> str | None:
    """Office files have no project field; teams put the project in Subject. Only a one-word subject
    counts: a sentence there is a description (it stays in extra['subject'])."""
    return subject if subject and _IDENTIFIER.match(subject) else None


def core_fields(props: object, names: dict[str, str]) -> dict[str, str]:
    """Core properties as strings (dates ISO) under our names ({our name: attribute}); one property
    that cannot be read must not cost the others."""
    out: dict[str, str] = {}
    for ours, attr in names.items():
        try:
            raw = getattr(props, attr)
            value = iso_date(raw) if ours in ("created", "modified") else scalar_str(raw)
        except Exception:  # noqa: BLE001 - a malformed property
            continue
        if value:
            out[ours] = value
    return out


def office_meta(core: dict[str, str], title: str) -> DocumentMeta:
    """DocumentMeta from core properties, read the way the Word parser reads them."""
    return DocumentMeta(
        title=core.get("title") or title,
        authors=split_names(core.get("author", "")),
        created=core.get("created"),
        modified=core.get("modified"),
        project=project_of(core.get("subject")),
        doc_type=core.get("category"),
        tags=split_tags(core.get("keywords", "")),
        status=core.get("content_status"),
        extra={k: core[k] for k in ("subject", "language") if core.get(k)},
    )


def fragment_value(name: str) -> str:
    """A sheet name as it stands in a deep link: only what would break `#sheet=NAME&rows=…` is escaped."""
    return _FRAGMENT_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m[0].encode()), name)


def cell_text(value: object) -> str:
    """A cell's value as text: whole floats without '.0', dates ISO, one line."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.15g}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d") if value.time() == dt.time() else value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    return collapse(str(value))


def column_letter(index: int) -> str:
    """0 -> 'A', 25 -> 'Z', 26 -> 'AA': the name a spreadsheet shows for a column without a header."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


@dataclass
class _Range:
    first: int
    last: int
    lines: list[str] = field(default_factory=list)
    words: int = 0


def row_sections(
    rows: Iterable[tuple[int, list[str]]], path: tuple[str, ...], anchor: str | None
) -> list[Section]:
    """Sections of one sheet from (row number, cell texts) in order.

    A sheet that fits one section links to `anchor` ('sheet=Name', or None for a CSV file); a long
    one is cut into row ranges linking to '<anchor>&rows=2-41' (or 'rows=2-41' without an anchor).
    """
    headers: list[str] | None = None
    pending: list[tuple[int, list[str]]] = []  # one-cell rows that may be title lines above the headers
    titles: list[str] = []
    ranges: list[_Range] = []

    def add(number: int, line: str) -> None:
        words = len(line.split())
        current = ranges[-1] if ranges else None
        if current is None or len(current.lines) >= ROWS_PER_SECTION or current.words + words > WORDS_PER_SECTION:
            current = _Range(number, number)
            ranges.append(current)
        current.lines.append(line)
        current.last, current.words = number, current.words + words

    def data_row(number: int, cells: list[str]) -> None:
        assert headers is not None
        pairs = []
        for i, value in enumerate(cells):
            if value:
                name = headers[i] if i < len(headers) and headers[i] else column_letter(i)
                pairs.append(f"{name}: {value}")
        add(number, "; ".join(pairs))

    for number, cells in rows:
        cells = [collapse(c) for c in cells]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        if headers is not None:
            data_row(number, cells)
        elif sum(1 for c in cells if c) == 1 and len(pending) < _TITLE_ROWS:
            pending.append((number, cells))
        else:
            titles = [next(c for c in p if c) for _, p in pending]
            headers, pending = cells, []
    if headers is None and pending:  # a one-column sheet: its first row holds the header
        (_, headers), rest = pending[0], pending[1:]
        for number, cells in rest:
            data_row(number, cells)
    if headers is None:
        return []
    head = [*titles]
    if not ranges:  # nothing but headers: they are the sheet's text
        head.append(" | ".join(h for h in headers if h))
    if len(ranges) <= 1:
        lines = head + (ranges[0].lines if ranges else [])
        return [Section("\n".join(lines), path, anchor)]
    out = []
    for n, r in enumerate(ranges):
        rows_anchor = f"rows={r.first}-{r.last}"
        text = "\n".join((head if n == 0 else []) + r.lines)
        out.append(Section(text, path, f"{anchor}&{rows_anchor}" if anchor else rows_anchor))
    return out
