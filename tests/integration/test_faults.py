"""Faults mid-stream: kill -9 the consumer, stop Kafka, crash PostgreSQL.

Each test sends a stream of batches the way an SDK does (retrying a 429/503
or a dropped connection with the same messageIds until it gets a 2xx), breaks
something in the middle, and ends with rows = distinct accepted events and no
duplicate event ids.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from userflow.store.tenants import NewTenant

from .conftest import make_tenant
from .payloads import mixed_batch
from .stack import ROOT, Stack, stack_env, wait_for

pytestmark = pytest.mark.services

SERVICES = ["bash", str(ROOT / "scripts" / "services.sh")]
PRODUCE_TIMEOUT = 4.0


@dataclass
class Sender:
    """Sends `batches` in a thread; retries each until accepted; records every answer."""

    url: str
    key: str
    batches: list[list[dict]]
    pause: float = 0.02
    statuses: list[tuple[float, int]] = field(default_factory=list)
    accepted_ids: set[str] = field(default_factory=set)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with httpx.Client(auth=(self.key, ""), timeout=30) as client:
            for batch in self.batches:
                for _attempt in range(200):
                    try:
                        r = client.post(f"{self.url}/v1/batch", json={"batch": batch})
                    except httpx.TransportError:
                        time.sleep(0.2)
                        continue
                    self.statuses.append((time.monotonic(), r.status_code))
                    if r.status_code == 200:
                        self.accepted_ids.update(
                            v["event_id"] for v in r.json()["results"] if v["status"] == "accepted")
                        break
                    assert r.status_code in (429, 503), r.text
                    assert "Retry-After" in r.headers
                    time.sleep(0.3)
                time.sleep(self.pause)

    def join(self, timeout: float = 300) -> None:
        assert self.thread is not None
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "sender did not finish"


def distinct_and_total(database_url: str, company_id: uuid.UUID) -> tuple[int, int]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT count(DISTINCT event_id), count(*) FROM user_events WHERE company_id = %s",
            (company_id,)).fetchone()


def faulted_stack(service_env: dict[str, str], database_url: str, tmp_path: Path,
                  **settings: str) -> Stack:
    prefix = f"uff{uuid.uuid4().hex[:8]}.events"
    env = stack_env(service_env, database_url, prefix)
    env.update(settings)
    return Stack(env, database_url, tmp_path)


@pytest.fixture
def own_stack(service_env: dict[str, str], database_url: str, tmp_path: Path) -> Iterator[Stack]:
    # A request caught in flight when Kafka goes away waits this long for its
    # acknowledgement before answering 503; later ones are refused at once.
    s = faulted_stack(service_env, database_url, tmp_path,
                      UF_PRODUCE_TIMEOUT_SECONDS=str(PRODUCE_TIMEOUT))
    s.start_ingest()
    s.start_consumer()
    yield s
    s.stop()


@pytest.fixture
def fault_tenant(database_url: str) -> NewTenant:
    return make_tenant(database_url, "Faulty")


def batches(n_batches: int, size: int = 100) -> list[list[dict]]:
    return [mixed_batch(size, session=f"s{i % 7}") for i in range(n_batches)]


def assert_exact(stack: Stack, tenant: NewTenant, sender: Sender) -> None:
    expected = len(sender.accepted_ids)
    assert expected == sum(len(b) for b in sender.batches)
    stack.wait_rows(expected, tenant.company_id, timeout=180)
    distinct, total = distinct_and_total(stack.database_url, tenant.company_id)
    assert (distinct, total) == (expected, expected)


def test_kill_9_the_consumer_mid_stream(own_stack: Stack, fault_tenant: NewTenant) -> None:
    sender = Sender(own_stack.url, fault_tenant.write_key, batches(150))
    sender.start()
    wait_for(lambda: own_stack.rows(fault_tenant.company_id) > 1000, 60, "rows to start arriving")
    assert own_stack.consumer is not None
    own_stack.consumer.kill9()
    time.sleep(1.0)
    own_stack.start_consumer()
    sender.join()
    assert_exact(own_stack, fault_tenant, sender)


def test_kafka_down_mid_stream_answers_503_then_recovers(own_stack: Stack,
                                                        fault_tenant: NewTenant) -> None:
    sender = Sender(own_stack.url, fault_tenant.write_key, batches(120), pause=0.05)
    sender.start()
    wait_for(lambda: own_stack.rows(fault_tenant.company_id) > 500, 60, "rows to start arriving")
    subprocess.run([*SERVICES, "kafka-stop"], check=True, timeout=120)
    down_from = time.monotonic()
    time.sleep(PRODUCE_TIMEOUT + 8.0)
    down_until = time.monotonic()
    subprocess.run([*SERVICES, "kafka-start"], check=True, timeout=180)
    sender.join()
    # Answers given while Kafka was down, after the in-flight request timed out.
    during = Counter(code for t, code in sender.statuses
                     if down_from + PRODUCE_TIMEOUT + 1.5 < t < down_until)
    assert during[503] > 0, f"no 503 while Kafka was down: {during}"
    assert during[200] == 0, f"2xx while Kafka was down: {during}"
    assert_exact(own_stack, fault_tenant, sender)


def test_postgres_crash_mid_stream(own_stack: Stack, fault_tenant: NewTenant) -> None:
    sender = Sender(own_stack.url, fault_tenant.write_key, batches(120))
    sender.start()
    wait_for(lambda: own_stack.rows(fault_tenant.company_id) > 1000, 60, "rows to start arriving")
    subprocess.run([*SERVICES, "pg-kill"], check=True, timeout=60)
    time.sleep(3.0)
    subprocess.run([*SERVICES, "pg-start"], check=True, timeout=120)
    sender.join()
    assert_exact(own_stack, fault_tenant, sender)


def test_full_producer_queue_answers_429_and_the_retry_is_stored_once(
        service_env: dict[str, str], database_url: str, tmp_path: Path,
        fault_tenant: NewTenant) -> None:
    s = faulted_stack(service_env, database_url, tmp_path, UF_PRODUCER_QUEUE_MAX_MESSAGES="10")
    s.start_ingest(workers=1)
    s.start_consumer()
    try:
        batch = mixed_batch(100)
        r = httpx.post(f"{s.url}/v1/batch", json={"batch": batch},
                       auth=(fault_tenant.write_key, ""), timeout=30)
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        # The client retries in smaller batches, as Segment's clients would.
        for i in range(0, 100, 10):
            for _attempt in range(50):
                r = httpx.post(f"{s.url}/v1/batch", json={"batch": batch[i:i + 10]},
                               auth=(fault_tenant.write_key, ""), timeout=30)
                if r.status_code != 429:
                    break
                time.sleep(0.1)
            assert r.status_code == 200, r.text
        assert s.wait_rows(100, fault_tenant.company_id) == 100
    finally:
        s.stop()
