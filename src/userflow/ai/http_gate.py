"""The HTTP transport's door: a live read key on every request, or 401.

`Authorization: Bearer <read key>` (or HTTP Basic with the key as user, as the
query API takes) is checked against the database on each request, so a key
revoked mid-session stops at once. The request then carries the tenant as the
MCP SDK's authenticated user (client_id: the company), and the tools read the
key from it (the server keeps no sessions, so there is none to take over).
/healthz and /readyz alone are open (the kubelet's probes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final
from uuid import UUID

import anyio
import orjson
import psycopg
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.authentication import AuthCredentials
from starlette.types import ASGIApp, Receive, Scope, Send

from userflow.analytics.errors import NotAuthorized
from userflow.api import auth

log = logging.getLogger(__name__)

OPEN_PATHS: Final = frozenset({"/healthz", "/readyz"})


def read_key_of(scope: Scope) -> str:
    """The read key the gate let this request in with."""
    user = scope.get("user")
    if not isinstance(user, AuthenticatedUser):
        raise NotAuthorized("the request did not pass the read-key gate")
    return user.access_token.token


class ReadKeyGate:
    def __init__(self, app: ASGIApp, company_of: Callable[[str], UUID]) -> None:
        self.app = app
        self.company_of = company_of  # blocking: the key's company, or NotAuthorized

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            key = auth.read_key(headers.get("authorization"))
            company = await anyio.to_thread.run_sync(self.company_of, key)
        except NotAuthorized as exc:
            await _answer(send, 401, "unauthorized", f"a live read key is required ({exc})",
                          [(b"www-authenticate", b'Bearer realm="userflow"')])
            return
        except psycopg.OperationalError as exc:
            log.warning("database unavailable: %s", exc)
            await _answer(send, 503, "database_unavailable", "the database is unavailable",
                          [(b"retry-after", b"5")])
            return
        scope["user"] = AuthenticatedUser(AccessToken(token=key, client_id=str(company), scopes=[]))
        scope["auth"] = AuthCredentials([])
        await self.app(scope, receive, send)


async def _answer(send: Send, status: int, code: str, message: str,
                  headers: list[tuple[bytes, bytes]]) -> None:
    body = orjson.dumps({"code": code, "message": message, "errors": []})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})
