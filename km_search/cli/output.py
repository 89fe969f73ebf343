"""What `--json` prints: the same objects as the HTTP API's answers, mapped from the core records
here so that the command line needs no web framework (tests/cli/test_output.py keeps the two alike)."""

from __future__ import annotations

from typing import Any

from km_search.index.documents import viewer_url
from km_search.types import AskResult, Citation, Expert, GapReport, Hit


def hit_json(hit: Hit) -> dict[str, Any]:
    m = hit.meta
    return {
        "text": hit.text, "source": hit.source, "title": hit.title, "score": hit.score,
        "heading_path": list(hit.heading_path), "snippet": hit.snippet, "doc_path": hit.doc_path, "page": hit.page,
        "chunk_id": hit.chunk_id, "type": m.doc_type, "project": m.project, "authors": list(m.authors),
        "modified": m.modified or m.created, "dense_score": hit.dense_score, "lexical_score": hit.lexical_score,
        "doc_id": hit.doc_id, "url": viewer_url(hit.doc_id, hit.source), "status": m.status, "created": m.created,
        "tags": list(m.tags),
        "parts": [p.as_json() for p in hit.parts],
    }


def record_json(hit: Hit) -> dict[str, Any]:
    m = hit.meta
    return {
        "title": hit.title, "date": m.created or m.modified, "project": m.project, "status": m.status,
        "superseded_by": m.extra.get("superseded_by"), "supersedes": m.extra.get("supersedes"),
        "authors": list(m.authors), "tags": list(m.tags), "type": m.doc_type, "source": hit.source,
        "url": viewer_url(hit.doc_id, hit.source), "doc_id": hit.doc_id, "doc_path": hit.doc_path,
        "text": hit.text, "snippet": hit.snippet, "score": hit.score,
    }


def expert_json(expert: Expert) -> dict[str, Any]:
    return {
        "name": expert.name, "email": expert.email, "score": expert.score, "documents": expert.documents,
        "last_date": expert.last_date,
        "evidence": [{"source": e.source, "title": e.title, "text": e.text, "url": viewer_url(e.doc_id, e.source),
                      "doc_id": e.doc_id, "score": e.score, "role": e.role} for e in expert.evidence],
    }


def citation_json(c: Citation) -> dict[str, Any]:
    return {"ref": c.ref, "source": c.source, "title": c.title, "text": c.text, "start": c.start, "end": c.end,
            "chunk_id": c.chunk_id, "doc_id": c.doc_id, "url": viewer_url(c.doc_id, c.source)}


def ask_json(result: AskResult) -> dict[str, Any]:
    a = result.answer
    return {
        "query": result.query, "query_id": result.query_id, "answer": a.text, "answered": a.answered,
        "confidence": a.confidence, "kind": a.kind, "note": a.note, "missing_terms": list(a.missing_terms),
        "citations": [citation_json(c) for c in a.citations], "hits": [hit_json(h) for h in result.hits],
        "took_ms": result.took_ms,
    }


def gaps_json(report: GapReport) -> dict[str, Any]:
    return {
        "totals": report.totals, "min_confidence": report.min_confidence, "days": report.days,
        "topics": [{"question": t.question, "count": t.count, "queries": list(t.queries), "last_seen": t.last_seen,
                    "abstained": t.abstained, "low_score": t.low_score, "negative_feedback": t.negative_feedback,
                    "comments": list(t.comments), "reasons": list(t.reasons)} for t in report.topics],
    }
