"""POST /documents and DELETE /documents/{id}: admins add and remove single documents over HTTP.

Thin over SearchService.add_document / delete_document (ingest/uploads.py does the work); the new
snapshot is served as soon as the request returns.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, File, Form, Path, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from km_search.access.principals import normalize_groups
from km_search.auth import Admin
from km_search.errors import BadQuery
from km_search.search.filters import _values
from km_search.service import SearchService
from km_search.settings import Settings


class DocumentChangeOut(BaseModel):
    ok: bool = True
    doc_id: int | None = Field(None, description="The uploaded document's id (for /documents/{id} and DELETE).")
    path: str = Field(description="The document's path in the index.")
    snapshot: str | None = Field(description="The snapshot that now serves, with the change.")
    documents: int = Field(description="Documents in that snapshot.")
    chunks: int = Field(description="Passages in that snapshot.")
    embedded_chunks: int = Field(description="Passages embedded for this change.")


def add_upload_routes(app: FastAPI, settings: Settings, service: SearchService) -> None:
    @app.post("/documents", response_model=DocumentChangeOut, status_code=201, tags=["admin"])
    async def upload(
        principal: Admin,
        file: Annotated[UploadFile, File(description="PDF, DOCX, Markdown, HTML or text; at most KM_MAX_FILE_MB.")],
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
                "tags": list(_values(tags)), "authors": list(_values(authors))}
        doc_id, report = await run_in_threadpool(service.add_document, file.filename or "", file.file, meta)
        path = next(f.path for f in report.files if f.status == "added")
        return DocumentChangeOut(doc_id=doc_id, path=path, snapshot=report.snapshot, documents=report.documents,
                                 chunks=report.chunks, embedded_chunks=report.embedded_chunks)

    @app.delete("/documents/{doc_id}", response_model=DocumentChangeOut, tags=["admin"])
    def delete(principal: Admin, doc_id: Annotated[int, Path(ge=1, le=2**62)]) -> DocumentChangeOut:
        """Remove one document from the index. An uploaded document's file is deleted; a document found
        under an ingest root stays on disk but out of the index until its file changes."""
        report = service.delete_document(doc_id, principal)
        path = next(f.path for f in report.files if f.status == "removed")
        return DocumentChangeOut(path=path, snapshot=report.snapshot, documents=report.documents,
                                 chunks=report.chunks, embedded_chunks=0)
