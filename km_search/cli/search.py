"""`km search`, `km experts`, `km decisions`, `km lessons`: the retrieval routes, from the command line."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer

from km_search.cli.options import (
    AfterOpt, AuthorOpt, BeforeOpt, IndexOpt, JsonOpt, PathOpt, ProjectOpt, TagOpt, TypeOpt, fail as _fail,
)
from km_search.cli.output import expert_json, hit_json, record_json
from km_search.errors import KmError
from km_search.settings import Settings, get_settings


def _settings() -> Settings:
    return get_settings()


def search(
    query: Annotated[str, typer.Argument(help="The question or keywords.")],
    index: IndexOpt = None,
    k: Annotated[int, typer.Option("-k", help="How many passages.")] = 10,
    mode: Annotated[str, typer.Option(help="hybrid, dense or lexical.")] = "hybrid",
    as_json: JsonOpt = False,
    doc_type: TypeOpt = None, project: ProjectOpt = None, author: AuthorOpt = None, tag: TagOpt = None,
    path: PathOpt = None, modified_after: AfterOpt = None, modified_before: BeforeOpt = None,
) -> None:
    """Search an index from the command line."""
    from km_search.search.filters import make_filters
    from km_search.service import SearchService

    logging.disable(logging.WARNING)
    try:
        filters = make_filters(doc_type, project, author, tag, path, modified_after, modified_before)
        result = SearchService(_settings(), index).search(query, k=k, mode=mode, filters=filters)  # type: ignore[arg-type]
    except KmError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps({"hits": [hit_json(h) for h in result.hits]}, indent=2))
        return
    from rich.console import Console

    console = Console()
    if not result.hits:
        console.print("no results")
    for rank, hit in enumerate(result.hits, start=1):
        heading = " › ".join(hit.heading_path)
        console.print(f"[bold]{rank}. {hit.title}[/]  [dim]{heading}[/]  score {hit.score:.3f}")
        console.print(f"   [cyan]{hit.source}[/]")
        console.print("   " + hit.text[:300].replace("\n", " ") + ("…" if len(hit.text) > 300 else ""), markup=False)


def experts(
    query: Annotated[str, typer.Argument(help="The topic: who knows about it?")],
    index: IndexOpt = None,
    k: Annotated[int, typer.Option("-k", help="How many people.")] = 5,
    as_json: JsonOpt = False,
    doc_type: TypeOpt = None, project: ProjectOpt = None, author: AuthorOpt = None, tag: TagOpt = None,
    path: PathOpt = None, modified_after: AfterOpt = None, modified_before: BeforeOpt = None,
) -> None:
    """People ranked by the relevant material they authored or changed, with evidence (docs/experts.md)."""
    from km_search.search.filters import make_filters
    from km_search.service import SearchService

    logging.disable(logging.WARNING)
    try:
        filters = make_filters(doc_type, project, author, tag, path, modified_after, modified_before)
        found = SearchService(_settings(), index).experts(query, k=k, filters=filters).experts
    except KmError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps({"experts": [expert_json(e) for e in found]}, indent=2))
        return
    from rich.console import Console

    console = Console()
    if not found:
        console.print("nobody: no document matches")
    for rank, expert in enumerate(found, start=1):
        who = expert.name + (f" <{expert.email}>" if expert.email and expert.email != expert.name else "")
        console.print(f"[bold]{rank}. {who}[/]  score {expert.score:.3f}, {expert.documents} document(s),"
                      f" last {expert.last_date or 'undated'}", highlight=False)
        for e in expert.evidence:
            console.print(f"   [cyan]{e.source}[/]  {e.title} ({e.role})", highlight=False)


def _records(doc_type: str, query: str, index: str | None, k: int, as_json: bool, filters: dict) -> None:
    from km_search.search.filters import make_filters
    from km_search.service import SearchService

    logging.disable(logging.WARNING)
    try:
        hits = SearchService(_settings(), index).records(query, doc_type, k=k, filters=make_filters(**filters)).hits
    except KmError as exc:
        _fail(str(exc))
    records = [record_json(h) for h in hits]
    if as_json:
        typer.echo(json.dumps({doc_type + "s": records}, indent=2))
        return
    from rich.console import Console

    console = Console()
    if not records:
        console.print(f"no {doc_type}s match")
    for rank, r in enumerate(records, start=1):
        status = f"  [{'red' if (r['status'] or '').lower() == 'superseded' else 'green'}]{r['status']}[/]" if r["status"] else ""
        later = f" by {r['superseded_by']}" if r["superseded_by"] else ""
        console.print(f"[bold]{rank}. {r['title']}[/]{status}{later}  [dim]{r['date'] or ''} {r['project'] or ''}[/]",
                      highlight=False)
        console.print(f"   [cyan]{r['source']}[/]", highlight=False)


def _records_command(app: typer.Typer, doc_type: str, name: str, doc: str) -> None:
    """`km decisions` and `km lessons`: the same command over one document type."""

    def command(
        query: Annotated[str, typer.Argument(help="What they should be about.")],
        index: IndexOpt = None,
        k: Annotated[int, typer.Option("-k", help="How many to return.")] = 10,
        as_json: JsonOpt = False,
        project: ProjectOpt = None, author: AuthorOpt = None, tag: TagOpt = None,
        path: PathOpt = None, modified_after: AfterOpt = None, modified_before: BeforeOpt = None,
    ) -> None:
        _records(doc_type, query, index, k, as_json, dict(
            projects=project, authors=author, tags=tag, paths=path, modified_after=modified_after,
            modified_before=modified_before))

    command.__doc__ = doc
    app.command(name=name)(command)


def add_search_commands(app: typer.Typer) -> None:
    app.command()(search)
    app.command()(experts)
    _records_command(app, "decision", "decisions", "Decision records (ADRs) matching the query, with date, project and status (Accepted, Superseded…).")
    _records_command(app, "lesson", "lessons", "Lessons learned, retrospectives and post-mortems matching the query.")
