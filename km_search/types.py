"""Small immutable records passed between the pure parts of the pipeline.

Parsers make Documents, chunking turns them into Chunks, retrieval returns Hits. Pydantic models
exist only at the HTTP edge (api.py); everything in the core speaks these dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DocumentMeta:
    """What we know about a document beyond its text. Dates are ISO-8601 strings ('2024-03-01')."""

    title: str = ""
    authors: tuple[str, ...] = ()
    created: str | None = None
    modified: str | None = None
    project: str | None = None
    doc_type: str | None = None
    tags: tuple[str, ...] = ()
    status: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Section:
    """A run of text under one heading (or one PDF page): the unit a deep link can point at.

    `heading_path` is the chain of headings from the top of the document down to this section,
    `anchor` the HTML/Markdown fragment id that lands on it, `page` the 1-based PDF page.
    """

    text: str
    heading_path: tuple[str, ...] = ()
    anchor: str | None = None
    page: int | None = None


@dataclass(frozen=True)
class Document:
    """A parsed file. `path` is relative to the ingested root, with forward slashes."""

    path: str
    format: str
    sections: tuple[Section, ...]
    meta: DocumentMeta = field(default_factory=DocumentMeta)

    @property
    def title(self) -> str:
        return self.meta.title or self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Chunk:
    """A passage of one section, the unit that is embedded, indexed and returned.

    `source` is the deep link: document path plus `#anchor` or `#page=N`.
    """

    doc_path: str
    ordinal: int
    text: str
    source: str
    title: str
    heading_path: tuple[str, ...] = ()
    page: int | None = None
    anchor: str | None = None

    def indexed_text(self) -> str:
        """What the embedder and the lexical index see: title and headings give the passage context."""
        context = [self.title, *[h for h in self.heading_path if h != self.title]]
        return " > ".join(c for c in context if c) + "\n" + self.text


@dataclass(frozen=True)
class Hit:
    """One ranked passage returned by retrieval."""

    chunk_id: int
    text: str
    source: str
    title: str
    score: float
    heading_path: tuple[str, ...] = ()
    snippet: str = ""
    doc_path: str = ""
    page: int | None = None
    meta: DocumentMeta = field(default_factory=DocumentMeta)
    dense_score: float | None = None
    lexical_score: float | None = None


@dataclass(frozen=True)
class SearchResult:
    hits: tuple[Hit, ...]
    total_candidates: int
    took_ms: float
