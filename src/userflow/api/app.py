"""The query API's ASGI app: the endpoints of endpoints.py behind a read key.

Every request runs in a read-only transaction scoped to the key's company
(userflow.analytics.scope); answers are the metric's result plus `meta`
(the range, the rollup or relation read, rows, SQL time).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from time import perf_counter
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import Counter, Histogram
from psycopg_pool import ConnectionPool

from userflow.analytics import filters, query
from userflow.analytics.args import Args
from userflow.analytics.errors import bad
from userflow.analytics.scope import tenant_connection
from userflow.api import auth, errors
from userflow.api.endpoints import ENDPOINTS, RANGE, Endpoint
from userflow.config import Settings, settings as default_settings
from userflow.ingest.responses import JSONAnswer
from userflow.telemetry.exposition import exposition

log = logging.getLogger(__name__)

REQUESTS = Counter("userflow_api_requests_total", "Query API requests by endpoint and status",
                   ["endpoint", "status"])
LATENCY = Histogram("userflow_api_request_seconds", "Query API answer time by endpoint",
                    ["endpoint"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))
# A JSON body of a question is small; a bigger one is refused unread.
MAX_BODY_BYTES = 64 * 1024


def _parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    if endpoint.from_args is None:
        return []
    listed = list(RANGE) if endpoint.ranged else []
    listed += list(endpoint.parameters)
    if endpoint.filters:
        listed += [(name, f"Filter: {name} (repeat for several values)") for name in filters.NAMES]
        listed.append(("include_bots", "Count bots too (default false)"))
    declared = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                for n in re.findall(r"{(\w+)}", endpoint.path)]
    return declared + [{"name": n, "in": "query", "required": False, "description": d,
                        "schema": {"type": "string"}} for n, d in dict(listed).items()]


def _jsonable(result: Any) -> Any:
    return dataclasses.asdict(result) if dataclasses.is_dataclass(result) else result


def create_app(s: Settings | None = None) -> FastAPI:
    s = s or default_settings()
    pool: ConnectionPool[Any] = ConnectionPool(
        s.database_url_for("reader"), min_size=1, max_size=s.api_pool_max, open=False,
        kwargs={"autocommit": True}, name="userflow-api")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(pool.open, False)
        try:
            yield
        finally:
            await asyncio.to_thread(pool.close)

    app = FastAPI(title="UserFlow query API", version="1", lifespan=lifespan,
                  default_response_class=JSONAnswer, docs_url="/docs", redoc_url=None)
    errors.install(app)

    def answer(endpoint: Endpoint, key: str, params: Any) -> JSONAnswer:
        built = endpoint.build(params)
        with tenant_connection(pool, key, s.api_statement_timeout_ms, s.api_work_mem_mb) as conn:
            done = query.run(conn, built)
        return JSONAnswer({**_jsonable(done.result), "meta": done.meta.as_json()})

    def route(endpoint: Endpoint) -> None:
        async def handle(request: Request) -> Response:
            key = auth.read_key(request.headers.get("authorization"))
            if endpoint.from_body is not None:
                params = endpoint.from_body(await _json_body(request))
            else:
                assert endpoint.from_args is not None
                merged: dict[str, list[str]] = {}
                for name, value in request.query_params.multi_items():
                    merged.setdefault(name, []).append(value)
                for name, value in request.path_params.items():
                    merged[name] = [value]
                params = endpoint.from_args(Args(merged))
            return await asyncio.to_thread(answer, endpoint, key, params)

        methods = ["POST"] if endpoint.from_body is not None else ["GET"]
        extra: dict[str, Any] = {"parameters": _parameters(endpoint),
                                 "security": [{"readKey": []}]}
        if endpoint.from_body is not None:
            extra["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"type": "object"}}}}
        app.add_api_route(endpoint.path, handle, methods=methods, summary=endpoint.summary,
                          tags=["analytics"], openapi_extra=extra)

    for endpoint in ENDPOINTS:
        route(endpoint)

    @app.middleware("http")
    async def measure(request: Request, call_next: Any) -> Response:
        started = perf_counter()
        response: Response = await call_next(request)
        matched = request.scope.get("route")
        path = getattr(matched, "path", None)
        if path is not None and path.startswith("/v1/"):
            REQUESTS.labels(path, str(response.status_code)).inc()
            LATENCY.labels(path).observe(perf_counter() - started)
        return response

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONAnswer:
        def check() -> bool:
            try:
                with pool.connection(timeout=2.0) as conn:
                    conn.execute("SELECT 1")
                return True
            except Exception:  # any failure to reach PostgreSQL means not ready
                return False
        ready = await asyncio.to_thread(check)
        return JSONAnswer({"database": ready}, status_code=200 if ready else 503)

    if not s.api_metrics_port:
        @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
        async def prometheus() -> Response:
            body, content_type = exposition()
            return Response(body, media_type=content_type)

    original = app.openapi

    def openapi() -> dict[str, Any]:
        schema = original()
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["readKey"] = {
            "type": "http", "scheme": "bearer",
            "description": "The tenant's read key (HTTP Basic with the key as user also works)"}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


async def _json_body(request: Request) -> Any:
    size = 0
    chunks: list[bytes] = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise bad("body", f"over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise bad("body", f"not JSON: {exc}") from None
