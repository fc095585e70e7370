"""Per-tenant rate limits: token buckets counted in events, on a clock the test moves."""

from __future__ import annotations

import uuid

import pytest

from userflow.ingest.errors import RateLimited
from userflow.ingest.ratelimit import RateLimits, TokenBucket
from userflow.ingest.tenants import Tenant


def tenant(rate: int | None, company: uuid.UUID | None = None) -> Tenant:
    return Tenant(company or uuid.uuid4(), "acme", 90, "shared", False, rate_limit_per_second=rate)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_starts_full_takes_whole_requests_and_refills() -> None:
    bucket = TokenBucket(150, now=0.0)
    assert bucket.take(100, now=0.0) == 0.0
    # 50 left: a batch of 100 is refused whole and told how long to wait.
    assert bucket.take(100, now=0.0) == pytest.approx(50 / 150)
    assert bucket.take(50, now=0.0) == 0.0
    assert bucket.take(1, now=0.0) == pytest.approx(1 / 150)
    assert bucket.take(150, now=1.0) == 0.0
    # It never saves more than one second's worth, however long it idles.
    assert bucket.take(150, now=100.0) == 0.0
    assert bucket.take(1, now=100.0) > 0


def test_a_request_larger_than_the_bucket_waits_for_a_full_one_then_leaves_a_debt() -> None:
    bucket = TokenBucket(50, now=0.0)
    assert bucket.take(10, now=0.0) == 0.0
    assert bucket.take(100, now=0.0) == pytest.approx(10 / 50)   # until the bucket is full
    assert bucket.take(100, now=0.2) == 0.0                      # 50 in debt now
    assert bucket.take(1, now=0.2) == pytest.approx(51 / 50)     # the debt is paid first
    assert bucket.take(100, now=2.2) == 0.0                      # 100 events in 2 s: 50 a second


def test_limits_are_per_company_and_a_refusal_says_when_to_retry() -> None:
    clock = Clock()
    limits = RateLimits(clock)
    slow, other = tenant(150), tenant(150)
    limits.take(slow, 100)
    with pytest.raises(RateLimited) as refused:
        limits.take(slow, 100)
    assert refused.value.status == 429 and refused.value.code == "rate_limited"
    assert refused.value.headers == {"Retry-After": "1"}
    limits.take(other, 100)   # its own bucket
    limits.take(slow, 50)     # what was left: the refused request took nothing
    clock.now += 1.0
    limits.take(slow, 150)


def test_retry_after_rounds_up_to_whole_seconds() -> None:
    clock = Clock()
    limits = RateLimits(clock)
    t = tenant(4)
    limits.take(t, 4)
    with pytest.raises(RateLimited) as refused:
        limits.take(t, 3)    # 3 tokens at 4 a second: 0.75 s
    assert refused.value.headers == {"Retry-After": "1"}
    clock.now += 1.0
    limits.take(t, 10)       # a full bucket lets a big batch through, 6 in debt
    with pytest.raises(RateLimited) as refused:
        limits.take(t, 1)    # (6 + 1) / 4 = 1.75 s
    assert refused.value.headers == {"Retry-After": "2"}


def test_a_changed_limit_starts_a_fresh_bucket() -> None:
    limits = RateLimits(Clock())
    t = tenant(10)
    limits.take(t, 10)
    with pytest.raises(RateLimited):
        limits.take(t, 1)
    limits.take(tenant(20, t.company_id), 20)


def test_no_limit_takes_anything() -> None:
    limits = RateLimits(Clock())
    t = tenant(None)
    for _ in range(100):
        limits.take(t, 10_000)
