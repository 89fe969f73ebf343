"""The HTTP layer: thin routes over SearchService, pydantic models only here, one error shape."""


import logging
from contextlib import asynccontextmanager
from typing import Annotated, Literal

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__
from .errors import KmError
from .service import SearchService
from .settings import Settings, get_settings
from .types import Hit

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

    @classmethod
    def of(cls, hit: Hit) -> "HitOut":
        return cls(
            text=hit.text, source=hit.source, title=hit.title, score=hit.score,
            heading_path=list(hit.heading_path), snippet=hit.snippet, doc_path=hit.doc_path,
            page=hit.page, chunk_id=hit.chunk_id, type=hit.meta.doc_type, project=hit.meta.project,
            authors=list(hit.meta.authors), modified=hit.meta.modified or hit.meta.created,
            dense_score=hit.dense_score, lexical_score=hit.lexical_score,
        )


class SearchOut(BaseModel):
    query: str
    hits: list[HitOut]
    k: int
    offset: int
    took_ms: float


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


class ErrorOut(BaseModel):
    ok: bool = False
    status: int
    error: str


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(ErrorOut(status=status, error=message).model_dump(), status_code=status)


def create_app(settings: Settings | None = None, service: SearchService | None = None) -> FastAPI:
    settings = settings or get_settings()
    service = service or SearchService(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            await run_in_threadpool(service.load)
            log.info("serving index '%s' snapshot %s", service.index, service.retriever.snapshot.snapshot_id)
        except KmError as exc:  # serve anyway: /healthz and /search explain what is missing
            log.error("%s", exc)
        yield

    app = FastAPI(
        title="km-search",
        version=__version__,
        description="Semantic search and question answering over your organization's documents.",
        lifespan=lifespan,
        responses={422: {"model": ErrorOut}, 503: {"model": ErrorOut}},
    )
    app.state.service = service

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
        return _error(exc.status_code, str(exc.detail))

    @app.get("/healthz", response_model=HealthOut)
    def healthz() -> HealthOut:
        """200 once the index is loaded and queries can be answered, 503 with the reason otherwise."""
        snapshot = service.retriever.snapshot
        return HealthOut(status="ok", index=service.index, snapshot=snapshot.snapshot_id)

    @app.get("/search", response_model=SearchOut)
    def search(
        q: Annotated[str, Query(description="The question or keywords.", max_length=settings.max_query_chars)],
        k: Annotated[int, Query(ge=1, le=settings.max_k, description="How many passages to return.")] = 10,
        offset: Annotated[int, Query(ge=0, le=10_000, description="Skip this many passages (paging).")] = 0,
        mode: Annotated[Literal["hybrid", "dense", "lexical"], Query(description="Retrieval mode.")] = "hybrid",
    ) -> SearchOut:
        result = service.search(q, k=k, offset=offset, mode=mode)
        return SearchOut(query=q, hits=[HitOut.of(h) for h in result.hits], k=k, offset=offset, took_ms=result.took_ms)

    @app.get("/stats", response_model=StatsOut)
    def stats() -> StatsOut:
        return StatsOut(**service.stats())

    return app
