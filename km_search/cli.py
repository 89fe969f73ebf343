"""The `km` command: ingest, search, serve, stats. Heavy imports happen inside each command."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from km_search.cli_answers import add_answer_commands
from km_search.cli_keys import add_key_commands
from km_search.cli_options import (
    AfterOpt, AuthorOpt, BeforeOpt, IndexOpt, JsonOpt, PathOpt, ProjectOpt, TagOpt, TypeOpt, fail as _fail,
)
from km_search.errors import KmError, NothingToPublish
from km_search.settings import Settings, get_settings

app = typer.Typer(help="km-search: semantic search over your organization's documents.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)

def _settings() -> Settings:
    return get_settings()


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to index.")],
    index: IndexOpt = None,
    as_json: JsonOpt = False,
    full: Annotated[bool, typer.Option("--full", help="Re-process every file, not only the changed ones.")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Stay running and ingest again whenever files change.")] = False,
) -> None:
    """Bring the index up to date with PATHS: only new and changed files are parsed and embedded,
    documents of deleted files are dropped, and a new snapshot is published when anything changed.

    Exits 0 when the index is up to date, even if some files failed (they are in the report).
    """
    from rich.console import Console

    from ingest.pipeline import ingest as run_ingest

    settings = _settings()
    if watch:
        _watch(paths, settings, index, as_json)
        return
    try:
        report = run_ingest(paths, settings, index=index, progress=not as_json and sys.stderr.isatty(), full=full)
    except NothingToPublish as exc:
        if as_json and exc.report is not None:
            typer.echo(json.dumps(exc.report.to_json(), indent=2))
        elif exc.report is not None:
            _print_failures(Console(stderr=True), exc.report.failed)
        _fail(str(exc))
    except KmError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    _print_report(Console(), report)


def _print_report(console, report) -> None:
    changes = (f"{report.added} added, {report.updated} updated, {report.removed} removed, "
               f"{report.unchanged} unchanged, {len(report.failed)} failed; {report.embedded_chunks} passages embedded")
    console.print(
        f"[bold green]index '{report.index}'[/] snapshot {report.snapshot}: {report.documents} documents, "
        f"{report.chunks} passages ({changes}) in {report.took_s:.1f} s"
        + (f"; {report.skipped} unsupported files skipped" if report.skipped else "")
        + (f"; full rebuild: {report.full_rebuild}" if report.full_rebuild else "")
    )
    _print_failures(console, report.failed)


def _watch(paths: list[Path], settings: Settings, index: str | None, as_json: bool) -> None:
    from rich.console import Console

    from ingest.watch import watch

    console = Console(stderr=True)

    def show(result) -> None:
        if isinstance(result, KmError):
            console.print(f"[red]error:[/] {result}")
        elif as_json:
            typer.echo(json.dumps(result.to_json()), nl=True)
            sys.stdout.flush()
        else:
            _print_report(console, result)

    console.print(f"watching {', '.join(map(str, paths))} (Ctrl-C stops)")
    watch(paths, settings, index, show)


def _print_failures(console, failed: list[dict[str, str]]) -> None:
    if not failed:
        return
    from rich.table import Table

    table = Table(title=f"{len(failed)} file(s) failed", title_justify="left")
    table.add_column("file")
    table.add_column("reason")
    for f in failed:
        table.add_row(f["path"], f["error"])
    console.print(table)


@app.command()
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
        from km_search.api import HitOut

        typer.echo(json.dumps({"hits": [HitOut.of(h).model_dump() for h in result.hits]}, indent=2))
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


@app.command()
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
        found = SearchService(_settings(), index).experts(query, k=k, filters=filters)
    except KmError as exc:
        _fail(str(exc))
    if as_json:
        from km_search.api import ExpertOut

        typer.echo(json.dumps({"experts": [ExpertOut.of(e).model_dump() for e in found]}, indent=2))
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
            console.print(f"   [cyan]{e.source}[/]  {e.title}", highlight=False)


def _records(doc_type: str, query: str, index: str | None, k: int, as_json: bool, filters: dict) -> None:
    from km_search.search.filters import make_filters
    from km_search.service import SearchService

    logging.disable(logging.WARNING)
    try:
        hits = SearchService(_settings(), index).records(query, doc_type, k=k, filters=make_filters(**filters))
    except KmError as exc:
        _fail(str(exc))
    from km_search.api import RecordOut

    records = [RecordOut.of(h) for h in hits]
    if as_json:
        typer.echo(json.dumps({doc_type + "s": [r.model_dump() for r in records]}, indent=2))
        return
    from rich.console import Console

    console = Console()
    if not records:
        console.print(f"no {doc_type}s match")
    for rank, r in enumerate(records, start=1):
        status = f"  [{'red' if (r.status or '').lower() == 'superseded' else 'green'}]{r.status}[/]" if r.status else ""
        later = f" by {r.superseded_by}" if r.superseded_by else ""
        console.print(f"[bold]{rank}. {r.title}[/]{status}{later}  [dim]{r.date or ''} {r.project or ''}[/]",
                      highlight=False)
        console.print(f"   [cyan]{r.source}[/]", highlight=False)


def _records_command(doc_type: str, name: str, doc: str) -> None:
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


_records_command("decision", "decisions", "Decision records (ADRs) matching the query, with date, project and status (Accepted, Superseded…).")
_records_command("lesson", "lessons", "Lessons learned, retrospectives and post-mortems matching the query.")


@app.command()
def serve(
    index: IndexOpt = None,
    host: Annotated[Optional[str], typer.Option(help="Bind address (default KM_HOST).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default KM_PORT).")] = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from km_search.api import create_app
    from km_search.service import SearchService

    settings = _settings()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from km_search.auth import AuthConfigError

    try:
        app_ = create_app(settings, SearchService(settings, index))
    except AuthConfigError as exc:
        _fail(str(exc))
    # proxy_headers off: the client address must be the real peer, which KM_TRUSTED_PROXIES and
    # the rate limit judge; X-Forwarded-For from anyone would otherwise rewrite it.
    uvicorn.run(app_, host=host or settings.host, port=port or settings.port, log_level="info", proxy_headers=False)


@app.command()
def stats(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Show what an index holds."""
    from km_search.store import Snapshot

    settings = _settings()
    name = index or settings.index
    try:
        snapshot = Snapshot.open(settings.index_path(name), name)
    except KmError as exc:
        _fail(str(exc))
    data = snapshot.describe()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        for key, value in data.items():
            typer.echo(f"{key:>10}: {value}")


