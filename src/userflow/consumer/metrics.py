"""The consumer's Prometheus metrics.

Each consumer process serves its own registry on its own port
(settings.consumer_metrics_port + process index), which keeps every metric
exact without prometheus_client's multiprocess mode; 0 turns the endpoint off.
"""

from __future__ import annotations

import contextlib
from typing import Final

from prometheus_client import Counter, Gauge, Histogram, start_http_server

EVENTS_CONSUMED: Final = Counter(
    "userflow_consumer_events_consumed", "Messages read from Kafka and committed"
)
ROWS_INSERTED: Final = Counter("userflow_consumer_rows_inserted", "Rows added to user_events")
DUPLICATES_SKIPPED: Final = Counter(
    "userflow_consumer_duplicates_skipped", "Events whose (company_id, event_id) was already stored"
)
DEAD_LETTERED: Final = Counter(
    "userflow_consumer_dead_lettered", "Messages sent to the dead-letter topic", ["reason"]
)
BATCH_SIZE: Final = Histogram(
    "userflow_consumer_batch_size",
    "Messages per committed batch",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000),
)
WRITE_SECONDS: Final = Histogram(
    "userflow_consumer_write_seconds",
    "Time to store one batch in PostgreSQL",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WRITE_FAILURES: Final = Counter(
    "userflow_consumer_write_failures", "Batch writes that failed and will be retried", ["error"]
)
LAG: Final = Gauge(
    "userflow_consumer_lag", "Messages behind the high watermark", ["topic", "partition"]
)


def forget_lag(partitions: list[tuple[str, int]]) -> None:
    """Drop the lag of partitions this process no longer reads, so no stale value lingers."""
    for topic, partition in partitions:
        with contextlib.suppress(KeyError):
            LAG.remove(topic, str(partition))


def serve(base_port: int, process_index: int) -> int:
    """Serve this process's metrics on base_port + process_index; return that port, or 0
    (and serve nothing) when base_port is 0."""
    if base_port == 0:
        return 0
    port = base_port + process_index
    start_http_server(port)
    return port
