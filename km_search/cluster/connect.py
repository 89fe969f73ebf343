"""Joining a Ray cluster from `km ingest --ray` or `km serve --ray`."""

from __future__ import annotations

import logging
import os

from km_search.errors import ClusterUnavailable


def connect(address: str) -> dict[str, float]:
    """Join the cluster at `address` and return its resources (e.g. {"CPU": 2.0, ...}).

    `auto`: RAY_ADDRESS, else the cluster `ray start --head` made on this machine; `local`: start a
    cluster in this process (for trying it out; it ends with the process); anything else is passed
    to `ray.init` (`ray://head:10001`, `10.0.0.5:6379`). Joining twice is joining once.
    """
    import ray

    if not ray.is_initialized():
        _reachable(os.environ.get("RAY_ADDRESS", "") if address == "auto" else address)
        options = {"logging_level": logging.WARNING, "log_to_driver": False, "configure_logging": True}
        try:
            if address == "local":
                ray.init(include_dashboard=False, **options)
            else:
                ray.init(address=(os.environ.get("RAY_ADDRESS") or "auto") if address == "auto" else address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ClusterUnavailable(
                f"no Ray cluster at {address!r} ({exc}); start one with `ray start --head` "
                "(docs/scale-out.md), or use `--ray local` for one inside this process"
            ) from exc
    return dict(ray.cluster_resources())


def _reachable(address: str) -> None:
    """Fail at once on a GCS address nobody listens on (ray.init would wait minutes for it)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" without RAY_ADDRESS, "local": ray.init answers quickly itself
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise ClusterUnavailable(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with `ray start --head` "
            "(docs/scale-out.md), or use `--ray local` for one inside this process"
        ) from exc
