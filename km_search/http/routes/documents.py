"""Documents: the source viewer (GET /documents/{id}) and, for admins, adding and removing single
documents (POST /documents, DELETE /documents/{id}). Uploads run ingest/uploads.py, the same parse,
chunk and embed as `km ingest`; the new snapshot is served as soon as the request returns."""

from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from ingest.uploads import add_upload, delete_document
from km_search.access.principals import normalize_groups
from km_search.errors import BadQuery
from km_search.http.deps import Admin, Reader
from km_search.http.schemas import DocumentChangeOut
from km_search.http.security import COMMON_HEADERS, ORIGINAL_HTML_HEADERS, VIEWER_HEADERS
from km_search.http.viewer import render
from km_search.search.filters import split_values
from km_search.service import SearchService
from km_search.settings import Settings


def router(settings: Settings, service: SearchService) -> APIRouter:
    api = APIRouter()

    @api.get("/documents/{doc_id}", response_class=Response, responses={
        200: {"description": "The original file (PDF, HTML) or an HTML text rendering (Markdown, Word, text).",
              "content": {"text/html": {}, "application/pdf": {}}},
        307: {"description": "A crawled web page: a redirect to its own URL."},
        404: {"description": "No such document in the published snapshot, or not one the caller may read."},
    })
    def document(
        principal: Reader,
        doc_id: Annotated[int, Path(ge=1, le=2**62, description="`doc_id` of a hit.")],
        download: Annotated[bool, Query(description="Send the original file as an attachment.")] = False,
    ) -> Response:
        """The source viewer: a hit's `url` (`/documents/{doc_id}#anchor` or `#page=N`) lands on its page or heading."""
        doc = service.document(doc_id, principal)  # 404 alike for unknown and unreadable documents
        if doc.url is not None:  # a crawled page has no file here: its own URL is the original (the #anchor carries over)
            return RedirectResponse(doc.url, status_code=307, headers=COMMON_HEADERS)
        if download:
            return FileResponse(doc.abs_path, filename=doc.abs_path.name, headers=COMMON_HEADERS)
        if doc.media_type is not None:
            headers = ORIGINAL_HTML_HEADERS if doc.format == "html" else COMMON_HEADERS
            return FileResponse(doc.abs_path, media_type=doc.media_type, headers=headers,
                                filename=doc.abs_path.name, content_disposition_type="inline")
        return HTMLResponse(render(doc), headers=VIEWER_HEADERS)

    @api.post("/documents", response_model=DocumentChangeOut, status_code=201, tags=["admin"])
    async def upload(
        principal: Admin,
        file: Annotated[UploadFile, File(description="A file of any format `km ingest` reads (docs/formats-and-metadata.md); at most KM_MAX_FILE_MB.")],
        groups: Annotated[str | None, Form(description="Groups that may read it, comma-separated; default public.")] = None,
        project: Annotated[str | None, Form(max_length=200)] = None,
        type: Annotated[str | None, Form(max_length=100, description="decision, lesson, howto, policy, meeting…")] = None,
        tags: Annotated[str | None, Form(max_length=1000, description="Comma-separated.")] = None,
        authors: Annotated[str | None, Form(max_length=1000, description="Comma-separated names or emails.")] = None,
    ) -> DocumentChangeOut:
        """Add one document: it is parsed, chunked and embedded like `km ingest` would, and served
        when this returns (201). Unsupported (415), too large (413) or unparseable (422) files are
        refused and leave nothing behind."""
        try:
            readers = list(normalize_groups(groups))
        except ValueError as exc:
            raise BadQuery(str(exc)) from None
        meta = {"groups": readers, "project": project, "type": type,
                "tags": list(split_values(tags)), "authors": list(split_values(authors))}

        def add():  # in a worker thread: parsing, embedding and the snapshot swap block
            report, path = add_upload(settings, service.index, service.embedder, file.filename or "", file.file, meta)
            service.reload_if_changed()  # served at once
            return report, path, service.document_id(path)

        report, path, doc_id = await run_in_threadpool(add)
        return DocumentChangeOut(doc_id=doc_id, path=path, snapshot=report.snapshot, documents=report.documents,
                                 chunks=report.chunks, embedded_chunks=report.embedded_chunks)

    @api.delete("/documents/{doc_id}", response_model=DocumentChangeOut, tags=["admin"])
    def delete(principal: Admin, doc_id: Annotated[int, Path(ge=1, le=2**62)]) -> DocumentChangeOut:
        """Remove one document from the index. An uploaded document's file is deleted; a document found
        under an ingest root stays on disk but out of the index until its file changes."""
        report = delete_document(settings, service.index, service.embedder, service.readable_document(doc_id, principal))
        service.reload_if_changed()
        path = next(f.path for f in report.files if f.status == "removed")
        return DocumentChangeOut(path=path, snapshot=report.snapshot, documents=report.documents,
                                 chunks=report.chunks, embedded_chunks=0)

    return api
