"""Small immutable records passed between the pure parts of the pipeline.

Parsers make Documents, chunking turns them into Chunks, retrieval returns Hits. Pydantic models
exist only at the HTTP edge (http/schemas.py); everything in the core speaks these dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Sequence


@dataclass(frozen=True)
class Contributor:
    """Someone who changed a file, from its git history: `commits` to it, the date of the latest one."""

    name: str
    email: str
    commits: int = 1
    last_date: str | None = None


@dataclass(frozen=True)
class DocumentMeta:
    """What we know about a document beyond its text. Dates are ISO-8601 strings ('2024-03-01').

    `authors` are the declared ones ('Name <email>' or either part); `contributors` come from git
    and are stored in the snapshot's people table, not read back with hits.
    """

    title: str = ""
    authors: tuple[str, ...] = ()
    created: str | None = None
    modified: str | None = None
    project: str | None = None
    doc_type: str | None = None
    tags: tuple[str, ...] = ()
    status: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    contributors: tuple[Contributor, ...] = ()
    groups: tuple[str, ...] = ("public",)  # who may read it (access control); "public": everyone


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
class Part:
    """One section of a passage that joins several short ones: where it begins in the passage's
    text, and its own deep link, so a hit or a quote links to the part it matched, not the largest."""

    offset: int
    source: str
    heading_path: tuple[str, ...] = ()
    page: int | None = None

    def as_json(self) -> dict:
        """The form stored with the passage and returned by the API and `km search --json`."""
        return {"offset": self.offset, "source": self.source, "heading_path": list(self.heading_path), "page": self.page}

    @classmethod
    def from_json(cls, value: dict) -> "Part":
        return cls(value["offset"], value["source"], tuple(value["heading_path"]), value["page"])


def part_at(parts: tuple[Part, ...], offset: int) -> Part | None:
    """The part holding this character of the passage's text; None for a passage of one section."""
    found = None
    for part in parts:
        if part.offset > offset:
            break
        found = part
    return found


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
    parts: tuple[Part, ...] = ()  # several short sections joined: each one's offset and link

    # What indexed_text puts before the text, recorded in a snapshot's manifest: changing it must change
    # this too, so the next ingest re-embeds every passage instead of mixing two kinds of vectors.
    EMBEDDED_CONTEXT: ClassVar[str] = "title > heading"

    def indexed_text(self) -> str:
        """What the embedder reads (indexed_text below)."""
        return indexed_text(self.title, self.heading_path, self.text)


def indexed_text(title: str, heading_path: Sequence[str], text: str) -> str:
    """What the embedder (and a reranker) reads: the document's title and the passage's own heading give
    its text context. Not the whole heading path (the lexical index has it): a manual's chapter >
    section > subsection took the model's tokens and made a document's passages alike (docs/quality.md)."""
    heading = [h for h in heading_path if h != title][-1:]
    return " > ".join(c for c in (title, *heading) if c) + "\n" + text


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
    doc_id: int | None = None  # the document's id in its snapshot: the source viewer's /documents/{doc_id}
    parts: tuple[Part, ...] = ()  # a passage of joined sections: each one's offset and link

    def source_at(self, offset: int) -> str:
        """The deep link of the part holding this character of `text` (a quote's start)."""
        part = part_at(self.parts, offset)
        return part.source if part else self.source


@dataclass(frozen=True)
class DocumentGroup:
    """One document of a grouped search: its best passage and its other passages among the results."""

    doc_id: int | None
    doc_path: str
    title: str
    best: Hit
    more: tuple[Hit, ...] = ()


@dataclass(frozen=True)
class SearchResult:
    hits: tuple[Hit, ...]
    took_ms: float
    query_id: str | None = None  # set when the query log recorded it; /feedback refers to it
    groups: tuple[DocumentGroup, ...] | None = None  # grouped by document (search(group=True)); else None


@dataclass(frozen=True)
class ExpertResult:
    experts: tuple["Expert", ...]
    took_ms: float


@dataclass(frozen=True)
class Citation:
    """A quoted span of one hit's passage: `text == hits[ref - 1].text[start:end]`.

    `ref` is the 1-based number of the hit, the `[n]` a generated answer cites.
    """

    ref: int
    chunk_id: int
    source: str
    title: str
    text: str
    start: int
    end: int
    doc_id: int | None = None


@dataclass(frozen=True)
class Answer:
    """A direct answer (`text`), or an abstention (`text is None`) that says why in `note`.

    `kind` is "extractive" (sentences quoted verbatim), "generative" (written by the language
    model, every sentence citing `[n]`) or "none" (abstained).
    """

    text: str | None
    confidence: float
    citations: tuple[Citation, ...] = ()
    kind: str = "extractive"
    note: str | None = None
    missing_terms: tuple[str, ...] = ()  # the question's specific terms the quoted passage lacks (answers/terms.py)
    reason: str | None = None  # why it abstained, when known: "the closest passage gives no amount"

    @property
    def answered(self) -> bool:
        return self.text is not None


@dataclass(frozen=True)
class AskResult:
    query: str
    answer: Answer
    hits: tuple[Hit, ...]
    took_ms: float
    query_id: str | None = None


@dataclass(frozen=True)
class GapTopic:
    """Questions the index could not answer well, grouped by meaning: a knowledge gap."""

    question: str  # the representative: the member closest to the topic's centre
    count: int  # logged queries in the topic, repeats included
    queries: tuple[str, ...]  # distinct example questions, most frequent first
    last_seen: str
    abstained: int  # asked and not answered
    low_score: int  # answered or searched, but with weak evidence
    negative_feedback: int
    comments: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()  # why its questions went unanswered ("the documents never mention iPad"), most often first


@dataclass(frozen=True)
class GapReport:
    """The knowledge-gaps report: totals over the window and the topics, biggest first."""

    totals: dict[str, int]
    topics: tuple[GapTopic, ...]
    min_confidence: float
    days: float | None = None


@dataclass(frozen=True)
class SearchFilters:
    """Restrictions applied inside retrieval, before top-k. Several values of one field are ORed,
    fields are ANDed. Types and tags match case-insensitively, `authors` as substrings of a
    person's name or email, `paths` as prefixes of the document path, dates inclusively against
    the document's modified date (its created date when it has none)."""

    types: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    modified_after: str | None = None
    modified_before: str | None = None
    # Access control (km_search/access/principals.py): the groups whose documents the reader may see; None: all.
    # Set by the service from the request's Principal, never from request parameters.
    groups: tuple[str, ...] | None = None

    def __bool__(self) -> bool:
        return any((self.types, self.projects, self.authors, self.tags, self.paths,
                    self.modified_after, self.modified_before)) or self.groups is not None


@dataclass(frozen=True)
class Evidence:
    """A document that makes someone an expert on a query, shown by its best passage."""

    doc_id: int
    source: str
    title: str
    text: str
    score: float  # what this document added to the person's score
    role: str = "author"  # "author" (declared in the document's metadata) or "edited" (git commits only)


@dataclass(frozen=True)
class Expert:
    """A person ranked for a query by the relevant material they authored or changed (docs/experts.md)."""

    name: str
    email: str | None
    score: float
    documents: int  # relevant documents they authored or changed
    last_date: str | None  # their most recent involvement among those documents
    evidence: tuple[Evidence, ...] = ()

