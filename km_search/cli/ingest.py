"""`km ingest` (once, or `--watch`): bring an index up to date with folders of documents and web sites."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from km_search.cli.options import (
    IndexOpt, JsonOpt, fail as _fail,
)
from km_search.errors import KmError, NothingToPublish
from km_search.settings import Settings, get_settings


def _settings() -> Settings:
    return get_settings()


def ingest(
    paths: Annotated[list[str], typer.Argument(
        help="Files or folders to index, or http(s) URLs of intranet sites to crawl (the pages under each URL).")],
    index: IndexOpt = None,
    as_json: JsonOpt = False,
    full: Annotated[bool, typer.Option("--full", help="Re-process every file, not only the changed ones.")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Stay running and ingest again whenever files change.")] = False,
    ray: Annotated[Optional[str], typer.Option(
        "--ray", help="Parse and embed on this Ray cluster: auto, local or an address (default KM_RAY_ADDRESS; "
                      "docs/scale-out.md).")] = None,
) -> None:
    """Bring the index up to date with PATHS: only new and changed files are parsed and embedded,
    documents of deleted files are dropped, and a new snapshot is published when anything changed.
    A URL is crawled (docs/sources.md): robots.txt is honoured, unchanged pages are not re-embedded.

    Exits 0 when the index is up to date, even if some files failed (they are in the report).
    """
    from rich.console import Console

    from ingest.pipeline import ingest as run_ingest

    from ingest.sources import is_url

    settings = _settings()
    targets: list[Path | str] = [p if is_url(p) else Path(p) for p in paths]
    if watch:
        if ray:
            _fail("--watch ingests on this machine (it keeps the model loaded between runs); "
                  "run `km ingest --ray` from a scheduler instead")
        if any(is_url(p) for p in paths):
            _fail("--watch follows folders; to keep a crawled site current, run `km ingest URL` again "
                  "(e.g. hourly from cron): re-crawls only fetch what changed")
        _watch([Path(p) for p in paths], settings, index, as_json)
        return
    try:
        report = run_ingest(targets, settings, index=index, progress=not as_json, full=full,
                            ray_address=ray or settings.ray_address)
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
        + (f"; {len(report.skipped_files)} files with nothing to index skipped" if report.skipped_files else "")
        + (f"; full rebuild: {report.full_rebuild}" if report.full_rebuild else "")
        + (f"; on Ray, {report.ray_workers} workers" if report.engine == "ray" else "")
    )
    if report.crawl:
        c = report.crawl
        console.print(f"crawl: {c.get('fetched', 0)} URLs fetched ({c.get('not_modified', 0)} not modified), "
                      f"{c.get('robots_disallowed', 0)} disallowed by robots.txt and {c.get('out_of_scope', 0)} out of "
                      f"scope (not fetched), {c.get('not_documents', 0)} not documents, {c.get('duplicates', 0)} "
                      f"duplicates, {c.get('redirects', 0)} redirects")
    for warning in report.warnings if report.crawl else ():  # a crawl cut short says so
        console.print(f"[yellow]warning:[/] {warning}")
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


def add_ingest_commands(app: typer.Typer) -> None:
    app.command()(ingest)
