"""The HTTP app: one router per area over SearchService, one error shape for every failure."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from km_search import __version__
from km_search.errors import KmError
from km_search.http.auth import Authenticator
from km_search.http.live import SnapshotFollower
from km_search.http.routes import answers, documents, search, web
from km_search.http.schemas import ErrorOut
from km_search.http.security import SecurityMiddleware
from km_search.service import SearchService
from km_search.settings import Settings, get_settings, offline_environment, serving_environment

log = logging.getLogger("km_search.api")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(ErrorOut(status=status, error=message).model_dump(), status_code=status)


def create_app(settings: Settings | None = None, service: SearchService | None = None) -> FastAPI:
    offline_environment()
    serving_environment()
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
    app.state.auth = auth  # read by the Reader and Admin dependencies (deps.py)
    app.add_middleware(SecurityMiddleware, settings=settings)
    if settings.cors_origins:  # only these origins get CORS headers; browsers refuse the API to any other page
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Authorization"],  # the widget's `api-key` travels as a Bearer token
            max_age=600,
        )

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

    app.include_router(search.router(settings, service))
    app.include_router(answers.router(settings, service))
    app.include_router(documents.router(settings, service))
    app.include_router(web.router())
    app.mount("/static", StaticFiles(directory=web.WEB), name="static")
    return app
