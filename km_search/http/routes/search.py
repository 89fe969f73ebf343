"""Retrieval routes: GET /search, /experts, /decisions, /lessons, and /healthz, /stats about the index."""


from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import create_model

from km_search.http.deps import Filters, Reader
from km_search.http.schemas import ExpertOut, ExpertsOut, GroupOut, HealthOut, HitOut, RecordOut, SearchOut, StatsOut
from km_search.service import SearchService
from km_search.settings import Settings
from km_search.types import SearchFilters


def router(settings: Settings, service: SearchService) -> APIRouter:
    api = APIRouter()

    @api.get("/healthz", response_model=HealthOut)
    def healthz() -> HealthOut:
        """200 once the index is loaded and queries can be answered, 503 with the reason otherwise."""
        snapshot = service.retriever.snapshot
        return HealthOut(status="ok", index=service.index, snapshot=snapshot.snapshot_id)

    @api.get("/search", response_model=SearchOut)
    def search(
        principal: Reader,
        q: Annotated[str, Query(description="The question or keywords.", max_length=settings.max_query_chars)],
        k: Annotated[int, Query(ge=1, le=settings.max_k, description="How many passages to return.")] = 10,
        offset: Annotated[int, Query(ge=0, le=10_000, description="Skip this many passages (paging).")] = 0,
        mode: Annotated[Literal["hybrid", "dense", "lexical"], Query(description="Retrieval mode.")] = "hybrid",
        group: Annotated[Literal["passage", "document"], Query(
            description="'document': one entry per document in `groups` (its best passage and more from it); "
                        "k and offset then count documents.")] = "passage",
        filters: Filters = SearchFilters(),
    ) -> SearchOut:
        """Ranked passages, or with group=document the ranked documents, each with its best passage."""
        result = service.search(q, k=k, offset=offset, mode=mode, filters=filters, principal=principal,
                                group=group == "document")
        groups = [GroupOut.of(g) for g in result.groups] if result.groups is not None else None
        return SearchOut(query=q, hits=[HitOut.of(h) for h in result.hits], k=k, offset=offset, took_ms=result.took_ms,
                         query_id=result.query_id, groups=groups)

    @api.get("/experts", response_model=ExpertsOut)
    def experts(
        principal: Reader,
        q: Annotated[str, Query(description="The topic.", max_length=settings.max_query_chars)],
        k: Annotated[int, Query(ge=1, le=settings.max_k, description="How many people to return.")] = 5,
        filters: Filters = SearchFilters(),
    ) -> ExpertsOut:
        """Who knows about the topic: people ranked by the relevant material they authored or changed,
        recent work counting more, each with the documents and passages that make them an expert."""
        found = service.experts(q, k=k, filters=filters, principal=principal)
        return ExpertsOut(query=q, took_ms=found.took_ms, experts=[ExpertOut.of(e) for e in found.experts])

    def records_route(doc_type: str, plural: str):
        def route(
            principal: Reader,
            q: Annotated[str, Query(description="What the records should be about.", max_length=settings.max_query_chars)],
            k: Annotated[int, Query(ge=1, le=settings.max_k, description="How many records to return.")] = 10,
            filters: Filters = SearchFilters(),
        ) -> dict:
            found = service.records(q, doc_type, k=k, filters=filters, principal=principal)
            return {"query": q, "took_ms": found.took_ms, plural: [RecordOut.of(h) for h in found.hits]}

        route.__doc__ = (f"The {plural} (documents of type '{doc_type}') that best match the query, one entry per "
                         f"document with its title, date, project and status; the type filter is fixed, the others apply.")
        return route

    for doc_type, plural in (("decision", "decisions"), ("lesson", "lessons")):
        out = create_model(f"{plural.title()}Out", query=(str, ...), took_ms=(float, ...), **{plural: (list[RecordOut], ...)})
        api.get(f"/{plural}", response_model=out)(records_route(doc_type, plural))

    @api.get("/stats", response_model=StatsOut)
    def stats(principal: Reader) -> StatsOut:
        """What the index holds; `documents` and `chunks` count only what the caller may read."""
        return StatsOut(**service.stats(principal))

    return api
