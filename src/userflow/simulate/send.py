"""Sending a simulation to the ingest API: keep-alive connections, paced or flat out, retried.

The transport is urllib3's connection pool, not httpx: the load generator
shares the machine with what it measures (`make bench`), and there it
costs 6 µs of CPU an event in batches of 100 against httpx's 10.
"""

from __future__ import annotations

import base64
import gc
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from gzip import compress as gzip_compress
from queue import Empty, SimpleQueue
from typing import Final

import orjson
import urllib3
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TimeElapsedColumn,
)
from rich.text import Text
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from userflow.simulate.bodies import Body, batch_bodies, single_bodies
from userflow.simulate.generate import Simulation
from userflow.simulate.messages import iso
from userflow.simulate.ratelimit import TokenBucket
from userflow.simulate.report import SendReport

# A server asking for a longer pause than this is not coming back soon enough to wait for.
_LONGEST_RETRY_AFTER_S: Final = 60.0
_backoff: Final = wait_exponential_jitter(multiplier=0.2, max=10.0, jitter=0.2)
# Worth another try: the connection broke, was refused or timed out (or a
# keep-alive one was closed under us); urllib3 raises them as they are, as
# its own retries are off.
_RETRYABLE: Final = (urllib3.exceptions.HTTPError,)


class _Busy(Exception):
    """429 or 503: the server asks to come back later."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        super().__init__(response.status)
        self.response = response


class _Tally:
    """Counters the sending threads share."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent = self.accepted = self.rejected = self.failed = self.requests = self.retries = 0
        self.statuses: Counter[str] = Counter()
        self.rejections: Counter[str] = Counter()
        self.latencies: list[float] = []

    def answer(self, status: str, seconds: float) -> None:
        with self._lock:
            self.requests += 1
            self.statuses[status] += 1
            self.latencies.append(seconds)

    def retry(self) -> None:
        with self._lock:
            self.retries += 1

    def settle(self, body: Body, response: urllib3.BaseHTTPResponse | None) -> None:
        """Counts the final answer to a body: accepted, rejected (with reasons) or failed."""
        accepted, rejected, reasons = _outcome(body, response)
        with self._lock:
            self.sent += body.events
            self.accepted += accepted
            self.rejected += rejected
            self.failed += body.events - accepted - rejected
            self.rejections.update(reasons)

    def report(self, events: int, elapsed: float) -> SendReport:
        latencies = sorted(self.latencies)
        return SendReport(
            events=events,
            sent=self.sent,
            accepted=self.accepted,
            rejected=self.rejected,
            failed=self.failed,
            requests=self.requests,
            retries=self.retries,
            statuses=dict(self.statuses),
            rejections=dict(self.rejections),
            elapsed_seconds=round(elapsed, 3),
            events_per_second=round(self.sent / elapsed, 1) if elapsed > 0 else 0.0,
            latency_p50_ms=_percentile_ms(latencies, 0.50),
            latency_p99_ms=_percentile_ms(latencies, 0.99),
        )


def _percentile_ms(ordered: list[float], q: float) -> float:
    return (
        round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2) if ordered else 0.0
    )


def _outcome(
    body: Body, response: urllib3.BaseHTTPResponse | None
) -> tuple[int, int, Counter[str]]:
    """(accepted, rejected, reasons) from the wire format's answers; anything else is a failure."""
    reasons: Counter[str] = Counter()
    if response is None or response.status not in (200, 400):
        return 0, 0, reasons
    try:
        data = orjson.loads(response.data)
    except orjson.JSONDecodeError:
        return 0, 0, reasons
    if not isinstance(data, dict):
        return 0, 0, reasons
    if isinstance(data.get("results"), list):
        accepted = rejected = 0
        for result in data["results"][: body.events]:
            if result.get("status") == "accepted":
                accepted += 1
            elif result.get("status") == "rejected":
                rejected += 1
                reasons.update(
                    f"{e.get('field')}: {e.get('reason')}" for e in result.get("errors") or ()
                )
        return accepted, rejected, reasons
    if response.status == 200 and data.get("status") == "accepted":
        return body.events, 0, reasons
    if response.status == 400:
        # A whole request refused for one reason: every event in it carries that reason.
        for e in data.get("errors") or ():
            reasons[f"{e.get('field')}: {e.get('reason')}"] += body.events
        return 0, body.events, reasons
    return 0, 0, reasons


