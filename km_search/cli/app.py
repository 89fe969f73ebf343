"""The `km` app: every command group registered on one typer app. Heavy imports happen inside each command."""

from __future__ import annotations

import typer

from km_search.cli.answers import add_answer_commands
from km_search.cli.evaluate import add_evaluate_commands
from km_search.cli.ingest import add_ingest_commands
from km_search.cli.keys import add_key_commands
from km_search.cli.search import add_search_commands
from km_search.cli.serve import add_serve_commands

app = typer.Typer(help="km-search: semantic search over your organization's documents.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)

add_ingest_commands(app)  # km ingest
add_search_commands(app)  # km search, experts, decisions, lessons
add_answer_commands(app)  # km ask, gaps, eval-answers
add_serve_commands(app)  # km serve, stats
add_evaluate_commands(app)  # km eval, tune
add_key_commands(app)  # km keys create|list|revoke
