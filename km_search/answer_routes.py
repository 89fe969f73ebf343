"""HTTP routes for answers, feedback and knowledge gaps: GET /ask, GET /ask/stream, POST /feedback,
GET /analytics/gaps. Thin over SearchService like the rest of api.py, which mounts them."""


import json
from typing import Annotated, Iterator, Literal

from fastapi import FastAPI, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from km_search.api import Filters, HitOut
from km_search.auth import Admin, Reader
from km_search.documents import viewer_url
from km_search.service import SearchService
from km_search.settings import Settings
from km_search.types import AskResult, Citation, GapReport, SearchFilters


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
    citations: list[CitationOut]
    hits: list[HitOut]
    took_ms: float

    @classmethod
    def of(cls, result: AskResult) -> "AskOut":
        a = result.answer
        return cls(query=result.query, query_id=result.query_id, answer=a.text, answered=a.answered,
                   confidence=a.confidence, kind=a.kind, note=a.note,  # type: ignore[arg-type]
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
                                       negative_feedback=t.negative_feedback, comments=list(t.comments))
                           for t in report.topics])


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def add_answer_routes(app: FastAPI, settings: Settings, service: SearchService) -> None:
    Q = Annotated[str, Query(description="The question.", max_length=settings.max_query_chars)]
    K = Annotated[int, Query(ge=1, le=settings.max_k, description="How many passages to return; the answer "
                             "quotes the first KM_ANSWER_PASSAGES of them.")]
    ModeQ = Annotated[Literal["hybrid", "dense", "lexical"], Query(description="Retrieval mode.")]

    @app.get("/ask", response_model=AskOut)
    def ask(principal: Reader, q: Q, k: K = 5, mode: ModeQ = "hybrid", filters: Filters = SearchFilters()) -> AskOut:
        """A direct answer quoted from the documents with its citations, or `answer: null` when the
        passages do not answer the question well; the closest passages are in `hits` either way."""
        return AskOut.of(service.ask(q, k=k, mode=mode, filters=filters, principal=principal))

    @app.get("/ask/stream", response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
    def ask_stream(
        principal: Reader, q: Q, k: K = 5, mode: ModeQ = "hybrid", filters: Filters = SearchFilters()
    ) -> StreamingResponse:
        """Server-sent events: `hits` (the passages), `delta` (text as the language model writes it,
        when KM_LLM_URL is set), then `answer` (the /ask response, whose checked answer replaces the
        streamed text). A bad request is a plain 422 before the stream starts."""
        events = service.ask_stream(q, k=k, mode=mode, filters=filters, principal=principal)

        def body() -> Iterator[str]:
            for event, payload in events:
                if event == "hits":
                    yield _sse("hits", {"hits": [HitOut.of(h).model_dump() for h in payload]})  # type: ignore[union-attr]
                elif event == "delta":
                    yield _sse("delta", {"text": payload})
                else:
                    yield _sse("answer", AskOut.of(payload).model_dump())  # type: ignore[arg-type]

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/feedback", response_model=FeedbackOut)
    def feedback(principal: Reader, body: FeedbackIn) -> FeedbackOut:
        """Was an answer or a passage helpful? Stored in the query log and shown in the gaps report."""
        return FeedbackOut(feedback_id=service.feedback(body.query_id, body.helpful, body.target, body.source,
                                                        body.chunk_id, body.comment))

    @app.get("/analytics/gaps", response_model=GapsOut)
    def gaps(
        principal: Admin,
        days: Annotated[float | None, Query(gt=0, le=36_500, description="Only queries of the last N days.")] = None,
        limit: Annotated[int, Query(ge=1, le=500, description="Most topics to list.")] = 20,
    ) -> GapsOut:
        """Knowledge gaps: questions that went unanswered, scored low or were marked unhelpful, grouped
        by meaning into topics with counts. Admins only: the questions are everyone's."""
        return GapsOut.of(service.gaps(days=days, limit=limit))

