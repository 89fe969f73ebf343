"""`km eval` (retrieval quality on a labelled set) and `km tune` (adapt the model to an index)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from km_search.cli.options import (
    IndexOpt, JsonOpt, fail as _fail,
)
from km_search.errors import KmError
from km_search.settings import Settings, get_settings


def _settings() -> Settings:
    return get_settings()


def evaluate(
    set_dir: Annotated[Path, typer.Argument(help="A labelled set: corpus.jsonl+qrels.tsv (passages) and/or docs/+gold.jsonl (end to end).")],
    kind: Annotated[str, typer.Option(help="passages, e2e or both (default: whatever the set has).")] = "auto",
    modes: Annotated[str, typer.Option("--modes", help="Comma-separated retrieval modes to compare.")] = "hybrid",
    docs: Annotated[Optional[Path], typer.Option(help="Documents to ingest for e2e (default SET_DIR/docs).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure retrieval quality (nDCG@10, Recall@10/100, MRR@10, Hit@k, latency) on a labelled set."""
    from km_search.embedding.embedder import Embedder
    from evaluation.retrieval import evaluate_end_to_end, evaluate_passages

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
    from km_search.index.snapshot import Snapshot
    from km_search.embedding.tuning import fine_tune, mine_pairs

    settings = _settings()
    name = index or settings.index
    try:
        snapshot = Snapshot.open(settings.index_path(name), name)
        base = resolve_model_path(snapshot.manifest.get("model", {}).get("name") or settings.model)
    except KmError as exc:
        _fail(str(exc))
    pairs = mine_pairs(snapshot.passage_texts(), max_pairs=max_pairs)
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


def add_evaluate_commands(app: typer.Typer) -> None:
    app.command(name="eval")(evaluate)
    app.command()(tune)
