"""Settings from the environment (UF_*), one typed object built once.

`.local/env` (written by `make services`) exports the local defaults; in
Kubernetes the chart sets the same variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Literal

# The processes that talk to PostgreSQL, each as its own role (sql/bootstrap.sql).
Role = Literal["migrate", "ingest", "consumer", "operator", "reader"]


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
    log_level: str = "INFO"
    service_name: str = "userflow"
    # --- Hardening (what a hostile or careless client may cost) ---------------
    # Proxies whose X-Forwarded-For is believed: comma-separated IPs or CIDRs
    # (the ingress controller's). Empty: nobody's; the socket's address is the client's.
    trusted_proxies: str = ""
    # How long a request's body may take to arrive (408 after).
    body_read_timeout_seconds: float = 10.0
    # Messages in one /v1/batch (Amplitude takes 2,000 a request; Segment's
    # libraries send 100 to 500).
    max_batch_messages: int = 2000
    # A batch's answer lists this many rejected events with their errors (and counts the rest).
    max_error_details: int = 100
    # When > 0, the ingest serves /metrics on this port (all interfaces) and
    # not on its main port, so a NetworkPolicy can keep it internal.
    ingest_metrics_port: int = 0
    # /docs, /redoc and /openapi.json on the ingest.
    ingest_docs: bool = True
    # --- PostgreSQL roles (least privilege): each process its own login ------
    # Each falls back to database_url when empty.
    migrate_database_url: str = ""
    ingest_database_url: str = ""
    consumer_database_url: str = ""
    operator_database_url: str = ""
    reader_database_url: str = ""
    # A superuser's URL, for `userflow db bootstrap` only (it makes the roles).
    admin_database_url: str = ""
    # The roles' passwords `userflow db bootstrap` sets (empty: left as they are).
    role_password_migrator: str = ""
    role_password_consumer: str = ""
    role_password_ingest: str = ""
    role_password_operator: str = ""
    role_password_reader: str = ""

    def database_url_for(self, role: Role) -> str:
        """The URL of the role a process of this kind logs in as (database_url if it has none)."""
        own: str = getattr(self, f"{role}_database_url")
        return own or self.database_url

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
