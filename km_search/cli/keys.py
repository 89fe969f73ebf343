"""`km keys create|list|revoke`: API keys for KM_AUTH=keys, registered on the `km` app by app.py.

The key is printed once, as the last word of `km keys create`'s output; only its hash is stored.
"""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from km_search.cli.options import JsonOpt, fail as _fail
from km_search.errors import KmError
from km_search.settings import get_settings

keys_app = typer.Typer(help="API keys for KM_AUTH=keys: create, list, revoke.", no_args_is_help=True)


def _store():
    from km_search.access.keys import KeyStore

    return KeyStore(get_settings().keys_path())


@keys_app.command()
def create(
    role: Annotated[str, typer.Option(help="reader (search, ask, feedback) or admin (also ingest, upload, "
                                      "delete, keys, analytics).")] = "reader",
    groups: Annotated[str, typer.Option(help="Comma-separated groups whose documents the key may read, besides "
                                        "'public' (e.g. hr,leads); '*' reads every document.")] = "",
    name: Annotated[Optional[str], typer.Option(help="A label: whose key or what for.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key and print it (the last word of the output). It is shown only this once."""
    try:
        key, info = _store().create(role, groups, name or "")
    except ValueError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps({**info.to_json(), "key": key}))
        return
    shown = ",".join(info.groups) or "public only"
    typer.echo(f"created key {info.id} '{info.name}' (role {info.role}, groups {shown}); "
               f"store it now, it is not shown again: {key}")


@keys_app.command(name="list")
def list_keys(as_json: JsonOpt = False) -> None:
    """The keys with their id, name, role, groups, created, revoked and last used times (never the keys)."""
    infos = _store().all()
    if as_json:
        typer.echo(json.dumps({"keys": [i.to_json() for i in infos]}, indent=2))
        return
    if not infos:
        typer.echo("no keys: `km keys create --role reader --groups ...` makes one")
    for i in infos:
        state = f"revoked {i.revoked_at}" if i.revoked_at else f"last used {i.last_used or 'never'}"
        typer.echo(f"{i.id:>4}  {i.name:<24} {i.role:<6} groups={','.join(i.groups) or '-':<20} "
                   f"created {i.created}  {state}")


@keys_app.command()
def revoke(key_id: Annotated[int, typer.Argument(help="The key's id, from `km keys list`.")]) -> None:
    """Refuse a key from now on (running servers check every request)."""
    try:
        info = _store().revoke(key_id)
    except KmError as exc:
        _fail(str(exc))
    typer.echo(f"revoked key {info.id} '{info.name}' at {info.revoked_at}")


def add_key_commands(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
