"""The ingest's Prometheus metrics.

/metrics sums every gunicorn worker's (userflow.telemetry.exposition).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from prometheus_client import Counter

if TYPE_CHECKING:  # errors imports these metrics, and accept → tenants → cors → errors
    from userflow.ingest.accept import Verdict

EVENTS = Counter("userflow_ingest_events_total", "Events answered by the ingest",
                 ["endpoint", "verdict"])
REJECTIONS = Counter("userflow_ingest_rejections_total", "Rejected events by field",
                     ["endpoint", "field"])
# Whole requests turned away (401, 403 origin, 413, 415, 429 rate limit or
# full queue, 503 Kafka down...): what an SRE alerts on.
REFUSED = Counter("userflow_ingest_refused_requests_total",
                  "Requests answered with an error, by status and code", ["status", "code"])


def count(endpoint: str, verdicts: Sequence[Verdict]) -> None:
    accepted = sum(v.accepted for v in verdicts)
    if accepted:
        EVENTS.labels(endpoint, "accepted").inc(accepted)
    if accepted != len(verdicts):
        EVENTS.labels(endpoint, "rejected").inc(len(verdicts) - accepted)
        for verdict in verdicts:
            for error in verdict.errors:
                # The first path segment only: label values must stay few.
                REJECTIONS.labels(endpoint, error.field.split(".", 1)[0]).inc()