@app.command(name="eval")
def evaluate(
    set_dir: Annotated[Path, typer.Argument(help="A labelled set: corpus.jsonl+qrels.tsv (passages) and/or docs/+gold.jsonl (end to end).")],
    kind: Annotated[str, typer.Option(help="passages, e2e or both (default: whatever the set has).")] = "auto",
    modes: Annotated[str, typer.Option("--modes", help="Comma-separated retrieval modes to compare.")] = "hybrid",
    docs: Annotated[Optional[Path], typer.Option(help="Documents to ingest for e2e (default SET_DIR/docs).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure retrieval quality (nDCG@10, Recall@10/100, MRR@10, Hit@k, latency) on a labelled set."""
    from km_search.embedding.embedder import Embedder
    from km_search.evaluation import evaluate_end_to_end, evaluate_passages

    settings = _settings()
    embedder = Embedder.from_settings(settings)
    kinds = [kind] if kind != "auto" else [
        k for k, marker in (("passages", "qrels.tsv"), ("e2e", "gold.jsonl")) if (set_dir / marker).exists()
    ]
    if not kinds:
        _fail(f"{set_dir} holds neither qrels.tsv (a passage set) nor gold.jsonl (an end-to-end set)")
    variants = {m.strip(): {"mode": m.strip()} for m in modes.split(",") if m.strip()}
    results = []
    for k in kinds:
        if k == "passages":
            by_variant = evaluate_passages(set_dir, settings, embedder, variants)
        else:
            by_variant = evaluate_end_to_end(set_dir, settings, embedder, variants, docs=docs)
        results.extend({"set": set_dir.name, "kind": k, "mode": m, **metrics} for m, metrics in by_variant.items())
    if as_json:
        typer.echo(json.dumps({"results": results}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    columns = [c for c in ("nDCG@10", "Recall@10", "Recall@100", "MRR@10", "Hit@1", "Hit@5", "Hit@10", "latency_p50_ms")
               if any(c in r for r in results)]
    table = Table(title=f"{set_dir.name}: {results[0]['queries']} queries")
    for c in ("kind", "mode", *columns):
        table.add_column(c)
    for r in results:
        table.add_row(r["kind"], r["mode"], *[f"{r[c]:.3f}" if c in r else "" for c in columns])
    Console().print(table)


@app.command()
def tune(
    output: Annotated[Path, typer.Argument(help="Folder to write the adapted model to.")],
    index: IndexOpt = None,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the mined pairs.")] = 1,
    max_pairs: Annotated[Optional[int], typer.Option(min=8, help="Use at most this many pairs (default: all).")] = None,
    batch_size: Annotated[int, typer.Option(min=4, help="Pairs per step; the other passages of a batch are the negatives.")] = 32,
    learning_rate: Annotated[float, typer.Option(help="AdamW learning rate.")] = 2e-5,
    as_json: JsonOpt = False,
) -> None:
    """Adapt the embedding model to the index's own documents (opt-in): fine-tune it on (heading,
    section) and (sentence, rest of passage) pairs mined from the index, and save it to OUTPUT.
    Then use it with KM_MODEL=OUTPUT and `km ingest --full`. Takes minutes on a CPU."""
    from rich.console import Console

    from km_search.embedding.embedder import resolve_model_path
    from km_search.store import Snapshot
    from km_search.embedding.tuning import fine_tune, index_rows, mine_pairs

    settings = _settings()
    name = index or settings.index
    try:
        snapshot = Snapshot.open(settings.index_path(name), name)
        base = resolve_model_path(snapshot.manifest.get("model", {}).get("name") or settings.model)
    except KmError as exc:
        _fail(str(exc))
    pairs = mine_pairs(index_rows(snapshot), max_pairs=max_pairs)
    if len(pairs) < batch_size:
        _fail(f"index '{name}' gives only {len(pairs)} training pairs, fewer than one batch of {batch_size}: "
              "index more documents, or lower --batch-size")
    console = Console(stderr=True)
    console.print(f"fine-tuning {base.name} on {len(pairs)} pairs from index '{name}' ({epochs} epoch(s))")
    with _TuneProgress(enabled=not as_json and sys.stderr.isatty()) as progress:
        info = fine_tune(base, pairs, output, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                         progress=progress)
    if as_json:
        typer.echo(json.dumps({**info, "output": str(output)}, indent=2))
        return
    Console().print(f"[bold green]saved[/] {output} ({info['steps']} steps, {info['took_s']} s, final loss "
                    f"{info['final_loss']}). Use it: KM_MODEL={output} km ingest PATH --index {name} --full")


class _TuneProgress:
    """A rich progress bar over training steps, with the loss."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn("[bold]tuning"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("loss {task.fields[loss]:.3f}"), TimeRemainingColumn(),
                             console=Console(stderr=True), transient=True)
        self._bar.start()
        self._task = None

        def update(step: int, steps: int, loss: float) -> None:
            if self._task is None:
                self._task = self._bar.add_task("tune", total=steps, loss=loss)
            self._bar.update(self._task, completed=step, loss=loss)

        return update

    def __exit__(self, *exc):
        if self.enabled:
            self._bar.stop()
        return False


add_answer_commands(app)  # km ask, km gaps, km eval-answers (cli_answers.py)
add_key_commands(app)  # km keys create|list|revoke (cli_keys.py)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
