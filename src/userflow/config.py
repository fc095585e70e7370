"""Settings from the environment (UF_*), one typed object built once.

Every UF_* variable the code reads is a field of `Settings`, named after it:
field `strimzi_namespace` is UF_STRIMZI_NAMESPACE. No other module reads UF_*
from the environment; processes get a `Settings` from their caller.

`.local/env` (written by `make services`) exports the local defaults; in
Kubernetes the chart sets the same variables.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Final, Literal, get_type_hints

from userflow import topics

# The processes that talk to PostgreSQL, each as its own role (sql/bootstrap.sql).
Role = Literal["migrate", "ingest", "consumer", "operator", "reader"]


@dataclass(frozen=True, slots=True)
class Settings:
    """Every process's settings; each field is read from its UF_* variable (from_environ)."""

    database_url: str = "postgresql://userflow@127.0.0.1:55432/userflow"
    kafka_bootstrap: str = "127.0.0.1:59092"
    # Topic names: <prefix>.<tenant>, <prefix>.shared, <prefix>.dlq (topics.py).
    topic_prefix: str = "userflow.events"
    consumer_group: str = "userflow-consumer"
    # Consumer batching: a batch closes at whichever limit comes first.
    batch_max_events: int = 5000
    batch_max_seconds: float = 0.5
    # Consumer process i serves its Prometheus metrics on this port + i; 0: none.
    consumer_metrics_port: int = 0
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
    # The migrations; empty: a checkout's sql/ folder (store/migrate.py). The image
    # sets /app/sql, since an installed package has no sql/ beside it.
    sql_dir: str = ""
    # Where the operator puts dedicated tenants' KafkaTopics; empty means no Strimzi
    # (topics are auto-created by Kafka or made by hand) and it leaves topics alone.
    strimzi_namespace: str = ""
    # The Kafka resource those KafkaTopics belong to, and their replicas.
    strimzi_cluster: str = "userflow"
    strimzi_topic_replicas: int = 1
    # How often the operator re-checks each Company for drift (a deleted Secret, row or topic).
    operator_drift_seconds: float = 20.0
    # How long a rotated-out key keeps working.
    operator_key_grace_seconds: float = 3600.0
    # The operator's connection pool: one connection kept open, at most this many, and
    # how long a handler waits for one before the database counts as unavailable.
    operator_db_pool_max: int = 4
    operator_db_wait_seconds: float = 10.0
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
    # --- Query API (`userflow api`) ------------------------------------------
    # A question may run this long before it is cancelled (503 query_timeout).
    api_statement_timeout_ms: int = 20_000
    # Connections to PostgreSQL per API worker.
    api_pool_max: int = 8
    # work_mem of a question's transaction (MB): its sorts and hashes stay in memory.
    api_work_mem_mb: int = 32
    # When > 0, the API serves /metrics on this port and not on its main port.
    api_metrics_port: int = 0
    # --- AI analyst (`userflow mcp`) -------------------------------------------
    # The tenant's read key for the stdio transport (Claude Desktop starts one
    # server per tenant); the HTTP transport takes a key per request instead.
    read_key: str = ""
    # run_sql: how long one statement may run, and how much of its answer comes back
    # (rows, and bytes of their JSON); the rest is cut and counted.
    mcp_sql_timeout_ms: int = 10_000
    mcp_sql_max_rows: int = 500
    mcp_sql_max_bytes: int = 1_000_000
    # --- Reports (`userflow report`) ---------------------------------------------
    # The Claude model that writes a report's narrative (the anthropic SDK reads
    # ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL itself); the one place it is named.
    ai_model: str = "claude-sonnet-5"
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
    # Grafana's data source (no process logs in as it; sql/014_dashboards.sql).
    role_password_dashboards: str = ""

    def database_url_for(self, role: Role) -> str:
        """The URL of the role a process of this kind logs in as (database_url if it has none)."""
        own: str = getattr(self, f"{role}_database_url")
        return own or self.database_url

    @property
    def shared_topic(self) -> str:
        return topics.shared_topic(self.topic_prefix)

    @property
    def dlq_topic(self) -> str:
        return topics.dlq_topic(self.topic_prefix)


def _truthy(raw: str) -> bool:
    # Anything else is false, so UF_INGEST_DOCS=0 (or =no, or empty) turns it off.
    return raw.strip().lower() in {"1", "true", "yes", "on"}


_PARSERS: Final[dict[type, Callable[[str], object]]] = {
    str: str, int: int, float: float, bool: _truthy,
}
# The fields' real types: under `from __future__ import annotations` a field's
# `type` is only its annotation's text.
_TYPES: Final = get_type_hints(Settings)


def _parse(name: str, raw: str, kind: type) -> object:
    try:
        return _PARSERS[kind](raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a valid {kind.__name__}") from exc


def from_environ(environ: Mapping[str, str] = os.environ) -> Settings:
    """The settings that `environ` gives; a field whose variable is unset keeps its default.

    A number left empty (`UF_CONSUMER_METRICS_PORT=`) keeps its default too: that
    is how the metrics endpoint has always been turned off. A value that is not a
    number of the field's kind raises ValueError naming the variable.
    """
    values: dict[str, object] = {}
    for field in fields(Settings):
        name = f"UF_{field.name.upper()}"
        raw = environ.get(name)
        kind = _TYPES[field.name]
        if raw is None or (raw == "" and kind in (int, float)):
            continue
        values[field.name] = _parse(name, raw, kind)
    return Settings(**values)  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def settings() -> Settings:
    return from_environ()
