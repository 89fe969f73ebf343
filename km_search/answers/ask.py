"""The ask pipeline: retrieval, extractive answer, optional language model, query log.

`SearchService` owns one `QuestionAnswering`, hands it the way to its current retriever (never
itself), delegates ask(), ask_stream(), feedback() and gaps() to it and gives it every search to
log. The pure parts live beside it: extractive.py picks the quote, llm.py talks to the model and
checks its citations, gaps.py groups weak questions.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from km_search.answers.extractive import (
    AnswerParams,
    extract_answer,
    passage_evidence,
    rarity_weights,
    supporting_span,
)
from km_search.answers.gaps import distinct_questions, find_gaps
from km_search.answers.terms import specific_terms
from km_search.index.lexical import query_terms
from km_search.answers.llm import ChatClient, LLMError, build_messages, cited_answer
from km_search.answers.querylog import FILENAME, QueryLog, QueryLogUnavailable
from km_search.search.query import check_k, validated_query
from km_search.settings import Settings
from km_search.types import Answer, AskResult, Citation, GapReport, Hit, SearchFilters, SearchResult

if TYPE_CHECKING:
    from km_search.embedding.embedder import Embedder
    from km_search.search.retrieval import Retriever

log = logging.getLogger("km_search.qa")

NO_LLM_ANSWER = "the language model found no answer it could cite in the passages"


class QuestionAnswering:
    def __init__(self, settings: Settings, index_path: Path, embedder: "Embedder",
                 retriever: Callable[[], "Retriever"], loaded: Callable[[], "Retriever | None"]):
        """`retriever()` gives the current retriever (loading the snapshot if need be), `loaded()` the
        one already loaded or None, so logging never loads a snapshot."""
        self.settings = settings
        self.embedder = embedder
        self._retriever, self._loaded = retriever, loaded
        self.query_log = QueryLog(index_path / FILENAME) if settings.query_log else None

    # ---- ask ---------------------------------------------------------------------------------

    def ask(self, query: str, k: int = 5, mode: str = "hybrid", filters: SearchFilters | None = None) -> AskResult:
        """The best answer to `query` with its citations and the top `k` passages, or an abstention."""
        started = time.perf_counter()
        query, hits, weights, frequencies = self._retrieve(query, k, mode, filters)
        answer = self._extract(query, hits, weights, frequencies)
        if answer.answered and self.settings.llm_url:
            answer = self._generate(query, hits, answer)
        return self._finish(query, mode, hits, answer, started)

    def ask_stream(
        self, query: str, k: int = 5, mode: str = "hybrid", filters: SearchFilters | None = None
    ) -> Iterator[tuple[str, object]]:
        """Validates and retrieves now (so a bad request fails before streaming), then yields events:
        ("hits", hits), any number of ("delta", text) while the language model writes, and last
        ("answer", AskResult) with the checked, cited answer, which replaces the streamed text."""
        started = time.perf_counter()
        query, hits, weights, frequencies = self._retrieve(query, k, mode, filters)
        extractive = self._extract(query, hits, weights, frequencies)

        def events() -> Iterator[tuple[str, object]]:
            yield "hits", hits
            answer = extractive
            if extractive.answered and self.settings.llm_url:
                passages = hits[: self.settings.answer_passages]
                parts: list[str] = []
                try:
                    for delta in self._client().stream(build_messages(query, passages)):
                        parts.append(delta)
                        yield "delta", delta
                    answer = self._checked("".join(parts), passages, extractive)
                except LLMError as exc:
                    answer = _fallback(extractive, str(exc))
            yield "answer", self._finish(query, mode, hits, answer, started)

        return events()

    def _retrieve(
        self, query: str, k: int, mode: str, filters: SearchFilters | None
    ) -> tuple[str, tuple[Hit, ...], dict[str, float], tuple[dict[str, int], int]]:
        query = validated_query(query, self.settings)
        check_k(k, self.settings)
        retriever = self._retriever()
        # ranked as search ranks them, less the first page's lift by its best sentences, which the
        # extractor weighs itself (docs/quality.md)
        hits = retriever.search(query, k=k, mode=mode, filters=filters, sentences=False).hits  # type: ignore[arg-type]
        frequencies = self._frequencies(query, filters.groups if filters else None)
        return query, hits, rarity_weights(query_terms(query), *frequencies), frequencies

    def _frequencies(self, query: str, readable: tuple[str, ...] | None = None) -> tuple[dict[str, int], int]:
        """Document frequency of the query's words and specific terms (answers/terms.py), and the
        number of passages; with `readable` (the reader's groups) counted among the passages those
        groups may read only, so confidence reveals nothing of the others."""
        retriever = self._retriever()
        words = list(dict.fromkeys([*query_terms(query), *specific_terms(query)]))
        allowed = retriever.allowed(SearchFilters(groups=readable)) if readable is not None else None
        total = retriever.snapshot.lexical.total if allowed is None else len(allowed)
        return retriever.snapshot.lexical.document_frequencies(words, allowed), total

    def _extract(self, query: str, hits: Sequence[Hit], weights: dict[str, float],
                 frequencies: tuple[dict[str, int], int] | None = None) -> Answer:
        s = self.settings
        params = AnswerParams(s.answer_threshold, s.answer_passages, s.answer_sentences, s.answer_candidates or None,
                              s.answer_refine)
        snapshot = self._retriever().snapshot
        ids = [h.chunk_id for h in hits[: params.passages]]
        vectors = snapshot.vectors(ids) if hits else None
        sentences = snapshot.sentence_vectors(ids) if hits and s.answer_stored_sentences else None
        return extract_answer(query, hits, self.embedder.encode, weights, params, vectors, sentences,
                              self.embedder.encode_query(query), frequencies)

    def _client(self) -> ChatClient:
        s = self.settings
        key = s.llm_api_key.get_secret_value() if s.llm_api_key else None
        return ChatClient(s.llm_url or "", s.llm_model, s.llm_timeout_s, key, s.llm_max_tokens)

    def _generate(self, query: str, hits: Sequence[Hit], extractive: Answer) -> Answer:
        passages = hits[: self.settings.answer_passages]
        try:
            text = self._client().complete(build_messages(query, passages))
        except LLMError as exc:
            return _fallback(extractive, str(exc))
        return self._checked(text, passages, extractive)

    def _checked(self, text: str, passages: Sequence[Hit], extractive: Answer) -> Answer:
        """Keep only the generated sentences that cite a passage; cite each passage by its best span."""
        cited = cited_answer(text, len(passages))
        if not cited.sentences:
            return _fallback(extractive, NO_LLM_ANSWER)
        claims: dict[int, list[str]] = {}
        for sentence, refs in cited.sentences:
            for ref in refs:
                claims.setdefault(ref, []).append(sentence)
        citations = []
        for ref in sorted(claims):
            hit = passages[ref - 1]
            start, end = supporting_span(hit.text, claims[ref])
            citations.append(Citation(ref, hit.chunk_id, hit.source_at(start), hit.title, hit.text[start:end], start, end,
                                      hit.doc_id))
        note = None
        if cited.dropped:
            n = len(cited.dropped)
            note = f"{n} generated sentence{'s' if n > 1 else ''} without a citation {'were' if n > 1 else 'was'} left out."
        return Answer(cited.text, extractive.confidence, tuple(citations), kind="generative", note=note)

    def _finish(self, query: str, mode: str, hits: Sequence[Hit], answer: Answer, started: float) -> AskResult:
        took = round((time.perf_counter() - started) * 1000, 2)
        query_id = None
        if self.query_log is not None:
            query_id = self.query_log.record(
                "ask", query, results=len(hits), latency_ms=took, mode=mode,
                top_score=hits[0].score if hits else None, confidence=answer.confidence, answered=answer.answered,
                answer_kind=answer.kind, snapshot=self._snapshot_id(),
                reason=answer.reason,
            )
        return AskResult(query, answer, tuple(hits), took, query_id)

    # ---- search log, feedback, gaps -----------------------------------------------------------

    def log_search(self, query: str, mode: str, result: SearchResult) -> SearchResult:
        """Record a search (never failing it) and return it with its query id."""
        if self.query_log is None:
            return result
        try:
            evidence = self._search_evidence(query, result.hits)
        except Exception as exc:  # the log must never make a query fail
            log.warning("could not score the evidence of a search for the query log: %s", exc)
            evidence = None
        query_id = self.query_log.record(
            "search", query, results=len(result.hits), latency_ms=result.took_ms, mode=mode,
            top_score=result.hits[0].score if result.hits else None, confidence=evidence,
            snapshot=self._snapshot_id(),
        )
        return replace(result, query_id=query_id)

    def _search_evidence(self, query: str, hits: Sequence[Hit]) -> float:
        """How well a search's top passages match it, on the answer confidence's scale. The cosine is
        taken against the stored passage vectors: hits' dense scores may come from a feedback-moved
        query vector, which flatters every query."""
        if not hits:
            return 0.0
        top = hits[:5]
        vectors = self._retriever().snapshot.vectors([h.chunk_id for h in top])
        similarity = float((vectors @ self.embedder.encode_query(query)).max()) if len(vectors) else 0.0
        frequencies = self._frequencies(query)
        return passage_evidence(top, rarity_weights(query_terms(query), *frequencies), similarity, query, frequencies)

    def _snapshot_id(self) -> str | None:
        retriever = self._loaded()
        return retriever.snapshot.snapshot_id if retriever is not None else None

    def feedback(
        self, query_id: str, helpful: bool, target: str = "answer", source: str | None = None,
        chunk_id: int | None = None, comment: str | None = None,
    ) -> int:
        return self._log().add_feedback(query_id, helpful, target, source, chunk_id, comment)

    def gaps(self, days: float | None = None, limit: int = 20) -> GapReport:
        """Weak queries (abstained, nothing found, low evidence, or marked unhelpful) grouped into topics."""
        query_log = self._log()
        min_confidence = self.settings.gap_confidence
        if min_confidence is None:
            min_confidence = self.settings.answer_threshold
        queries = query_log.weak_queries(min_confidence, days)
        questions = distinct_questions(queries)
        vectors = self.embedder.encode(questions)
        topics = find_gaps(queries, questions, vectors, self.settings.gap_similarity)[:limit]
        return GapReport(query_log.totals(days), tuple(topics), min_confidence, days)

    def _log(self) -> QueryLog:
        if self.query_log is None:
            raise QueryLogUnavailable(
                "the query log is off (KM_QUERY_LOG=false): turn it on to collect feedback and see knowledge gaps"
            )
        return self.query_log


def _fallback(extractive: Answer, reason: str) -> Answer:
    """The extractive answer, with a note saying why the generated one is not shown."""
    return replace(extractive, note=f"{reason[0].upper()}{reason[1:]}; the extractive answer is shown instead.")
