"""Answer evaluation: does /ask quote the gold answer, and does it abstain on what the corpus cannot answer?

`km eval-answers SET_DIR --unanswerable FILE` runs every question of an end-to-end set (docs/,
queries.jsonl, gold.jsonl) and of a file of unanswerable questions through `SearchService.ask`
with abstention off, then scores the answers and sweeps the abstention threshold:

- answer quality: the share of answerable questions whose extractive answer quotes the gold answer
  (`quotes_gold`: at least half of the answer's 8-word shingles occur in the gold answer text; an
  answer under 8 words must occur in it word for word).
- at a threshold t, a question is answered when its confidence >= t. Coverage: answered answerable
  questions / answerable questions. Precision: answered answerable questions / all answered
  questions. Abstention recall: abstained unanswerable / unanswerable; abstention precision:
  abstained unanswerable / all abstained.
- the calibrated threshold maximizes balanced accuracy, (coverage + abstention recall) / 2, which
  does not depend on how many questions of each kind the sets hold, averaged over the thresholds
  within 0.02 of it, so that it sits on a plateau rather than on a spike one question wide.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

from evaluation.retrieval import SHINGLE, read_jsonl, shingles
from km_search.text import WORD



def quotes_gold(answer: str, gold: str) -> bool:
    """True when the answer is (mostly) text of the gold answer; see the module docstring."""
    words = WORD.findall(answer.lower())
    gold_words = WORD.findall(gold.lower())
    if not words:
        return False
    if len(words) < SHINGLE:
        return f" {' '.join(words)} " in f" {' '.join(gold_words)} "
    gold_shingles = set(shingles(gold_words))
    answer_shingles = shingles(words)
    return sum(s in gold_shingles for s in answer_shingles) / len(answer_shingles) >= 0.5


@dataclass
class AnswerOutcome:
    query_id: str
    question: str
    answerable: bool
    confidence: float
    answer: str | None
    correct: bool | None  # None for unanswerable questions
    cited_gold_file: bool | None
    cited_gold_section: bool | None  # the exact deep link: file and anchor (or page)
    source: str | None
    latency_ms: float


def gold_link(gold: dict) -> str:
    link = gold["source"]
    if gold.get("anchor"):
        return f"{link}#{gold['anchor']}"
    if gold.get("page"):
        return f"{link}#page={gold['page']}"
    return link


def run_questions(ask: Callable[[str], object], answerable: Sequence[dict], gold: dict[str, dict],
                  unanswerable: Sequence[dict]) -> list[AnswerOutcome]:
    """Ask every question (abstention must be off in `ask`, so every answer can be judged)."""
    outcomes = []
    for q, is_answerable in [*[(q, True) for q in answerable], *[(q, False) for q in unanswerable]]:
        started = time.perf_counter()
        result = ask(q["text"])
        latency = (time.perf_counter() - started) * 1000
        answer = result.answer  # type: ignore[attr-defined]
        citation = answer.citations[0] if answer.citations else None
        g = gold.get(q["_id"]) if is_answerable else None
        outcomes.append(AnswerOutcome(
            query_id=q["_id"], question=q["text"], answerable=is_answerable, confidence=answer.confidence,
            answer=answer.text,
            correct=(bool(answer.text) and quotes_gold(answer.text, g["answer"])) if g else None,
            cited_gold_file=(citation is not None and citation.source.partition("#")[0] == g["source"]) if g else None,
            cited_gold_section=(citation is not None and citation.source == gold_link(g)) if g else None,
            source=citation.source if citation else None, latency_ms=round(latency, 1),
        ))
    return outcomes


def at_threshold(outcomes: Sequence[AnswerOutcome], threshold: float) -> dict[str, float]:
    answerable = [o for o in outcomes if o.answerable]
    unanswerable = [o for o in outcomes if not o.answerable]
    answered = [o for o in outcomes if o.confidence >= threshold]
    abstained = [o for o in outcomes if o.confidence < threshold]

    def share(part: int, whole: int) -> float:
        return round(part / whole, 4) if whole else 0.0

    answered_answerable = sum(o.answerable for o in answered)
    abstained_unanswerable = sum(not o.answerable for o in abstained)
    coverage = share(answered_answerable, len(answerable))
    abstention_recall = share(abstained_unanswerable, len(unanswerable))
    return {
        "threshold": round(threshold, 4),
        "coverage": coverage,
        "precision": share(answered_answerable, len(answered)),
        "abstention_recall": abstention_recall,
        "abstention_precision": share(abstained_unanswerable, len(abstained)),
        "balanced_accuracy": round((coverage + abstention_recall) / 2, 4) if unanswerable else coverage,
        "answered_correct": share(sum(bool(o.correct) for o in answered), len(answerable)),
        "correct_precision": share(sum(bool(o.correct) for o in answered), len(answered)),
    }


def calibrate(outcomes: Sequence[AnswerOutcome], step: float = 0.01, window: int = 2) -> dict[str, float]:
    """The threshold whose neighbourhood (`window` steps each side) has the best mean balanced
    accuracy: a threshold in the middle of a plateau, not on a one-question spike. Ties: the middle one."""
    sweep = [at_threshold(outcomes, round(i * step, 4)) for i in range(int(round(1 / step)) + 1)]
    values = [r["balanced_accuracy"] for r in sweep]
    smoothed = [
        round(sum(values[max(0, i - window) : i + window + 1]) / len(values[max(0, i - window) : i + window + 1]), 6)
        for i in range(len(values))
    ]
    best = max(smoothed)
    tied = [i for i, v in enumerate(smoothed) if v == best]
    return sweep[tied[len(tied) // 2]]


def summarize_answers(outcomes: Sequence[AnswerOutcome], threshold: float) -> dict:
    answerable = [o for o in outcomes if o.answerable]
    latencies = sorted(o.latency_ms for o in outcomes) or [0.0]
    summary = {
        "answerable": len(answerable),
        "unanswerable": len(outcomes) - len(answerable),
        "answer_quality": round(sum(bool(o.correct) for o in answerable) / max(1, len(answerable)), 4),
        "cited_gold_file": round(sum(bool(o.cited_gold_file) for o in answerable) / max(1, len(answerable)), 4),
        "cited_gold_section": round(sum(bool(o.cited_gold_section) for o in answerable) / max(1, len(answerable)), 4),
        "at_setting": at_threshold(outcomes, threshold),
        "latency_p50_ms": statistics.median(latencies),
        "latency_p95_ms": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
    }
    if summary["unanswerable"]:
        summary["calibrated"] = calibrate(outcomes)
    return summary


def evaluation_settings(settings, index_dir: Path | None = None):
    """The settings an answer evaluation runs with: abstention, the language model and the log off."""
    update = {"answer_threshold": 0.0, "llm_url": None, "query_log": False}
    if index_dir is not None:
        update["index_dir"] = index_dir
    return settings.model_copy(update=update)


def evaluate_answers(
    set_dir: Path, service_factory, threshold: float, unanswerable: Path | None = None, docs: Path | None = None,
    existing_index: bool = False,
) -> tuple[dict, list[AnswerOutcome]]:
    """Ingest the set's documents (unless `existing_index`), ask every question, score the answers.

    `service_factory(folder)` returns a SearchService built with `evaluation_settings` whose index
    lives under `folder` (or, with `existing_index`, anywhere); `threshold` is the one to report.
    """
    gold = {g["query_id"]: g for g in read_jsonl(set_dir / "gold.jsonl")}
    questions = [q for q in read_jsonl(set_dir / "queries.jsonl") if q["_id"] in gold]
    others = read_jsonl(unanswerable) if unanswerable else []
    with tempfile.TemporaryDirectory() as tmp:
        service = service_factory(Path(tmp))
        if service.settings.answer_threshold > 0 or service.settings.llm_url:
            raise ValueError("evaluate_answers needs a service built with evaluation_settings()")
        if not existing_index:
            from ingest.pipeline import ingest

            ingest([docs or set_dir / "docs"], service.settings, index=service.index, embedder=service.embedder,
                   progress=False)
        k = service.settings.answer_passages
        outcomes = run_questions(lambda text: service.ask(text, k=k), questions, gold, others)
    summary = {"set": set_dir.name, **summarize_answers(outcomes, threshold)}
    return summary, outcomes


def outcome_rows(outcomes: Sequence[AnswerOutcome]) -> list[dict]:
    return [asdict(o) for o in outcomes]