def _retry_after(value: str | None) -> float | None:
    """Retry-After (seconds or an HTTP-date) in seconds, capped; None if absent or unreadable."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(_LONGEST_RETRY_AFTER_S, max(0.0, seconds))


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, _Busy):
        after = _retry_after(error.response.headers.get("Retry-After"))
        if after is not None:
            return after
    return _backoff(state)


@dataclass(frozen=True, slots=True)
class _Target:
    pool: urllib3.HTTPConnectionPool
    prefix: str  # the URL's own path, before /v1/...
    headers: dict[str, str]


def _post(target: _Target, body: Body, gzip: bool, tally: _Tally) -> urllib3.BaseHTTPResponse:
    # sentAt is this attempt's moment, so the server's clock-skew correction holds on retries too.
    content = body.with_sent_at(iso(time.time_ns() // 1_000_000))
    if gzip:
        # Speed over ratio: the bodies are JSON and compress well even at level 1.
        content = gzip_compress(content, compresslevel=1)
    started = time.perf_counter()
    try:
        response = target.pool.urlopen(
            "POST", target.prefix + body.path, body=content, headers=target.headers,
            retries=False, redirect=False,
        )
    except _RETRYABLE as exc:
        tally.answer(type(exc).__name__, time.perf_counter() - started)
        raise
    tally.answer(str(response.status), time.perf_counter() - started)
    if response.status in (429, 503):
        raise _Busy(response)
    return response


def _worker(
    target: _Target,
    queue: SimpleQueue[Body],
    bucket: TokenBucket | None,
    tally: _Tally,
    stop: threading.Event,
    advance: Callable[[int], None],
    gzip: bool,
    attempts: int,
) -> None:
    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=_wait,
        retry=retry_if_exception_type((_Busy, *_RETRYABLE)),
        before_sleep=lambda _: tally.retry(),
        reraise=True,
    )
    while not stop.is_set():
        try:
            body = queue.get_nowait()
        except Empty:
            return
        if bucket is not None:
            bucket.take(body.events)
        response: urllib3.BaseHTTPResponse | None
        try:
            # The same bytes (same messageIds) go again on every attempt; the server deduplicates.
            response = retrying(_post, target, body, gzip, tally)
        except _Busy as busy:
            response = busy.response
        except _RETRYABLE:
            response = None
        tally.settle(body, response)
        advance(body.events)
        if response is not None and response.status == 401:
            # A wrong key fails every request the same way; stop instead of sending the rest.
            stop.set()


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:,.0f} events/s", style="progress.data.speed")


@contextmanager
def _progress(show: bool, total: int) -> Iterator[Callable[[int], None]]:
    if not show:
        yield lambda _: None
        return
    columns = (BarColumn(), MofNCompleteColumn(), _RateColumn(), TimeElapsedColumn())
    with Progress(*columns) as bar:
        task = bar.add_task("sending", total=total)
        yield lambda events: bar.advance(task, events)


def send(
    sim: Simulation,
    url: str,
    key: str,
    rate: float | None,
    single: bool,
    concurrency: int = 8,
    progress: bool = True,
    gzip: bool = False,
    batch_size: int = 100,
    attempts: int = 5,
    timeout: float = 30.0,
) -> SendReport:
    """Posts every message of sim to the ingest API at url with write key `key`.

    rate: events a second (token bucket), None for as fast as the server takes them.
    single: one message a request to /v1/page|track|identify instead of /v1/batch.
    attempts: tries per request in all; 429, 503 and connection errors are retried,
    honouring Retry-After, else with jittered exponential backoff.
    """
    if concurrency < 1 or attempts < 1 or not 1 <= batch_size <= 100:
        raise ValueError("concurrency and attempts must be ≥ 1, batch_size 1..100")
    if rate is not None and rate <= 0:
        raise ValueError("rate must be > 0")
    parsed = urllib3.util.parse_url(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"not an http(s) URL: {url}")
    # At a low rate a batch holds at most a second of events, so events still flow steadily.
    size = batch_size if rate is None else max(1, min(batch_size, int(rate)))
    bodies = single_bodies(sim.messages) if single else batch_bodies(sim.messages, size)
    # The simulation is millions of long-lived containers: frozen, the
    # collector stops walking them over and over while the threads send.
    gc.freeze()
    queue: SimpleQueue[Body] = SimpleQueue()
    for body in bodies:
        queue.put(body)
    # A tenth of a second of credit, so a slow answer is caught up rather than lost.
    bucket = TokenBucket(rate, burst=max(size, rate / 10)) if rate is not None else None
    tally = _Tally()
    stop = threading.Event()
    headers = {
        # Segment's clients send the write key as the Basic user with an empty password.
        "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
        "Content-Type": "application/json",
        "User-Agent": "userflow-simulate/1",
    }
    if gzip:
        headers["Content-Encoding"] = "gzip"
    pool = urllib3.connection_from_url(
        url, maxsize=concurrency, block=True, timeout=urllib3.Timeout(timeout)
    )
    target = _Target(pool, (parsed.path or "").rstrip("/"), headers)
    with pool, _progress(progress, len(sim.messages)) as advance:
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency, thread_name_prefix="simulate-send") as workers:
            futures = [
                workers.submit(_worker, target, queue, bucket, tally, stop, advance, gzip, attempts)
                for _ in range(concurrency)
            ]
            try:
                for future in futures:
                    future.result()
            except KeyboardInterrupt:
                # Let the threads finish the request in hand, then stop.
                stop.set()
                raise
        elapsed = time.perf_counter() - started
    return tally.report(len(sim.messages), elapsed)
