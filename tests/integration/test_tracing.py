"""Traces from the ingest request to the consumer's write, exported over OTLP/HTTP.

The collector is a real HTTP server on the loopback that decodes what the
OpenTelemetry exporter sends (protobuf ExportTraceServiceRequest).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from .conftest import make_tenant
from .payloads import mixed_batch
from .stack import Stack, stack_env, wait_for

pytestmark = pytest.mark.services

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@dataclass
class Exported:
    service: str
    span: Span


@dataclass
class Collector:
    url: str
    spans: list[Exported] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def named(self, service: str) -> list[Span]:
        with self.lock:
            return [e.span for e in self.spans if e.service == service]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
        found = []
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                found += [Exported(attributes["service.name"], s) for s in scope_spans.spans]
        with self.server.collector.lock:
            self.server.collector.spans += found
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    collector: Collector


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.collector = Collector(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.collector
    server.shutdown()


@pytest.fixture
def traced_stack(service_env: dict[str, str], database_url: str, tmp_path: Path,
                 collector: Collector) -> Iterator[Stack]:
    env = stack_env(service_env, database_url, f"ufo{uuid.uuid4().hex[:8]}.events")
    env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "200"})
    s = Stack(env, database_url, tmp_path)
    s.start_ingest()
    s.start_consumer()
    yield s
    s.stop()


def test_a_request_trace_reaches_kafka_and_the_consumer(traced_stack: Stack,
                                                        collector: Collector,
                                                        database_url: str) -> None:
    tenant = make_tenant(database_url, "Traced")
    answer = httpx.post(
        f"{traced_stack.url}/v1/batch",
        json={"batch": mixed_batch(20, session="traced")},
        auth=(tenant.write_key, ""),
        headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert traced_stack.wait_rows(20, tenant.company_id) == 20

    def exported() -> bool:
        return bool(collector.named("userflow-ingest")) and any(
            link.trace_id.hex() == TRACE_ID
            for span in collector.named("userflow-consumer")
            for link in span.links
        )

    wait_for(exported, 30, "the ingest's and the consumer's spans")
    found = [s for s in collector.named("userflow-ingest") if s.trace_id.hex() == TRACE_ID]
    (request,) = found
    # The caller's span is the parent: the trace goes on where the website began it.
    assert request.parent_span_id.hex() == CALLER_SPAN
    assert request.kind == Span.SPAN_KIND_SERVER and request.name == "POST /v1/batch"
    stored = [s for s in collector.named("userflow-consumer")
              if any(link.span_id == request.span_id for link in s.links)]
    assert [s.kind for s in stored] == [Span.SPAN_KIND_CONSUMER]
    attributes = {a.key: a.value.int_value for a in stored[0].attributes}
    assert attributes["userflow.rows.inserted"] >= 20

    # Each message carries the request span's context for whoever reads the topic.
    reader = Consumer({"bootstrap.servers": traced_stack.env["UF_KAFKA_BOOTSTRAP"],
                       "group.id": uuid.uuid4().hex, "auto.offset.reset": "earliest"})
    topic = traced_stack.env["UF_TOPIC_PREFIX"] + ".shared"
    reader.subscribe([topic])
    messages: list[Message] = []

    def read() -> bool:
        messages.extend(m for m in reader.consume(100, timeout=1) if not m.error())
        return len(messages) >= 20

    try:
        wait_for(read, 30, "the messages")
    finally:
        reader.close()
    parents = {dict(m.headers() or []).get("traceparent") for m in messages}
    assert parents == {f"00-{TRACE_ID}-{request.span_id.hex()}-01".encode()}
