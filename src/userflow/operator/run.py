"""`userflow operator`: kopf's loop with our registry and a liveness endpoint."""

from __future__ import annotations

from collections.abc import Sequence

import kopf

from userflow.operator.handlers import build_registry


def run(*, namespaces: Sequence[str] = (), clusterwide: bool = False,
        health_port: int | None = 8081) -> None:
    endpoint = f"http://0.0.0.0:{health_port}/healthz" if health_port else None
    kopf.configure(verbose=False)
    kopf.run(registry=build_registry(), clusterwide=clusterwide, namespaces=list(namespaces),
             standalone=True, liveness_endpoint=endpoint)
