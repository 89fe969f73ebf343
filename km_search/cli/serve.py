"""`km serve` and `km stats`: run the HTTP API over an index, or say what an index holds."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Optional

import typer

from km_search.cli.options import (
    IndexOpt, JsonOpt, fail as _fail,
)
from km_search.errors import KmError
from km_search.settings import Settings, get_settings


def _settings() -> Settings:
    return get_settings()


def serve(
    index: IndexOpt = None,
    host: Annotated[Optional[str], typer.Option(help="Bind address (default KM_HOST).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default KM_PORT).")] = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from km_search.http.app import create_app
    from km_search.service import SearchService

    settings = _settings()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from km_search.errors import AuthConfigError

    try:
        app_ = create_app(settings, SearchService(settings, index))
    except AuthConfigError as exc:
        _fail(str(exc))
    # proxy_headers off: the client address must be the real peer, which KM_TRUSTED_PROXIES and
    # the rate limit judge; X-Forwarded-For from anyone would otherwise rewrite it.
    uvicorn.run(app_, host=host or settings.host, port=port or settings.port, log_level="info", proxy_headers=False)


def stats(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Show what an index holds."""
    from km_search.index.snapshot import Snapshot

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


def add_serve_commands(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(stats)
