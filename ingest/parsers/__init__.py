"""One parser per file format behind one interface: `parse(path, rel_path) -> Document`.

A parser raises km_search.errors.ParseError with a human-readable reason for a file it cannot read;
the pipeline records that reason in the ingest report and carries on with the other files.
Adding a format = one module with EXTENSIONS and parse(), registered in PARSERS below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from km_search.types import Document

from . import docx, html, markdown, pdf, text
from . import epub, erb, mail, mdx, rtf
from . import csv, odf, pptx, xlsx
from . import asciidoc, rst

Parser = Callable[[Path, str], Document]

PARSERS: dict[str, Parser] = {}
for _module in (pdf, docx, markdown, html, text, mdx, erb, rtf, epub, mail, pptx, xlsx, csv, odf, rst, asciidoc):
    for _ext in _module.EXTENSIONS:
        PARSERS[_ext] = _module.parse


def parser_for(path: Path) -> Parser | None:
    """The parser of the longest registered suffix: 'guide.html.md.erb' is an ERB template, 'a.erb' nothing."""
    suffixes = [s.lower() for s in path.suffixes]
    for k in range(min(3, len(suffixes)), 0, -1):
        parser = PARSERS.get("".join(suffixes[-k:]))
        if parser is not None:
            return parser
    return None


def parse_file(path: Path, rel_path: str, max_pages: int | None = None) -> Document:
    """The file's Document; a PDF with more than `max_pages` pages is refused before it is read."""
    parser = parser_for(path)
    if parser is None:
        from km_search.errors import ParseError

        raise ParseError(f"unsupported file type '{path.suffix}'")
    if parser is pdf.parse:
        return pdf.parse(path, rel_path, max_pages=max_pages)
    return parser(path, rel_path)
