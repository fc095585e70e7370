"""The ingest ASGI app: a thin shell over body reading, auth and `accept`."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

from fastapi import FastAPI, Path, Request
from fastapi.responses import PlainTextResponse, Response

from userflow import tracing
from userflow.config import Settings, settings as default_settings
from userflow.events import timestamps
from userflow.events.errors import FieldError, InvalidEvent
from userflow.events.receipt import Receipt
from userflow.events.seed import from_seed
from userflow.events.segment import from_segment
from userflow.ingest import errors, metrics, openapi, segment_settings
from userflow.ingest.accept import Normaliser, Verdict, accept, batch_answer
from userflow.ingest.auth import key_from, tenant_for_key, tenant_for_legacy
from userflow.ingest.body import read_json
from userflow.ingest.cors import BrowserCORS, PublicRead, check_origin
from userflow.ingest.errors import BadRequest, PayloadTooLarge
from userflow.ingest.forwarded import TrustedProxies
from userflow.ingest.producer import EventProducer
from userflow.ingest.ratelimit import RateLimits
from userflow.ingest.responses import JSONAnswer
from userflow.ingest.tenants import Tenant, TenantCache
from userflow.telemetry.exposition import exposition

_SINGLE_TYPES = ("track", "page", "screen", "identify", "group", "alias")
# analytics.js (@segment/analytics-next) posts to /v1/ and the type's first letter,
# and its batching mode to /v1/b.
SHORT_PATHS = {f"/v1/{kind[0]}": kind for kind in _SINGLE_TYPES}
_SINGLE_PATHS = {**{f"/v1/{kind}": kind for kind in _SINGLE_TYPES}, **SHORT_PATHS}
BATCH_PATHS = ("/v1/batch", "/v1/b")
EVENT_PATHS = (*BATCH_PATHS, *_SINGLE_PATHS, "/send_event")


def create_app(s: Settings | None = None) -> FastAPI:
    s = s or default_settings()
    proxies = TrustedProxies.parse(s.trusted_proxies)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Made here, not at import: librdkafka's and the span exporter's
        # threads do not survive a fork.
        tracing.configure("ingest")
        app.state.producer = EventProducer(
            s.kafka_bootstrap, s.produce_timeout_seconds, s.producer_queue_max_messages)
        app.state.tenants = TenantCache(s.database_url_for("ingest"), s.tenant_cache_seconds)
        app.state.tenants.start()
        # A batch of 100 parses into thousands of young containers; with the
        # default thresholds the collector rescans them several times per
        # request. Startup objects are frozen out of it.
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        yield
        app.state.tenants.stop()
        await asyncio.to_thread(app.state.producer.close)
        tracing.shutdown()

    # FastAPI traces each request itself once tracing.configure has set a
    # provider; spans for its dependencies and serialisation would only add
    # cost, and the metrics are Prometheus' (userflow.ingest.metrics).
    docs = {} if s.ingest_docs else {"docs_url": None, "redoc_url": None, "openapi_url": None}
    app = FastAPI(title="UserFlow ingest", version="1", lifespan=lifespan,
                  default_response_class=JSONAnswer,
                  telemetry={"operation_spans": False, "metrics": False}, **docs)
    errors.install(app)
    app.add_middleware(BrowserCORS, paths=EVENT_PATHS)
    app.add_middleware(PublicRead, paths=segment_settings.PATH_PATTERN)
    limits = RateLimits()

    def receipt(request: Request, tenant: Tenant, raw: bytes, sent_at: Any = None) -> Receipt:
        return Receipt(
            company_id=tenant.company_id,
            received_at=datetime.now(UTC),
            retention_days=tenant.retention_days,
            max_future_seconds=s.max_future_seconds,
            request_ip=proxies.client_ip(request.client.host if request.client else None,
                                         request.headers.getlist("x-forwarded-for")),
            request_user_agent=request.headers.get("user-agent"),
            sent_at=sent_at,
            may_contain_nul=b"\\u0000" in raw,
        )

    async def run(request: Request, endpoint: str, payloads: list[Any], normalise: Normaliser,
                  tenant: Tenant, raw: bytes, sent_at: Any = None) -> list[Verdict]:
        check_origin(request, tenant.allowed_origins)
        # Counted in events, before any is sent: a refused request leaves nothing in Kafka.
        limits.take(tenant, len(payloads))
        # FastAPI's own server span is the current one: its context goes to Kafka.
        verdicts = await accept(payloads, normalise, receipt(request, tenant, raw, sent_at),
                                tenant, request.app.state.producer, s, tracing.kafka_headers())
        # The route's own path as the label: request.url would build (and
        # parse) the whole URL on every request just to read it back.
        metrics.count(endpoint, verdicts)
        return verdicts

    async def batch(request: Request) -> JSONAnswer:
        """Segment batch: up to 500 KB of messages, a verdict for each."""
        # The route's own path, as the metrics' label: /v1/b counts as itself.
        path = request.scope["route"].path
        body, raw = await read_json(request, s.max_request_bytes, s.body_read_timeout_seconds)
        tenant = await tenant_for_key(request.app.state.tenants, key_from(request, body))
        messages = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages:
            raise BadRequest("batch must be a non-empty array of messages",
                             [FieldError("batch", "must be a non-empty array")])
        if len(messages) > s.max_batch_messages:
            raise PayloadTooLarge(
                f"a batch holds at most {s.max_batch_messages} messages; send the rest in another",
                [FieldError("batch", f"has more than {s.max_batch_messages} messages")])
        sent_at = _batch_sent_at(body)
        shared = body.get("context")
        if isinstance(shared, dict):
            messages = [_with_context(m, shared) for m in messages]
        verdicts = await run(request, path, messages, from_segment, tenant, raw, sent_at)
        return batch_answer(verdicts, s.max_error_details)

    for path in BATCH_PATHS:
        app.add_api_route(path, batch, methods=["POST"], tags=["segment"],
                          openapi_extra=openapi.body(openapi.BATCH))

    def single(kind: str, path: str) -> Any:
        normalise: Normaliser = partial(from_segment, forced_type=kind)

        async def handler(request: Request) -> JSONAnswer:
            body, raw = await read_json(request, s.max_event_bytes, s.body_read_timeout_seconds)
            tenant = await tenant_for_key(request.app.state.tenants, key_from(request, body))
            return _single_answer(await run(request, path, [body], normalise, tenant, raw))
        handler.__name__ = kind
        handler.__doc__ = (f"Segment {kind}: one message." if path == f"/v1/{kind}" else
                           f"Segment {kind}: one message, at analytics.js's short path.")
        return handler

    for path, kind in _SINGLE_PATHS.items():
        app.add_api_route(path, single(kind, path), methods=["POST"], tags=["segment"],
                          openapi_extra=openapi.body(openapi.MESSAGE))

    @app.get(segment_settings.PATH, tags=["segment"], responses=openapi.SETTINGS_RESPONSES)
    async def project_settings(request: Request,
                               write_key: Annotated[str, Path(alias="writeKey")]) -> JSONAnswer:
        """analytics.js's settings document: its events sent back here, nothing else loaded."""
        scheme, host = proxies.reached_as(
            request.client.host if request.client else None, request.scope["scheme"],
            request.headers.get("host"), request.headers.getlist("x-forwarded-proto"),
            request.headers.getlist("x-forwarded-host"))
        document = await segment_settings.settings_for(request.app.state.tenants, write_key,
                                                       scheme, host)
        return JSONAnswer(document, headers={"Cache-Control": segment_settings.CACHE_CONTROL,
                                             "Vary": "X-Forwarded-Host, X-Forwarded-Proto"})

    @app.post("/send_event", openapi_extra=openapi.body(openapi.SEED_EVENT), tags=["seed"])
    async def send_event(request: Request) -> JSONAnswer:
        """The seed's payload, unchanged, for clients written against it."""
        body, raw = await read_json(request, s.max_event_bytes, s.body_read_timeout_seconds)
        tenant = await tenant_for_legacy(request.app.state.tenants, request, body)
        return _single_answer(await run(request, "/send_event", [body], from_seed, tenant, raw))

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz(request: Request) -> JSONAnswer:
        kafka = await asyncio.to_thread(request.app.state.producer.reachable, 2.0)
        tenants = request.app.state.tenants.loaded
        ready = kafka and tenants
        return JSONAnswer({"kafka": kafka, "tenants_loaded": tenants},
                              status_code=200 if ready else 503)

    if not s.ingest_metrics_port:
        # Otherwise served on its own port by the gunicorn master (userflow.ingest.server).
        @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
        async def prometheus() -> Response:
            body, content_type = exposition()
            return Response(body, media_type=content_type)

    return app


def _batch_sent_at(body: dict[str, Any]) -> Any:
    raw = body.get("sentAt")
    if raw is None:
        return None
    try:
        return timestamps.parse(raw, "sentAt")
    except InvalidEvent as bad:
        raise BadRequest("sentAt is not a date-time", bad.errors) from None


def _with_context(message: Any, shared: dict[str, Any]) -> Any:
    if not isinstance(message, dict):
        return message
    own = message.get("context")
    return {**message, "context": {**shared, **own} if isinstance(own, dict) else shared}


def _single_answer(verdicts: list[Verdict]) -> JSONAnswer:
    verdict = verdicts[0]
    if not verdict.accepted:
        raise InvalidEvent(verdict.errors)
    # orjson writes the UUID's canonical text itself.
    return JSONAnswer({"status": "accepted", "event_id": verdict.event_id,
                           "message": "Event sent successfully"})
