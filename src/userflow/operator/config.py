"""The operator's settings, from the environment (UF_*), as the chart sets them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from userflow.config import from_environ


@dataclass(frozen=True, slots=True)
class OperatorConfig:
    database_url: str
    # Topic names: <prefix>.<slug>; the KafkaTopic object is <prefix with dashes>-<slug>.
    topic_prefix: str = "userflow.events"
    shared_topic: str = "userflow.events.shared"
    # Where dedicated tenants' KafkaTopics go; empty means no Strimzi (topics are
    # auto-created by Kafka or made by hand) and the operator leaves topics alone.
    strimzi_namespace: str = ""
    strimzi_cluster: str = "userflow"
    topic_replicas: int = 1
    # How often each Company is re-checked for drift (a deleted Secret, row or topic).
    drift_seconds: float = 20.0
    # How long a rotated-out key keeps working.
    key_grace_seconds: float = 3600.0
    # The operator's connection pool: one connection kept open, at most this many, and
    # how long a handler waits for one before the database counts as unavailable.
    db_pool_max: int = 4
    db_wait_seconds: float = 10.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> OperatorConfig:
        base = from_environ(dict(environ))
        return cls(
            database_url=base.database_url_for("operator"),
            topic_prefix=base.topic_prefix,
            shared_topic=base.shared_topic,
            strimzi_namespace=environ.get("UF_STRIMZI_NAMESPACE", ""),
            strimzi_cluster=environ.get("UF_STRIMZI_CLUSTER", "userflow"),
            topic_replicas=int(environ.get("UF_STRIMZI_TOPIC_REPLICAS", "1")),
            drift_seconds=float(environ.get("UF_OPERATOR_DRIFT_SECONDS", "20")),
            key_grace_seconds=float(environ.get("UF_OPERATOR_KEY_GRACE_SECONDS", "3600")),
            db_pool_max=int(environ.get("UF_OPERATOR_DB_POOL_MAX", "4")),
            db_wait_seconds=float(environ.get("UF_OPERATOR_DB_WAIT_SECONDS", "10")),
        )
