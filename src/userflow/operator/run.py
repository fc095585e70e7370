"""`userflow operator`: kopf's loop with our registry and a liveness endpoint."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import kopf

from userflow.config import Settings
from userflow.operator.handlers import build_registry


def run(config: Settings, *, namespaces: Sequence[str] = (), clusterwide: bool = False,
        health_port: int | None = 8081) -> None:
    endpoint = f"http://0.0.0.0:{health_port}/healthz" if health_port else None
    level = config.log_level.upper()
    # kopf's own set-up knows DEBUG, INFO and WARNING; the root level then
    # follows UF_LOG_LEVEL exactly (ERROR and CRITICAL too).
    kopf.configure(debug=level == "DEBUG", quiet=level in ("WARNING", "ERROR", "CRITICAL"))
    logging.getLogger().setLevel(level)
    kopf.run(registry=build_registry(config), clusterwide=clusterwide, namespaces=list(namespaces),
             standalone=True, liveness_endpoint=endpoint)
