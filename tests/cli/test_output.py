"""`km … --json` prints what the HTTP API answers: the CLI's own mapping (cli/output.py) against the
HTTP schemas, field by field, on the same core records."""

from __future__ import annotations

from km_search.cli.output import ask_json, expert_json, gaps_json, hit_json, record_json
from km_search.http.schemas import AskOut, ExpertOut, GapsOut, HitOut, RecordOut
from km_search.types import (
    Answer, AskResult, Citation, DocumentMeta, Evidence, Expert, GapReport, GapTopic, Hit,
)

META = DocumentMeta(title="ADR 12", authors=("Priya Raman <priya@corp.example>",), created="2024-03-01",
                    project="billing", doc_type="decision", tags=("db",), status="Superseded",
                    extra={"superseded_by": "adr-020.md"})
HIT = Hit(chunk_id=7, text="We move billing to Postgres.", source="billing/adr-012.md#decision", title="ADR 12",
          score=0.8, heading_path=("ADR 12", "Decision"), snippet="We move **billing**", doc_path="billing/adr-012.md",
          page=None, meta=META, dense_score=0.7, lexical_score=3.1, doc_id=3)


def test_hit_and_record_json_match_the_http_models():
    assert hit_json(HIT) == HitOut.of(HIT).model_dump()
    assert record_json(HIT) == RecordOut.of(HIT).model_dump()
    assert hit_json(HIT)["url"] == "/documents/3#decision"


def test_expert_json_matches_the_http_model():
    expert = Expert(name="Priya Raman", email="priya@corp.example", score=1.5, documents=2, last_date="2024-03-01",
                    evidence=(Evidence(source=HIT.source, title=HIT.title, text=HIT.text, doc_id=3, score=0.9),))
    assert expert_json(expert) == ExpertOut.of(expert).model_dump()


def test_ask_and_gaps_json_match_the_http_models():
    citation = Citation(1, 7, HIT.source, HIT.title, "We move billing to Postgres.", 0, 28, 3)
    result = AskResult("why postgres", Answer("We move billing to Postgres.", 0.7, (citation,)), (HIT,), 12.5, "q1")
    assert ask_json(result) == AskOut.of(result).model_dump()
    report = GapReport({"queries": 3}, (GapTopic("vpn setup", 2, ("vpn setup", "vpn"), "2026-01-01T00:00:00", 1, 1, 0,
                                                  ("no page",)),), 0.44, 30.0)
    assert gaps_json(report) == GapsOut.of(report).model_dump()
