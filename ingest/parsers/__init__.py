"""One parser per file format behind one interface: `parse(path, rel_path) -> Document`.

A parser raises km_search.errors.ParseError with a human-readable reason for a file it cannot read;
the pipeline records that reason in the ingest report and carries on with the other files.
Adding a format = one module with parse(), its suffixes registered in PARSERS below.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from km_search.types import Document

Parser = Callable[[Path, str], Document]

# Each suffix and the module of this package that reads it. A module, with the library it needs
# (pypdf, python-docx, docutils ...), is imported when the first file of its kind is parsed, so
# finding files and starting `km ingest` loads none of them. Not .asc for AsciiDoc: that is mostly
# PGP signatures.
PARSERS: dict[str, str] = {
    ".pdf": "pdf", ".docx": "docx", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html",
    ".txt": "text", ".text": "text", ".mdx": "mdx", ".md.erb": "erb", ".html.md.erb": "erb", ".rtf": "rtf",
    ".epub": "epub", ".eml": "mail", ".mbox": "mail", ".pptx": "pptx", ".xlsx": "xlsx", ".xlsm": "xlsx",
    ".csv": "csv", ".tsv": "csv", ".odt": "odf", ".odp": "odf", ".ods": "odf", ".rst": "rst", ".rest": "rst",
    ".adoc": "asciidoc", ".asciidoc": "asciidoc",
}


def format_of(path: Path) -> str | None:
    """The parser module of the longest registered suffix: 'guide.html.md.erb' is an ERB template,
    'a.erb' nothing; None for a file km-search does not read."""
    suffixes = [s.lower() for s in path.suffixes]
    for k in range(min(3, len(suffixes)), 0, -1):
        name = PARSERS.get("".join(suffixes[-k:]))
        if name is not None:
            return name
    return None


def parser_for(path: Path) -> Parser | None:
    """The parse function for this file, importing its module on first use; None if unsupported."""
    name = format_of(path)
    return importlib.import_module(f"{__name__}.{name}").parse if name else None


def parse_file(path: Path, rel_path: str, max_pages: int | None = None) -> Document:
    """The file's Document; a PDF with more than `max_pages` pages is refused before it is read."""
    name = format_of(path)
    if name is None:
        from km_search.errors import ParseError

        raise ParseError(f"unsupported file type '{path.suffix}'")
    parse = importlib.import_module(f"{__name__}.{name}").parse
    return parse(path, rel_path, max_pages=max_pages) if name == "pdf" else parse(path, rel_path)
