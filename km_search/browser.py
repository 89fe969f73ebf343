"""What browsers get beyond the JSON API: the search page, the widget script, the source viewer, CORS.

The page and the widget are static files in km_search/web/ (no build step, no CDN, no inline
script, so a strict Content-Security-Policy holds); both call the JSON API like any other client.
CORS answers only the origins in KM_CORS_ORIGINS: any other origin gets no CORS headers, so a
browser refuses to hand that page the API's answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Path as PathParam, Query
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from km_search.auth import Reader
from km_search.documents import render
from km_search.service import SearchService
from km_search.settings import Settings

WEB = Path(__file__).with_name("web")

_COMMON = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
PAGE_HEADERS = {
    **_COMMON,
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'",
    "X-Frame-Options": "SAMEORIGIN",  # frame-ancestors for old browsers: no clickjacking from other sites
}
VIEWER_HEADERS = {
    **_COMMON,
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'",
    "X-Frame-Options": "SAMEORIGIN",
}
# An indexed HTML page is someone else's markup: sandboxed, it runs no script and has no origin of ours.
ORIGINAL_HTML_HEADERS = {
    **_COMMON,
    "Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:",
}


def add_browser_routes(app: FastAPI, settings: Settings, service: SearchService) -> None:
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Authorization"],  # the widget's `api-key` travels as a Bearer token
            max_age=600,
        )
    app.mount("/static", StaticFiles(directory=WEB), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        """The search page."""
        return FileResponse(WEB / "index.html", headers=PAGE_HEADERS)

    @app.get("/widget.js", include_in_schema=False)
    def widget() -> FileResponse:
        """The embeddable <km-search> element; a classic script, so any page may load it."""
        return FileResponse(
            WEB / "widget.js", media_type="text/javascript; charset=utf-8",
            headers={**_COMMON, "Cache-Control": "public, max-age=300"},
        )

    @app.get("/documents/{doc_id}", response_class=Response, responses={
        200: {"description": "The original file (PDF, HTML) or an HTML text rendering (Markdown, Word, text).",
              "content": {"text/html": {}, "application/pdf": {}}},
        404: {"description": "No such document in the published snapshot, or not one the caller may read."},
    })
    def document(
        principal: Reader,
        doc_id: Annotated[int, PathParam(ge=1, le=2**62, description="`doc_id` of a hit.")],
        download: Annotated[bool, Query(description="Send the original file as an attachment.")] = False,
    ) -> Response:
        """The source viewer: a hit's `url` (`/documents/{doc_id}#anchor` or `#page=N`) lands on its page or heading."""
        doc = service.document(doc_id, principal)  # 404 alike for unknown and unreadable documents
        if download:
            return FileResponse(doc.abs_path, filename=doc.abs_path.name, headers=_COMMON)
        if doc.media_type is not None:
            headers = ORIGINAL_HTML_HEADERS if doc.format == "html" else _COMMON
            return FileResponse(doc.abs_path, media_type=doc.media_type, headers=headers,
                                filename=doc.abs_path.name, content_disposition_type="inline")
        return HTMLResponse(render(doc), headers=VIEWER_HEADERS)
