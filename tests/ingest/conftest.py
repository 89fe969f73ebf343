"""Real text for the parser tests: chapters of the Debian FAQ (HTML, from the debian-faq package, in
data/debian-faq/), and Markdown written from them, to build the test files of the other formats."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from ingest.parsers import parse_file
from km_search.types import Document

FAQ = Path(__file__).resolve().parent / "data" / "debian-faq"


def faq_html(name: str) -> Path:
    """A chapter of the Debian FAQ: 'basic-defs', 'pkgtools', 'kernel', 'support' or 'getting-debian'."""
    return FAQ / f"{name}.en.html"


def faq_chapter(name: str) -> Document:
    return parse_file(faq_html(name), f"{name}.en.html")


def markdown_of(doc: Document) -> str:
    """The chapter as Markdown: a heading per heading (level = depth), a paragraph per line."""
    out: list[str] = []
    path: tuple[str, ...] = ()
    for section in doc.sections:
        if section.heading_path != path:
            for level, heading in enumerate(section.heading_path, start=1):
                if section.heading_path[:level] != path[:level]:
                    out.append(f"{'#' * min(level, 6)} {heading}\n")
            path = section.heading_path
        out.extend(f"{line}\n" for line in section.text.split("\n"))
    return "\n".join(out)


@pytest.fixture(scope="session")
def real() -> SimpleNamespace:
    return SimpleNamespace(html=faq_html, chapter=faq_chapter, markdown=markdown_of)
