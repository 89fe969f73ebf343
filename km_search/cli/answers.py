"""`km ask`, `km gaps` and `km eval-answers`, registered on the `km` app by app.py.

Like the other commands, everything heavy is imported inside the command.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from km_search.cli.options import IndexOpt, JsonOpt, fail as _fail
from km_search.cli.output import ask_json, gaps_json
from km_search.errors import KmError
from km_search.settings import get_settings


def ask(
    question: Annotated[str, typer.Argument(help="The question, in plain words.")],
    index: IndexOpt = None,
    k: Annotated[int, typer.Option("-k", help="How many passages to list.")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, dense or lexical.")] = "hybrid",
    as_json: JsonOpt = False,
) -> None:
    """Answer a question with a quote from the documents and its source, or say there is none.

    `--json` prints the same object as GET /ask.
    """
    from km_search.service import SearchService

    logging.disable(logging.WARNING)
    try:
        result = SearchService(get_settings(), index).ask(question, k=k, mode=mode)  # type: ignore[arg-type]
    except KmError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(ask_json(result), indent=2))
        return
    from rich.console import Console

    console = Console()
    answer = result.answer
    if answer.answered:
        console.print(answer.text, markup=False, highlight=False)
        for c in answer.citations:
            console.print(f"  [{c.ref}] [cyan]{c.source}[/]  {c.title}", highlight=False)
    else:
        reason = answer.reason
        console.print(f"[yellow]No confident answer in the documents{': ' + reason if reason else ''}.[/] "
                      "Closest passages:", highlight=False)
        for rank, hit in enumerate(result.hits, start=1):
            console.print(f"  {rank}. [cyan]{hit.source}[/]  {hit.title}", highlight=False)
    if answer.note and answer.answered:
        console.print(f"[dim]{answer.note}[/]", highlight=False)
    console.print(f"[dim]confidence {answer.confidence:.2f}[/]")


def gaps(
    index: IndexOpt = None,
    days: Annotated[Optional[float], typer.Option(help="Only queries of the last N days.")] = None,
    limit: Annotated[int, typer.Option(help="Most topics to list.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Knowledge gaps: logged questions that went unanswered, scored low or were marked unhelpful,
    grouped by meaning into topics. `--json` prints the same object as GET /analytics/gaps."""
    from km_search.service import SearchService

    logging.disable(logging.WARNING)
    try:
        report = SearchService(get_settings(), index).gaps(days=days, limit=limit)
    except KmError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(gaps_json(report), indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    t = report.totals
    console = Console()
    console.print(f"{t['queries']} queries logged, {t['asked']} questions asked: {t['answered']} answered, "
                  f"{t['abstained']} abstained; {t['feedback']} feedback, {t['negative_feedback']} not helpful")
    if not report.topics:
        console.print("no knowledge gaps: every logged query found good evidence")
        return
    table = Table(title="knowledge gaps", title_justify="left")
    for column in ("count", "topic", "abstained", "low score", "not helpful", "last seen", "also asked", "missing"):
        table.add_column(column)
    for topic in report.topics:
        others = [q for q in topic.queries if q != topic.question][:3]
        table.add_row(str(topic.count), topic.question, str(topic.abstained), str(topic.low_score),
                      str(topic.negative_feedback), topic.last_seen[:16].replace("T", " "), "\n".join(others),
                      "\n".join(topic.reasons[:2]))
    console.print(table)


def eval_answers(
    set_dir: Annotated[Path, typer.Argument(help="An end-to-end set: docs/, queries.jsonl, gold.jsonl.")],
    unanswerable: Annotated[Optional[Path], typer.Option(help="JSONL of questions the documents cannot "
                                                         "answer ({\"_id\", \"text\"}), to calibrate abstention.")] = None,
    docs: Annotated[Optional[Path], typer.Option(help="Documents to ingest (default SET_DIR/docs).")] = None,
    index: Annotated[Optional[str], typer.Option(help="Use this already built index (under KM_INDEX_DIR) "
                                                 "instead of ingesting the documents into a temporary one.")] = None,
    details: Annotated[Optional[Path], typer.Option(help="Write every question's answer and score to this JSONL.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure answers: the share quoting the gold answer, and abstention precision and coverage,
    with the threshold calibrated on answerable against unanswerable questions (docs/answers.md)."""
    from evaluation.answers import evaluate_answers, evaluation_settings, outcome_rows
    from km_search.embedding.embedder import Embedder
    from km_search.service import SearchService

    logging.disable(logging.WARNING)
    settings = get_settings()
    embedder = Embedder.from_settings(settings)

    def factory(tmp: Path) -> SearchService:
        if index:
            return SearchService(evaluation_settings(settings), index, embedder=embedder)
        return SearchService(evaluation_settings(settings, tmp), "eval", embedder=embedder)

    try:
        summary, outcomes = evaluate_answers(set_dir, factory, settings.answer_threshold, unanswerable, docs,
                                             existing_index=bool(index))
    except KmError as exc:
        _fail(str(exc))
    if details:
        details.write_text("".join(json.dumps(row) + "\n" for row in outcome_rows(outcomes)), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"{summary['set']}: {summary['answerable']} answerable, {summary['unanswerable']} unanswerable questions")
    typer.echo(f"  answer quotes the gold answer: {summary['answer_quality']:.1%}   cites the gold file: "
               f"{summary['cited_gold_file']:.1%}, its exact section: {summary['cited_gold_section']:.1%}")
    for label in ("at_setting", "calibrated"):
        if label in summary:
            r = summary[label]
            typer.echo(f"  {label.replace('_', ' ')}: threshold {r['threshold']:.2f}  coverage {r['coverage']:.1%}  "
                       f"precision {r['precision']:.1%}  abstention recall {r['abstention_recall']:.1%}  "
                       f"abstention precision {r['abstention_precision']:.1%}  answered & correct "
                       f"{r['answered_correct']:.1%}")
    typer.echo(f"  latency p50 {summary['latency_p50_ms']:.0f} ms, p95 {summary['latency_p95_ms']:.0f} ms")


def add_answer_commands(app: typer.Typer) -> None:
    app.command()(ask)
    app.command()(gaps)
    app.command(name="eval-answers")(eval_answers)
