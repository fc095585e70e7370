"""Each tenant's `rate_limit_per_second`, counted in events, per worker process.

A token bucket per company: it holds one second's worth of events and starts
full. A request is taken whole or not at all, so a batch is never half
accepted. A request larger than the bucket (a batch of 100 against a limit of
50) is taken once the bucket is full and leaves it in debt, so it is never
starved and the average still holds.

Each gunicorn worker keeps its own buckets, so a tenant spread over N workers
can get up to N times its limit; one keep-alive connection stays on one
worker and gets exactly its limit. Dividing by N would starve that common
case, so the limit is per worker, as the README says.

Not the simulator's TokenBucket: that one blocks its caller until the tokens
come; this one answers at once, from the event loop, without a lock.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable

from userflow.ingest.errors import RateLimited
from userflow.ingest.tenants import Tenant


class TokenBucket:
    __slots__ = ("_last", "_tokens", "rate")

    def __init__(self, rate: int, now: float) -> None:
        self.rate = rate
        self._tokens = float(rate)
        self._last = now

    def take(self, cost: int, now: float) -> float:
        """Take `cost` tokens and return 0.0, or take none and return the seconds to wait."""
        tokens = min(float(self.rate), self._tokens + (now - self._last) * self.rate)
        self._last = now
        needed = min(cost, self.rate)
        if tokens < needed:
            self._tokens = tokens
            return (needed - tokens) / self.rate
        self._tokens = tokens - cost
        return 0.0


class RateLimits:
    """The buckets of this worker, by company; a tenant without a limit has none."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[uuid.UUID, TokenBucket] = {}

    def take(self, tenant: Tenant, events: int) -> None:
        """Count `events` against the tenant's limit, or raise RateLimited having taken none."""
        rate = tenant.rate_limit_per_second
        if rate is None:
            return
        now = self._clock()
        bucket = self._buckets.get(tenant.company_id)
        if bucket is None or bucket.rate != rate:
            # A changed limit starts a fresh, full bucket.
            bucket = self._buckets[tenant.company_id] = TokenBucket(rate, now)
        wait = bucket.take(events, now)
        if wait:
            raise RateLimited(f"over the limit of {rate} events a second; nothing was accepted",
                              retry_after=math.ceil(wait))
