"""The ingest's errors, and the one place that turns them into HTTP answers.

Bodies carry Segment's `code` and `message` (its clients read those) plus
`errors`, a list of {field, reason}.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from userflow.events.errors import FieldError, InvalidEvent
from userflow.ingest.metrics import REFUSED
from userflow.ingest.producer import KafkaUnavailable, ProducerBusy
from userflow.ingest.responses import JSONAnswer

log = logging.getLogger(__name__)


class IngestError(Exception):
    status = 400
    code = "invalid_request"
    headers: dict[str, str] | None = None

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class BadRequest(IngestError):
    pass


class Unauthorized(IngestError):
    status = 401
    code = "unauthorized"
    headers = {"WWW-Authenticate": 'Basic realm="userflow"'}


class OriginNotAllowed(IngestError):
    status = 403
    code = "origin_not_allowed"


class NotFound(IngestError):
    """Nothing for this key (the Segment settings document); not cached, so a new key works at once."""

    status = 404
    code = "not_found"
    headers = {"Cache-Control": "no-store"}


class RequestTimeout(IngestError):
    """The body did not arrive in time; the connection is closed, as a half-sent body cannot be skipped."""

    status = 408
    code = "request_timeout"
    headers = {"Connection": "close"}


class PayloadTooLarge(IngestError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(IngestError):
    status = 415
    code = "unsupported_media_type"


class RateLimited(IngestError):
    """Over the tenant's events a second; nothing of the request was taken."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


def _answer(status: int, code: str, message: str, errors: list[FieldError],
            headers: dict[str, str] | None = None) -> JSONAnswer:
    REFUSED.labels(str(status), code).inc()
    return JSONAnswer(
        {"code": code, "message": message, "errors": [e.as_json() for e in errors]},
        status_code=status,
        headers=headers,
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(ClientDisconnect)
    async def disconnected(request: Request, _: ClientDisconnect) -> Response:
        # The client left before its body arrived: nobody reads this answer.
        REFUSED.labels("499", "client_disconnected").inc()
        log.info("client disconnected before its request body arrived",
                 extra={"path": request.url.path})
        return Response(status_code=499)

    @app.exception_handler(IngestError)
    async def ingest_error(_: Request, exc: IngestError) -> JSONAnswer:
        return _answer(exc.status, exc.code, exc.message, exc.errors, exc.headers)

    @app.exception_handler(InvalidEvent)
    async def invalid_event(_: Request, exc: InvalidEvent) -> JSONAnswer:
        too_large = any(e.reason.startswith("event is larger") for e in exc.errors)
        status, code = (413, "payload_too_large") if too_large else (400, "invalid_event")
        return _answer(status, code, str(exc), exc.errors)

    @app.exception_handler(ProducerBusy)
    async def busy(_: Request, exc: ProducerBusy) -> JSONAnswer:
        return _answer(429, "too_many_requests", str(exc), [], {"Retry-After": "1"})

    @app.exception_handler(KafkaUnavailable)
    async def unavailable(_: Request, exc: KafkaUnavailable) -> JSONAnswer:
        return _answer(503, "unavailable", f"events not accepted: {exc}", [],
                       {"Retry-After": "5"})
