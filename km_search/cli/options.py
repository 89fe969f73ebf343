"""Options and helpers shared by every `km` command module (cli/*.py)."""

from __future__ import annotations

from typing import Annotated, NoReturn, Optional

import typer

IndexOpt = Annotated[Optional[str], typer.Option("--index", "-i", help="Index name (default: KM_INDEX or 'default').")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
# Filters, the same as the HTTP API's query parameters; repeat an option for any of several values.
TypeOpt = Annotated[Optional[list[str]], typer.Option("--type", help="decision, lesson, howto, policy, meeting, other.")]
ProjectOpt = Annotated[Optional[list[str]], typer.Option("--project", help="Project (case-insensitive).")]
AuthorOpt = Annotated[Optional[list[str]], typer.Option("--author", help="Part of an author's name or email.")]
TagOpt = Annotated[Optional[list[str]], typer.Option("--tag", help="Tag (case-insensitive).")]
PathOpt = Annotated[Optional[list[str]], typer.Option("--path", help="Document path prefix, e.g. billing/decisions/.")]
AfterOpt = Annotated[Optional[str], typer.Option("--modified-after", help="YYYY-MM-DD, inclusive.")]
BeforeOpt = Annotated[Optional[str], typer.Option("--modified-before", help="YYYY-MM-DD, inclusive.")]


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr and a non-zero exit: how every command reports a domain error."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
