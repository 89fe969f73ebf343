"""Every request and response model of the HTTP API (pydantic lives here and nowhere in the core),
each built from a core record by its `of()`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from km_search.index.documents import viewer_url
from km_search.types import AskResult, Citation, DocumentGroup, Expert, GapReport, Hit


class PartOut(BaseModel):
    """One section of a passage that joins several short ones."""

    offset: int = Field(description="Where the part begins in the passage's text (characters).")
    source: str = Field(description="The part's own deep link.")
    heading_path: list[str]
    page: int | None = None


class HitOut(BaseModel):
    text: str = Field(description="The passage, one line per paragraph, list item or table row of its section.")
    source: str
    title: str
    score: float
    heading_path: list[str]
    snippet: str
    doc_path: str
    page: int | None
    chunk_id: int
    type: str | None
    project: str | None
    authors: list[str]
    modified: str | None
    dense_score: float | None
    lexical_score: float | None
    doc_id: int | None = None
    url: str | None = Field(None, description="The source viewer's link: /documents/{doc_id} plus the deep "
                            "link's #anchor or #page=N, relative to the API's base URL.")
    status: str | None = Field(None, description="Status the document declares (a decision's Accepted, Superseded…).")
    created: str | None = None
    tags: list[str] = []
    parts: list[PartOut] = Field([], description="A passage joining several short sections (a decision record's "
                                 "Status, Context, Decision): each one's offset in `text` and deep link; empty for "
                                 "a passage of one section. `source` is the part the query matched best.")

    @classmethod
    def of(cls, hit: Hit) -> "HitOut":
        return cls(
            text=hit.text, source=hit.source, title=hit.title, score=hit.score,
            heading_path=list(hit.heading_path), snippet=hit.snippet, doc_path=hit.doc_path,
            page=hit.page, chunk_id=hit.chunk_id, type=hit.meta.doc_type, project=hit.meta.project,
            authors=list(hit.meta.authors), modified=hit.meta.modified or hit.meta.created,
            dense_score=hit.dense_score, lexical_score=hit.lexical_score,
            doc_id=hit.doc_id, url=viewer_url(hit.doc_id, hit.source),
            status=hit.meta.status, created=hit.meta.created, tags=list(hit.meta.tags),
            parts=[PartOut(**p.as_json()) for p in hit.parts],
        )


class GroupOut(BaseModel):
    """One document of a grouped search (GET /search?group=document)."""

    doc_id: int | None
    doc_path: str
    title: str
    best: HitOut = Field(description="The document's best passage for the query.")
    more: list[HitOut] = Field(description="Its other passages among the results, best first (at most 3).")

    @classmethod
    def of(cls, group: DocumentGroup) -> "GroupOut":
        return cls(doc_id=group.doc_id, doc_path=group.doc_path, title=group.title, best=HitOut.of(group.best),
                   more=[HitOut.of(h) for h in group.more])


class SearchOut(BaseModel):
    query: str
    hits: list[HitOut] = Field(description="The passages; grouped by document, each group's best passage.")
    k: int
    offset: int
    took_ms: float
    query_id: str | None = Field(None, description="Refer to this query in POST /feedback (null when the log is off).")
    groups: list[GroupOut] | None = Field(None, description="With group=document: one entry per document, "
                                          "k and offset counting documents; null otherwise.")


class HealthOut(BaseModel):
    status: str
    index: str
    snapshot: str


class StatsOut(BaseModel):
    index: str
    snapshot: str
    created: str
    documents: int
    chunks: int
    model: dict
    chunking: dict
    shards: int


class RecordOut(BaseModel):
    """One decision record or lesson, shown by its best passage for the query."""

    title: str
    date: str | None = Field(description="When it was decided or written (created, else modified), YYYY-MM-DD.")
    project: str | None
    status: str | None = Field(description="As declared or read from its Status section: Accepted, Superseded…")
    superseded_by: str | None = Field(None, description="The record that replaces this one, when it says so.")
    supersedes: str | None = None
    authors: list[str]
    tags: list[str]
    type: str | None
    source: str
    url: str | None
    doc_id: int | None
    doc_path: str
    text: str
    snippet: str
    score: float

    @classmethod
    def of(cls, hit: Hit) -> "RecordOut":
        m = hit.meta
        return cls(
            title=hit.title, date=m.created or m.modified, project=m.project, status=m.status,
            superseded_by=m.extra.get("superseded_by"), supersedes=m.extra.get("supersedes"),
            authors=list(m.authors), tags=list(m.tags), type=m.doc_type, source=hit.source,
            url=viewer_url(hit.doc_id, hit.source), doc_id=hit.doc_id, doc_path=hit.doc_path,
            text=hit.text, snippet=hit.snippet, score=hit.score,
        )


class EvidenceOut(BaseModel):
    source: str
    title: str
    text: str
    url: str | None
    doc_id: int
    score: float = Field(description="What this document added to the person's score.")
    role: str = Field("author", description="'author': a declared author of the document; 'edited': only git commits to it.")


class ExpertOut(BaseModel):
    name: str
    email: str | None
    score: float = Field(description="Relevance of what they authored or changed, weighted by recency "
                         "(docs/experts.md); comparable within one answer only.")
    documents: int = Field(description="Relevant documents they authored or changed.")
    last_date: str | None = Field(description="Their most recent involvement among those documents.")
    evidence: list[EvidenceOut]

    @classmethod
    def of(cls, expert: Expert) -> "ExpertOut":
        return cls(
            name=expert.name, email=expert.email, score=expert.score, documents=expert.documents,
            last_date=expert.last_date,
            evidence=[EvidenceOut(source=e.source, title=e.title, text=e.text, url=viewer_url(e.doc_id, e.source),
                                  doc_id=e.doc_id, score=e.score, role=e.role) for e in expert.evidence],
        )


class ExpertsOut(BaseModel):
    query: str
    took_ms: float
    experts: list[ExpertOut]


class CitationOut(BaseModel):
    ref: int = Field(description="1-based number of the hit quoted: hits[ref - 1]; a generated answer cites it as [ref].")
    source: str = Field(description="The deep link of the passage: file path plus #anchor or #page=N.")
    title: str
    text: str = Field(description="The quoted span: exactly hits[ref - 1].text[start:end].")
    start: int
    end: int
    chunk_id: int
    doc_id: int | None = None
    url: str | None = Field(None, description="The source viewer's link to the passage's document and anchor.")

    @classmethod
    def of(cls, c: Citation) -> "CitationOut":
        return cls(ref=c.ref, source=c.source, title=c.title, text=c.text, start=c.start, end=c.end,
                   chunk_id=c.chunk_id, doc_id=c.doc_id, url=viewer_url(c.doc_id, c.source))


class AskOut(BaseModel):
    query: str
    query_id: str | None = Field(None, description="Refer to this query in POST /feedback (null when the log is off).")
    answer: str | None = Field(description="The answer, or null when the documents do not answer the question well.")
    answered: bool
    confidence: float = Field(ge=0, le=1, description="How strongly the passages support an answer (0..1).")
    kind: Literal["extractive", "generative", "none"]
    note: str | None = Field(None, description="Why there is no answer, or why the generative answer is not shown.")
    missing_terms: list[str] = Field(default_factory=list, description="The question's specific terms (names, "
                                     "products, versions, identifiers, words the documents never use) that the "
                                     "quoted passage lacks; each lowers the confidence (docs/answers.md).")
    citations: list[CitationOut]
    hits: list[HitOut]
    took_ms: float

    @classmethod
    def of(cls, result: AskResult) -> "AskOut":
        a = result.answer
        return cls(query=result.query, query_id=result.query_id, answer=a.text, answered=a.answered,
                   confidence=a.confidence, kind=a.kind, note=a.note, missing_terms=list(a.missing_terms),  # type: ignore[arg-type]
                   citations=[CitationOut.of(c) for c in a.citations], hits=[HitOut.of(h) for h in result.hits],
                   took_ms=result.took_ms)


class FeedbackIn(BaseModel):
    query_id: str = Field(min_length=1, max_length=64, description="The query_id of a /search or /ask response.")
    helpful: bool
    target: Literal["answer", "passage"] = "answer"
    source: str | None = Field(None, max_length=2000, description="For passage feedback: the hit's source.")
    chunk_id: int | None = Field(None, description="For passage feedback: the hit's chunk_id.")
    comment: str | None = Field(None, max_length=2000)


class FeedbackOut(BaseModel):
    ok: bool = True
    feedback_id: int


class GapTopicOut(BaseModel):
    question: str = Field(description="The topic's representative question.")
    count: int
    queries: list[str]
    last_seen: str
    abstained: int
    low_score: int
    negative_feedback: int
    comments: list[str]
    reasons: list[str] = Field(default_factory=list, description="Why its questions went unanswered, most often "
                               "first: what the closest passage lacked (\"the documents never mention iPad\", "
                               "\"the closest passage gives no amount\").")


class GapsOut(BaseModel):
    totals: dict[str, int]
    min_confidence: float
    days: float | None
    topics: list[GapTopicOut]

    @classmethod
    def of(cls, report: GapReport) -> "GapsOut":
        return cls(totals=report.totals, min_confidence=report.min_confidence, days=report.days,
                   topics=[GapTopicOut(question=t.question, count=t.count, queries=list(t.queries),
                                       last_seen=t.last_seen, abstained=t.abstained, low_score=t.low_score,
                                       negative_feedback=t.negative_feedback, comments=list(t.comments),
                                       reasons=list(t.reasons))
                           for t in report.topics])


class DocumentChangeOut(BaseModel):
    ok: bool = True
    doc_id: int | None = Field(None, description="The uploaded document's id (for /documents/{id} and DELETE).")
    path: str = Field(description="The document's path in the index.")
    snapshot: str | None = Field(description="The snapshot that now serves, with the change.")
    documents: int = Field(description="Documents in that snapshot.")
    chunks: int = Field(description="Passages in that snapshot.")
    embedded_chunks: int = Field(description="Passages embedded for this change.")


class ErrorOut(BaseModel):
    ok: bool = False
    status: int
    error: str
