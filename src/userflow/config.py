"""Settings from the environment (UF_*), one typed object built once.

`.local/env` (written by `make services`) exports the local defaults; in
Kubernetes the chart sets the same variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = "postgresql://userflow@127.0.0.1:55432/userflow"
    kafka_bootstrap: str = "127.0.0.1:59092"
    # Topic naming: userflow.events.<tenant>, userflow.events.shared, userflow.events.dlq
    topic_prefix: str = "userflow.events"
    consumer_group: str = "userflow-consumer"
    # Consumer batching: a batch closes at whichever limit comes first.
    batch_max_events: int = 5000
    batch_max_seconds: float = 0.5
    # Ingest limits (bytes); DESIGN: 500 KB a request, 32 KB an event.
    max_request_bytes: int = 500 * 1024
    max_event_bytes: int = 32 * 1024
    # How long an ingest request waits for Kafka's acknowledgement before 503.
    produce_timeout_seconds: float = 10.0
    # Producer queue limit; when full the ingest answers 429.
    producer_queue_max_messages: int = 200_000
    # How often the ingest reloads api keys and tenant settings.
    tenant_cache_seconds: float = 5.0
    # Events may not be further ahead of the server clock than this.
    max_future_seconds: int = 86_400
    # A MaxMind-format City database; when unset only the country is looked up.
    geoip_city_db: str = ""
    # Trust X-Forwarded-For from the proxy in front of the ingest (ingress).
    trust_forwarded_for: bool = True
    log_level: str = "INFO"
    service_name: str = "userflow"

    @property
    def shared_topic(self) -> str:
        return f"{self.topic_prefix}.shared"

    @property
    def dlq_topic(self) -> str:
        return f"{self.topic_prefix}.dlq"

    def tenant_topic(self, slug: str) -> str:
        return f"{self.topic_prefix}.{slug}"


def _coerce(raw: str, kind: type) -> object:
    if kind is bool:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if kind is int:
        return int(raw)
    if kind is float:
        return float(raw)
    return raw


def from_environ(environ: dict[str, str] | os._Environ[str] = os.environ) -> Settings:
    values: dict[str, object] = {}
    for field in fields(Settings):
        raw = environ.get(f"UF_{field.name.upper()}")
        if raw is not None:
            kind = type(field.default)
            values[field.name] = _coerce(raw, kind)
    return Settings(**values)  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def settings() -> Settings:
    return from_environ()
