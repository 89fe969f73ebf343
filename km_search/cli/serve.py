"""`km serve` and `km stats`: run the HTTP API over an index, or say what an index holds."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

from km_search.cli.options import (
    IndexOpt, JsonOpt, fail as _fail,
)
from km_search.errors import KmError
from km_search.settings import Settings, cpu_cores, get_settings


def _settings() -> Settings:
    return get_settings()


def serve(
    index: IndexOpt = None,
    host: Annotated[Optional[str], typer.Option(help="Bind address (default KM_HOST).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default KM_PORT).")] = None,
    workers: Annotated[Optional[int], typer.Option(
        min=1, help="Server processes (default KM_WORKERS, else one per CPU core, at most 4).")] = None,
    ray: Annotated[Optional[str], typer.Option(
        "--ray", help="Serve the shards on this Ray cluster, one Ray Serve deployment each: auto, local or an "
                      "address (default KM_RAY_ADDRESS; docs/scale-out.md).")] = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from km_search.http.app import create_app
    from km_search.service import SearchService

    settings = _settings()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from km_search.errors import AuthConfigError, ClusterUnavailable

    ray = ray or settings.ray_address
    count = workers or settings.workers or (1 if ray else default_workers())
    if ray and count > 1:
        _fail("--ray serves with one front process (it owns the shard deployments); leave --workers at 1")
    # Every process knows how many they are: each embeds queries on its share of the cores.
    settings = settings.model_copy(update={"workers": count})
    os.environ["KM_WORKERS"] = str(count)
    try:  # checks the configuration (and that the cluster answers) before serving
        if ray:
            from km_search.cluster.connect import connect

            connect(ray)
        app_ = create_app(settings, SearchService(settings, index, ray_address=ray))
    except (AuthConfigError, ClusterUnavailable) as exc:
        _fail(str(exc))
    # proxy_headers off: the client address must be the real peer, which KM_TRUSTED_PROXIES and
    # the rate limit judge; X-Forwarded-For from anyone would otherwise rewrite it.
    options = dict(host=host or settings.host, port=port or settings.port, log_level="info", proxy_headers=False)
    if count == 1:
        uvicorn.run(app_, **options)
        return
    # Several processes on one socket: each builds its app from the settings (the factory), maps the
    # same snapshot files (the page cache holds them once), follows new snapshots itself and holds
    # what it reads for garbage collection under its own pid; the query log is one SQLite file in
    # WAL mode that every process appends to. The index chosen here reaches them as KM_INDEX.
    if index:
        os.environ["KM_INDEX"] = index
    with tempfile.TemporaryDirectory(prefix="km-serve-") as shared:
        if settings.rate_limit and not settings.rate_limit_file:  # one limit for all the processes
            os.environ["KM_RATE_LIMIT_FILE"] = str(Path(shared) / "ratelimit.sqlite")
        config = uvicorn.Config("km_search.http.app:create_app", factory=True, workers=count, **options)
        Multiprocess(config, sockets=[_listening_socket(config.host, config.port)]).run()


def default_workers() -> int:
    """One server process per CPU core this process may use, at most 4: the Python of a request
    (fusion, snippets, the response) holds its process' interpreter lock, so concurrent users are
    answered side by side only by several processes (measured in docs/performance.md); each
    holds its own model."""
    return max(1, min(4, cpu_cores()))


def _listening_socket(host: str, port: int):
    """The shared socket, made as uvicorn's single process makes its own: with proto IPPROTO_TCP, which
    the accepted connections inherit, so asyncio sets TCP_NODELAY on them. (uvicorn's bind_socket
    leaves proto 0: responses larger than a segment then wait ~40 ms for the delayed ACK, measured
    here: 64 ms a search on a keep-alive connection against 24 ms.)"""
    import socket

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port}: {exc}")
    sock.set_inheritable(True)
    return sock


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
