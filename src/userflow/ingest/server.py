"""Running the ingest app under gunicorn with uvicorn workers."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from gunicorn.app.base import BaseApplication

from userflow.config import Settings


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from userflow.ingest.app import create_app

        return create_app()


def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    # Every worker writes its metrics here, so /metrics can sum them.
    metrics_dir = os.environ.setdefault(
        "PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="userflow-ingest-metrics-"))
    os.makedirs(metrics_dir, exist_ok=True)
    _Gunicorn({
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "uvicorn_worker.UvicornWorker",
        "loglevel": settings.log_level.lower(),
        # Keep-alive matters: SDKs reuse connections for their batches.
        "keepalive": 75,
        # The kernel spreads connections over the workers; without it one
        # worker takes most keep-alive connections and the other idles.
        "reuse_port": True,
        "graceful_timeout": 20,
        "timeout": 60,
        "accesslog": None,
    }).run()
