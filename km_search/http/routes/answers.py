"""Answer routes: GET /ask, GET /ask/stream, POST /feedback, GET /analytics/gaps."""


import json
from typing import Annotated, Iterator, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from km_search.http.deps import Admin, Filters, Reader
from km_search.http.schemas import AskOut, FeedbackIn, FeedbackOut, GapsOut, HitOut
from km_search.service import SearchService
from km_search.settings import Settings
from km_search.types import SearchFilters


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def router(settings: Settings, service: SearchService) -> APIRouter:
    api = APIRouter()
    Q = Annotated[str, Query(description="The question.", max_length=settings.max_query_chars)]
    K = Annotated[int, Query(ge=1, le=settings.max_k, description="How many passages to return; the answer "
                             "quotes the first KM_ANSWER_PASSAGES of them.")]
    ModeQ = Annotated[Literal["hybrid", "dense", "lexical"], Query(description="Retrieval mode.")]

    @api.get("/ask", response_model=AskOut)
    def ask(principal: Reader, q: Q, k: K = 5, mode: ModeQ = "hybrid", filters: Filters = SearchFilters()) -> AskOut:
        """A direct answer quoted from the documents with its citations, or `answer: null` when the
        passages do not answer the question well; the closest passages are in `hits` either way."""
        return AskOut.of(service.ask(q, k=k, mode=mode, filters=filters, principal=principal))

    @api.get("/ask/stream", response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
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

    @api.post("/feedback", response_model=FeedbackOut)
    def feedback(principal: Reader, body: FeedbackIn) -> FeedbackOut:
        """Was an answer or a passage helpful? Stored in the query log and shown in the gaps report."""
        return FeedbackOut(feedback_id=service.feedback(body.query_id, body.helpful, body.target, body.source,
                                                        body.chunk_id, body.comment))

    @api.get("/analytics/gaps", response_model=GapsOut)
    def gaps(
        principal: Admin,
        days: Annotated[float | None, Query(gt=0, le=36_500, description="Only queries of the last N days.")] = None,
        limit: Annotated[int, Query(ge=1, le=500, description="Most topics to list.")] = 20,
    ) -> GapsOut:
        """Knowledge gaps: questions that went unanswered, scored low or were marked unhelpful, grouped
        by meaning into topics with counts. Admins only: the questions are everyone's."""
        return GapsOut.of(service.gaps(days=days, limit=limit))

    return api
