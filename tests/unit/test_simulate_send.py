"""Sending to a tiny real HTTP server on the loopback that speaks the ingest's wire format."""

from __future__ import annotations

import base64
import gzip
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from rich.console import Console

from userflow.simulate import SendReport, Simulation, generate, report_table, send

KEY = "wk_test_0123456789"
START = datetime(2026, 3, 2, tzinfo=UTC)


@dataclass
class Seen:
    path: str
    user: str
    password: str
    status: int
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def ids(self) -> list[str]:
        messages = self.body["batch"] if self.path == "/v1/batch" else [self.body]
        return [m["messageId"] for m in messages]


@dataclass
class Script:
    """How the fake ingest behaves: how many requests it turns away, which messages it rejects."""

    busy: int = 0
    busy_status: int = 503
    reject: frozenset[str] = frozenset()
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real server
    # Status, headers and body leave in one write, so Nagle and delayed ACKs add no 40 ms a request.
    wbufsize = -1
    disable_nagle_algorithm = True
    server: Ingest

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def answer(
        self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        raw = orjson.dumps(data)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        body = orjson.loads(raw)
        user, _, password = (
            base64.b64decode(self.headers["Authorization"].removeprefix("Basic "))
            .decode()
            .partition(":")
        )
        script = self.server.script
        with script.lock:
            status = 401 if user != KEY else script.busy_status if script.busy > 0 else 200
            script.busy -= status in (429, 503)
            script.seen.append(Seen(self.path, user, password, status, body, dict(self.headers)))
        if status == 401:
            self.answer(401, {"errors": [{"field": "key", "reason": "unknown write key"}]})
        elif status != 200:
            self.answer(
                status, {"errors": [{"field": "server", "reason": "busy"}]}, {"Retry-After": "0"}
            )
        elif self.path == "/v1/batch":
            results = [
                {
                    "index": i,
                    "status": "rejected",
                    "event_id": m["messageId"],
                    "errors": [{"field": "timestamp", "reason": "too old"}],
                }
                if m["messageId"] in script.reject
                else {"index": i, "status": "accepted", "event_id": m["messageId"], "errors": []}
                for i, m in enumerate(body["batch"])
            ]
            rejected = sum(r["status"] == "rejected" for r in results)
            self.answer(
                200, {"accepted": len(results) - rejected, "rejected": rejected, "results": results}
            )
        elif body["messageId"] in script.reject:
            self.answer(400, {"errors": [{"field": "timestamp", "reason": "too old"}]})
        else:
            self.answer(200, {"status": "accepted", "event_id": body["messageId"]})


class Ingest(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: Script) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script = script

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def ingest(script: Script) -> Iterator[Ingest]:
    server = Ingest(script)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return generate(1_000, seed=9, start=START)


def test_batches_arrive_whole_and_a_503_is_retried_with_the_same_ids(
    ingest: Ingest, script: Script, sim: Simulation
) -> None:
    script.busy = 1
    script.reject = frozenset(m["messageId"] for m in sim.messages[100:103])
    report = send(sim, ingest.url, KEY, rate=None, single=False, concurrency=4, progress=True)

    ok = [s for s in script.seen if s.status == 200]
    busy = [s for s in script.seen if s.status == 503]
    assert len(busy) == 1 and busy[0].ids in [s.ids for s in ok]
    assert sorted(i for s in ok for i in s.ids) == sorted(m["messageId"] for m in sim.messages)
    for s in script.seen:
        assert (s.path, s.user, s.password) == ("/v1/batch", KEY, "")
        assert s.headers["Content-Type"] == "application/json"
        assert 0 < len(s.body["batch"]) <= 100
        assert datetime.fromisoformat(s.body["sentAt"]).tzinfo is not None
    assert report == SendReport(
        events=1_000,
        sent=1_000,
        accepted=997,
        rejected=3,
        failed=0,
        requests=11,
        retries=1,
        statuses={"200": 10, "503": 1},
        rejections={"timestamp: too old": 3},
        elapsed_seconds=report.elapsed_seconds,
        events_per_second=report.events_per_second,
        latency_p50_ms=report.latency_p50_ms,
        latency_p99_ms=report.latency_p99_ms,
    )
    assert 0 < report.latency_p50_ms <= report.latency_p99_ms


def test_single_mode_posts_each_message_to_its_type_endpoint(
    ingest: Ingest, script: Script
) -> None:
    small = generate(120, seed=4, start=START)
    script.reject = frozenset({small.messages[0]["messageId"]})
    script.busy, script.busy_status = 1, 429
    report = send(small, ingest.url, KEY, rate=None, single=True, concurrency=3, progress=False)

    paths = {"page": "/v1/page", "track": "/v1/track", "identify": "/v1/identify"}
    by_id = {m["messageId"]: m for m in small.messages}
    ok = [s for s in script.seen if s.status != 429]
    assert sorted(s.body["messageId"] for s in ok) == sorted(by_id)
    for s in ok:
        assert s.path == paths[by_id[s.body["messageId"]]["type"]]
        assert {k: v for k, v in s.body.items() if k != "sentAt"} == by_id[s.body["messageId"]]
    assert (report.accepted, report.rejected, report.failed, report.retries) == (119, 1, 0, 1)
    assert report.statuses == {"200": 119, "400": 1, "429": 1}


def test_gzip_bodies_say_so(ingest: Ingest, script: Script, sim: Simulation) -> None:
    report = send(sim, ingest.url, KEY, rate=None, single=False, progress=False, gzip=True)
    assert all(s.headers["Content-Encoding"] == "gzip" for s in script.seen)
    assert report.accepted == 1_000


def test_a_rate_paces_the_send(ingest: Ingest, sim: Simulation) -> None:
    report = send(sim, ingest.url, KEY, rate=2_500, single=False, progress=False)
    assert report.accepted == 1_000
    assert report.elapsed_seconds >= 0.35  # 1 000 events at 2 500/s, the bucket starting empty


def test_a_server_that_stays_busy_is_given_up_on(ingest: Ingest, script: Script) -> None:
    few = generate(50, seed=2, start=START)
    script.busy = 10
    report = send(few, ingest.url, KEY, rate=None, single=False, progress=False, attempts=3)
    assert (report.sent, report.accepted, report.failed, report.retries) == (50, 0, 50, 2)
    assert report.statuses == {"503": 3}


def test_a_wrong_key_stops_the_send(ingest: Ingest, sim: Simulation) -> None:
    report = send(
        sim, ingest.url, "wk_wrong", rate=None, single=False, concurrency=1, progress=False
    )
    assert (report.sent, report.failed, report.accepted) == (100, 100, 0)
    assert report.statuses == {"401": 1}


def test_no_server_is_a_failure_not_a_hang() -> None:
    few = generate(30, seed=2, start=START)
    report = send(few, closed_port_url(), KEY, rate=None, single=False, progress=False, attempts=2)
    assert (report.failed, report.retries, report.statuses) == (30, 1, {"NewConnectionError": 2})


def test_the_report_renders_as_a_table(ingest: Ingest, script: Script, sim: Simulation) -> None:
    script.reject = frozenset(m["messageId"] for m in sim.messages[:2])
    report = send(sim, ingest.url, KEY, rate=None, single=False, progress=False)
    console = Console(record=True, width=100)
    console.print(report_table(report))
    text = console.export_text()
    assert "998" in text and "timestamp: too old" in text and "HTTP 200" in text


def closed_port_url() -> str:
    """A loopback URL whose port was free a moment ago: connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"
