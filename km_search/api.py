"""The HTTP layer: thin routes over SearchService, pydantic models only here, one error shape."""


import logging
import time
from contextlib import asynccontextmanager
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException

from km_search import __version__
from km_search.auth import Authenticator, Reader
from km_search.browser import add_browser_routes
from km_search.live import SnapshotFollower
from km_search.documents import viewer_url
from km_search.errors import KmError
from km_search.search.filters import make_filters
from km_search.security import SecurityMiddleware
from km_search.service import SearchService
from km_search.upload_routes import add_upload_routes
from km_search.settings import Settings, get_settings
from km_search.types import Expert, Hit, SearchFilters

log = logging.getLogger("km_search.api")


class HitOut(BaseModel):
    text: str
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
        )


class SearchOut(BaseModel):
    query: str
    hits: list[HitOut]
    k: int
    offset: int
    took_ms: float
    query_id: str | None = Field(None, description="Refer to this query in POST /feedback (null when the log is off).")


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
                                  doc_id=e.doc_id, score=e.score) for e in expert.evidence],
        )


class ExpertsOut(BaseModel):
    query: str
    took_ms: float
    experts: list[ExpertOut]


def search_filters(
    type: Annotated[list[str] | None, Query(description="Document type: decision, lesson, howto, policy, meeting, "
                                            "other. Repeat (or comma-separate) for any of several.")] = None,
    project: Annotated[list[str] | None, Query(description="Project, case-insensitive; repeatable.")] = None,
    author: Annotated[list[str] | None, Query(description="Part of an author's or git contributor's name or "
                                              "email, case- and accent-insensitive; repeatable.")] = None,
    tag: Annotated[list[str] | None, Query(description="A tag, case-insensitive; repeatable.")] = None,
    path: Annotated[list[str] | None, Query(description="Document path prefix ('billing/decisions/'); repeatable.")] = None,
    modified_after: Annotated[str | None, Query(description="YYYY-MM-DD, inclusive: documents last modified "
                                                "(else created) on or after this day.")] = None,
    modified_before: Annotated[str | None, Query(description="YYYY-MM-DD, inclusive.")] = None,
) -> SearchFilters:
    """The filters every retrieval route takes; bad dates are a 422 with the one error shape."""
    return make_filters(type, project, author, tag, path, modified_after, modified_before)


Filters = Annotated[SearchFilters, Depends(search_filters)]


class ErrorOut(BaseModel):
    ok: bool = False
    status: int
    error: str


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(ErrorOut(status=status, error=message).model_dump(), status_code=status)


def create_app(settings: Settings | None = None, service: SearchService | None = None) -> FastAPI:
    settings = settings or get_settings()
    service = service or SearchService(settings)
    auth = Authenticator(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        auth.announce()
        try:
            await run_in_threadpool(service.load)
            log.info("serving index '%s' snapshot %s", service.index, service.retriever.snapshot.snapshot_id)
        except KmError as exc:  # serve anyway: /healthz and /search explain what is missing
            log.error("%s", exc)
        follower = SnapshotFollower(service, settings.reload_interval_s).start()
        yield
        follower.stop()
        service.close()

    app = FastAPI(
        title="km-search",
        version=__version__,
        description="Semantic search and question answering over your organization's documents.",
        lifespan=lifespan,
        responses={422: {"model": ErrorOut}, 503: {"model": ErrorOut}},
    )
    app.state.service = service
    app.state.auth = auth  # read by the auth dependencies (auth.require_reader / require_admin)
    app.add_middleware(SecurityMiddleware, settings=settings)

    @app.exception_handler(KmError)
    async def km_error(request: Request, exc: KmError) -> JSONResponse:
        return _error(exc.status_code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in exc.errors()
        )
        return _error(422, f"invalid request: {problems}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = _error(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})  # WWW-Authenticate on 401, Retry-After on 429
        return response

    @app.get("/healthz", response_model=HealthOut)
    def healthz() -> HealthOut:
        """200 once the index is loaded and queries can be answered, 503 with the reason otherwise."""
        snapshot = service.retriever.snapshot
        return HealthOut(status="ok", index=service.index, snapshot=snapshot.snapshot_id)

    @app.get("/search", response_model=SearchOut)
    def search(
        principal: Reader,
        q: Annotated[str, Query(description="The question or keywords.", max_length=settings.max_query_chars)],
        k: Annotated[int, Query(ge=1, le=settings.max_k, description="How many passages to return.")] = 10,
        offset: Annotated[int, Query(ge=0, le=10_000, description="Skip this many passages (paging).")] = 0,
        mode: Annotated[Literal["hybrid", "dense", "lexical"], Query(description="Retrieval mode.")] = "hybrid",
        filters: Filters = SearchFilters(),
    ) -> SearchOut:
        result = service.search(q, k=k, offset=offset, mode=mode, filters=filters, principal=principal)
        return SearchOut(query=q, hits=[HitOut.of(h) for h in result.hits], k=k, offset=offset, took_ms=result.took_ms,
                         query_id=result.query_id)

    @app.get("/experts", response_model=ExpertsOut)
    def experts(
        principal: Reader,
        q: Annotated[str, Query(description="The topic.", max_length=settings.max_query_chars)],
        k: Annotated[int, Query(ge=1, le=settings.max_k, description="How many people to return.")] = 5,
        filters: Filters = SearchFilters(),
    ) -> ExpertsOut:
        """Who knows about the topic: people ranked by the relevant material they authored or changed,
        recent work counting more, each with the documents and passages that make them an expert."""
        started = time.perf_counter()
        found = service.experts(q, k=k, filters=filters, principal=principal)
        took = round((time.perf_counter() - started) * 1000, 2)
        return ExpertsOut(query=q, took_ms=took, experts=[ExpertOut.of(e) for e in found])

    def records_route(doc_type: str, plural: str):
        def route(
            principal: Reader,
            q: Annotated[str, Query(description="What the records should be about.", max_length=settings.max_query_chars)],
            k: Annotated[int, Query(ge=1, le=settings.max_k, description="How many records to return.")] = 10,
            filters: Filters = SearchFilters(),
            ) -> dict:
            started = time.perf_counter()
            hits = service.records(q, doc_type, k=k, filters=filters, principal=principal)
            took = round((time.perf_counter() - started) * 1000, 2)
            return {"query": q, "took_ms": took, plural: [RecordOut.of(h) for h in hits]}

        route.__doc__ = (f"The {plural} (documents of type '{doc_type}') that best match the query, one entry per "
                         f"document with its title, date, project and status; the type filter is fixed, the others apply.")
        return route

    app.get("/decisions", response_model=create_model("DecisionsOut", query=(str, ...), took_ms=(float, ...),
                                                      decisions=(list[RecordOut], ...)))(records_route("decision", "decisions"))
    app.get("/lessons", response_model=create_model("LessonsOut", query=(str, ...), took_ms=(float, ...),
                                                    lessons=(list[RecordOut], ...)))(records_route("lesson", "lessons"))

    @app.get("/stats", response_model=StatsOut)
    def stats(principal: Reader) -> StatsOut:
        """What the index holds; `documents` and `chunks` count only what the caller may read."""
        return StatsOut(**service.stats(principal))

    add_browser_routes(app, settings, service)
    add_upload_routes(app, settings, service)
    from km_search.answer_routes import add_answer_routes  # here: it imports this module's models

    add_answer_routes(app, settings, service)
    return app
