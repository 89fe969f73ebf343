"""CSV (.csv, .tsv): the rows under their column headers, as for an Excel sheet.

The delimiter (',', ';', tab or '|') is sniffed from the start of the file (a .tsv is tab-separated). A file
that fits one section links to itself (`data.csv`); a long one is cut into row ranges,
`data.csv#rows=2-41`, counting records as a spreadsheet program shows them (the header is row 1).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

from km_search.errors import ParseError
from km_search.types import Document, DocumentMeta

from ._common import EMPTY_FILE, decode_text, read_bytes
from ._office import row_sections


_SAMPLE_CHARS = 64 * 1024  # enough records to sniff, quickly
_DELIMITERS = ",;\t|"


def parse(path: Path, rel_path: str) -> Document:
    text = decode_text(read_bytes(path))
    dialect = sniff(text[:_SAMPLE_CHARS], tab=path.suffix.lower() == ".tsv")
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        sections = row_sections(enumerate(reader, start=1), (), None)
    except csv.Error as exc:
        raise ParseError(f"not a valid CSV file: record {reader.line_num}: {exc}") from exc
    if not sections:
        raise ParseError(EMPTY_FILE)
    return Document(path=rel_path, format="csv", sections=tuple(sections), meta=DocumentMeta(title=path.stem))


def sniff(sample: str, tab: bool) -> type[csv.Dialect]:
    """The delimiter that cuts the sample's records into the same number (> 1) of fields most often.

    Records are read as csv reads them, so delimiters inside quoted fields (a comma in a sentence,
    a quoted line break) do not count; the stdlib Sniffer counts raw characters and is misled by them.
    Ties go to the first of ',', ';', tab, '|'; a sample that no delimiter cuts is one column.
    """
    if tab:
        return csv.excel_tab
    best, best_score = ",", (0.0, 0)
    for delimiter in _DELIMITERS:
        try:
            records = [r for r in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter) if r]
        except csv.Error:
            continue
        records = records[:-1] if len(records) > 1 else records  # the last may be cut off by the sample
        widths = Counter(len(r) for r in records)
        if not widths:
            continue
        width, count = widths.most_common(1)[0]
        score = (count / len(records), width) if width > 1 else (0.0, 0)
        if score > best_score:
            best, best_score = delimiter, score
    return type("Sniffed", (csv.excel,), {"delimiter": best})
