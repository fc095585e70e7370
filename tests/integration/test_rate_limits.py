"""Each tenant's rate_limit_per_second: counted in events, a request taken whole or refused whole."""

from __future__ import annotations

import time

import httpx
import psycopg
import pytest

from userflow.store.tenants import NewTenant

from .conftest import make_tenant
from .payloads import message
from .stack import Stack

pytestmark = pytest.mark.services


def send_batches(stack: Stack, tenant: NewTenant, batches: int, size: int = 100,
                 stop_after_refusals: int | None = None
                 ) -> tuple[list[httpx.Response], set[str], float]:
    """Batches of new events over one keep-alive connection, as an SDK sends them.

    Returns the answers, the ids of the events answered as accepted and the seconds taken.
    """
    answers: list[httpx.Response] = []
    accepted: set[str] = set()
    started = time.monotonic()
    with httpx.Client(base_url=stack.url, auth=(tenant.write_key, ""), timeout=30,
                      headers={"Origin": "https://shop.example"}) as client:
        for _ in range(batches):
            batch = [message("page") for _ in range(size)]
            r = client.post("/v1/batch", json={"batch": batch})
            answers.append(r)
            if r.status_code == 200:
                assert r.json()["accepted"] == size, r.text
                accepted.update(m["messageId"] for m in batch)
            refused = sum(a.status_code == 429 for a in answers)
            if stop_after_refusals is not None and refused >= stop_after_refusals:
                break
    return answers, accepted, time.monotonic() - started


def stored_ids(stack: Stack, tenant: NewTenant) -> set[str]:
    with psycopg.connect(stack.database_url) as conn:
        rows = conn.execute("SELECT event_id::text FROM events WHERE company_id = %s",
                            (tenant.company_id,)).fetchall()
    return {r[0] for r in rows}


def assert_rate_limited(r: httpx.Response) -> int:
    assert r.status_code == 429, r.text
    assert r.json()["code"] == "rate_limited"
    # A browser page may read the answer and its Retry-After.
    assert r.headers["access-control-allow-origin"] == "https://shop.example"
    assert "retry-after" in r.headers["access-control-expose-headers"].lower()
    retry_after = int(r.headers["retry-after"])
    assert retry_after >= 1
    return retry_after


def test_over_the_limit_is_429_and_nothing_of_a_refused_batch_is_stored(
        stack: Stack, database_url: str) -> None:
    rate = 150
    t = make_tenant(database_url, "Limited", company={"rate_limit_per_second": rate})
    answers, accepted, seconds = send_batches(stack, t, batches=60, stop_after_refusals=3)
    statuses = {r.status_code for r in answers}
    assert statuses <= {200, 429}, statuses
    for r in answers:
        if r.status_code == 429:
            assert_rate_limited(r)
    assert sum(r.status_code == 429 for r in answers) == 3
    assert accepted, "the first batch fits in a full bucket"
    # Each worker starts with one second's worth and refills at `rate`.
    assert len(accepted) <= stack.workers * rate * (1 + seconds)
    assert stack.wait_rows(len(accepted), t.company_id) == len(accepted)
    assert stored_ids(stack, t) == accepted


def test_a_batch_larger_than_the_limit_gets_in_once_then_waits(stack: Stack,
                                                             database_url: str) -> None:
    t = make_tenant(database_url, "Tiny", company={"rate_limit_per_second": 1})
    answers, accepted, _ = send_batches(stack, t, batches=stack.workers + 2)
    # The one keep-alive connection stays on one worker, which lets one batch
    # of 100 through on a full bucket and is then 99 events in debt, so every
    # later batch is refused for over a minute.
    assert [r.status_code for r in answers] == [200] + [429] * (stack.workers + 1)
    taken = [r for r in answers if r.status_code == 200]
    assert all(assert_rate_limited(r) > 1 for r in answers if r.status_code != 200)
    assert stack.wait_rows(len(accepted), t.company_id) == len(accepted) == 100 * len(taken)


def test_a_tenant_without_a_limit_is_not_limited(stack: Stack, tenant: NewTenant) -> None:
    answers, accepted, _ = send_batches(stack, tenant, batches=20)
    assert [r.status_code for r in answers] == [200] * 20
    assert stack.wait_rows(2000, tenant.company_id) == 2000
    assert stored_ids(stack, tenant) == accepted
