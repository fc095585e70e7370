"""OpenTelemetry traces, from the ingest request to the consumer's write.

Tracing is on when an OTLP endpoint is configured the standard way
(`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, and
not `OTEL_SDK_DISABLED=true`); spans then go out over OTLP/HTTP. Off, every
function here returns at once, so the hot paths pay nothing for it.

FastAPI makes the ingest's request spans itself once a provider is set.
Their context travels in Kafka headers (W3C `traceparent`, and `tracestate`
or baggage when present), and the consumer's span for a batch links to the
request spans of the events in it, as OpenTelemetry's messaging
conventions do for batches.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Final

from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, Span, SpanKind

_ENDPOINTS: Final = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# A batch of 5,000 events comes from up to 50 requests of 100; past this many
# the links say little more and cost the exporter.
MAX_LINKS: Final = 128

_provider: TracerProvider | None = None


def enabled() -> bool:
    return _provider is not None


def configure(component: str) -> None:
    """Set up the SDK for this process if an endpoint is configured; call after any fork."""
    global _provider
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return
    if not any(os.environ.get(name) for name in _ENDPOINTS):
        return
    # OTEL_SERVICE_NAME, when set, names the service; else one name per component.
    name = os.environ.get("OTEL_SERVICE_NAME") or f"userflow-{component}"
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider


def shutdown() -> None:
    """Export what is left; the process is about to end."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def _tracer() -> trace.Tracer:
    return trace.get_tracer("userflow")


def kafka_headers() -> list[tuple[str, bytes]] | None:
    """The current span's context as Kafka headers, or None when there is none."""
    if _provider is None:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(key, value.encode()) for key, value in carrier.items()] or None


def context_key(headers: Iterable[tuple[str, bytes | None]] | None) -> bytes | None:
    """The `traceparent` among a message's headers: what links a batch to its requests."""
    for key, value in headers or ():
        if key == "traceparent":
            return value
    return None


@contextmanager
def batch_span(name: str, parents: Iterable[bytes], attributes: dict[str, Any]) -> Iterator[
    Span | None
]:
    """A consumer span for one stored batch, linked to the request spans of its events."""
    if _provider is None:
        yield None
        return
    links = []
    for parent in parents:
        context = trace.get_current_span(
            propagate.extract({"traceparent": parent.decode(errors="replace")})
        ).get_span_context()
        if context.is_valid:
            links.append(Link(context))
        if len(links) >= MAX_LINKS:
            break
    with _tracer().start_as_current_span(
        name, kind=SpanKind.CONSUMER, links=links, attributes=attributes
    ) as span:
        yield span
