"""/metrics bodies: one process's metrics, or every gunicorn worker's summed.

Under gunicorn each worker is a process; with PROMETHEUS_MULTIPROC_DIR set
(`userflow ingest` and `userflow api` set it) the exposition sums them all.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess


def exposition() -> tuple[bytes, str]:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
