"""The query API's errors, and the one place that turns them into HTTP answers.

Bodies look like the ingest's: `code`, `message` and `errors` (a list of
{field, reason}).
"""

from __future__ import annotations

import logging

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError

from userflow.analytics.errors import BadParameters, NotAuthorized, NotFound
from userflow.events.errors import FieldError
from userflow.ingest.responses import JSONAnswer

log = logging.getLogger(__name__)


def answer(status: int, code: str, message: str, errors: list[FieldError] | None = None,
           headers: dict[str, str] | None = None) -> JSONAnswer:
    return JSONAnswer({"code": code, "message": message,
                       "errors": [e.as_json() for e in errors or []]},
                      status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(BadParameters)
    async def bad_parameters(_: Request, exc: BadParameters) -> JSONAnswer:
        return answer(400, "invalid_request", "invalid parameters", exc.errors)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_: Request, exc: RequestValidationError) -> JSONAnswer:
        errors = [FieldError(".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body",
                             str(e.get("msg", "invalid"))) for e in exc.errors()]
        return answer(400, "invalid_request", "invalid body", errors)

    @app.exception_handler(NotAuthorized)
    async def not_authorized(_: Request, exc: NotAuthorized) -> JSONAnswer:
        return answer(401, "unauthorized", f"a live read key is required ({exc})",
                      headers={"WWW-Authenticate": 'Bearer realm="userflow"'})

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONAnswer:
        return answer(404, "not_found", str(exc))

    @app.exception_handler(psycopg.errors.QueryCanceled)
    async def too_slow(_: Request, exc: psycopg.errors.QueryCanceled) -> JSONAnswer:
        log.warning("query cancelled by the statement timeout: %s", exc)
        return answer(503, "query_timeout", "the question took longer than the server allows;"
                      " narrow the range or the filters", headers={"Retry-After": "5"})

    @app.exception_handler(psycopg.OperationalError)
    async def unavailable(_: Request, exc: psycopg.OperationalError) -> JSONAnswer:
        log.warning("database unavailable: %s", exc)
        return answer(503, "database_unavailable", "the database is unavailable",
                      headers={"Retry-After": "5"})
