"""Running the ingest app (and the query API) under gunicorn with uvicorn workers."""

from __future__ import annotations

import importlib
import logging
import os
import tempfile
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from uvicorn_worker import UvicornWorker

from userflow.config import Settings


class IngestWorker(UvicornWorker):  # type: ignore[misc]
    """uvicorn without its forwarded-header handling.

    uvicorn rewrites the client's address from X-Forwarded-For when the peer
    is in `forwarded_allow_ips` (127.0.0.1 by default), before the app sees
    the request; the ingest decides that itself, from UF_TRUSTED_PROXIES
    (userflow.ingest.forwarded).
    """

    CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, "proxy_headers": False}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Our own loggers write where gunicorn's error log does, one line a record,
        # as uvicorn_worker does for uvicorn's.
        ours = logging.getLogger("userflow")
        ours.handlers = self.log.error_log.handlers
        ours.setLevel(self.log.error_log.level)
        ours.propagate = False


def _serve_metrics(port: int) -> Any:
    """A gunicorn `when_ready` hook: the master serves every worker's metrics on `port`."""

    def when_ready(_: Arbiter) -> None:
        # Imported here, once PROMETHEUS_MULTIPROC_DIR is set: prometheus_client picks its
        # single- or multi-process values at import, and the workers fork from this process.
        from prometheus_client import CollectorRegistry, multiprocess, start_http_server

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        start_http_server(port, registry=registry)

    return when_ready


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any], factory: str) -> None:
        self._options = options
        self._factory = factory
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        module, _, name = self._factory.partition(":")
        return getattr(importlib.import_module(module), name)()


def serve(settings: Settings, host: str, port: int, workers: int,
          factory: str = "userflow.ingest.app:create_app", metrics_port: int | None = None) -> None:
    """Serve the app `factory` ("module:function") makes; the ingest's unless told."""
    # Every worker writes its metrics here, so /metrics can sum them.
    metrics_dir = os.environ.setdefault(
        "PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="userflow-metrics-"))
    os.makedirs(metrics_dir, exist_ok=True)
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "userflow.ingest.server.IngestWorker",
        "loglevel": settings.log_level.lower(),
        # Keep-alive matters: SDKs reuse connections for their batches.
        "keepalive": 75,
        # The kernel spreads connections over the workers; without it one
        # worker takes most keep-alive connections and the other idles.
        "reuse_port": True,
        "graceful_timeout": 20,
        "timeout": 60,
        "accesslog": None,
    }
    port_of_metrics = settings.ingest_metrics_port if metrics_port is None else metrics_port
    if port_of_metrics:
        options["when_ready"] = _serve_metrics(port_of_metrics)
    _Gunicorn(options, factory).run()
