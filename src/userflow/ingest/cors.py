"""Browsers' cross-origin requests: preflights, and each tenant's allowed origins.

Websites post events from their own origin (Segment's analytics.js sends
text/plain to skip the preflight, or JSON with an Authorization header, which
needs one). A preflight carries no key, so it is answered for any origin; the
actual request is checked against its tenant's `allowed_origins` once the key
has named the tenant: an empty list allows any origin, like Segment.

Starlette's CORSMiddleware does not fit: it applies one policy to every
request, so it cannot refuse an origin for one tenant and allow it for another,
and it answers preflights 200 on every path. This module does the little we
need: the preflight at the edge, the tenant's verdict in the handler, and the
answer's headers (errors included) in one place, the middleware.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Final

from fastapi import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from userflow.events.errors import FieldError
from userflow.ingest.errors import OriginNotAllowed

# Chrome caps the preflight cache at 2 hours, Firefox at 24.
MAX_AGE_SECONDS: Final = 86_400
ALLOW_HEADERS: Final = "Content-Type, Authorization, X-UserFlow-Key, Content-Encoding"
# What a preflight may ask for and get echoed: a short list of header names.
_HEADER_LIST = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+(?:[ \t]*,[ \t]*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*")
_MAX_HEADER_LIST = 512
_HOST_LABELS = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*")
_DEFAULT_PORTS: Final = {"http://": ":80", "https://": ":443"}
# Set in the request's scope when its tenant refused the origin; read by the middleware.
_REFUSED: Final = "userflow.origin_refused"


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    """A tenant's `allowed_origins`, compiled once per cache load.

    Entries are `scheme://host[:port]` (exact), `scheme://*.domain[:port]` (any
    subdomain at any depth, not the domain itself) or `*`; no entries at all
    means any origin.
    """

    any: bool
    exact: frozenset[str] = frozenset()
    # (scheme "https://", suffix ".example.com[:port]") per wildcard entry.
    wildcards: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> OriginPolicy:
        exact: set[str] = set()
        wildcards: list[tuple[str, str]] = []
        for entry in entries:
            origin = _normal(entry)
            if origin == "*":
                return ANY_ORIGIN
            scheme, star, rest = origin.partition("://*.")
            if star:
                wildcards.append((scheme + "://", "." + rest))
            elif origin:
                exact.add(origin)
        if not exact and not wildcards:
            return ANY_ORIGIN
        return cls(False, frozenset(exact), tuple(wildcards))

    def allows(self, origin: str) -> bool:
        if self.any:
            return True
        origin = origin.lower()
        if origin in self.exact:
            return True
        for scheme, suffix in self.wildcards:
            if origin.startswith(scheme) and origin.endswith(suffix):
                labels = origin[len(scheme):-len(suffix)]
                if _HOST_LABELS.fullmatch(labels):
                    return True
        return False


ANY_ORIGIN: Final = OriginPolicy(True)


def _normal(entry: str) -> str:
    """An entry as browsers serialise an origin: lower case, no path, no default port."""
    origin = entry.strip().rstrip("/").lower()
    for scheme, port in _DEFAULT_PORTS.items():
        if origin.startswith(scheme) and origin.endswith(port):
            return origin[:-len(port)]
    return origin


def check_origin(request: Request, policy: OriginPolicy) -> None:
    """Refuse a browser request from an origin the tenant does not allow.

    Requests without an Origin header (servers, SDKs) are not browsers' and
    pass; so does everything for a tenant that allows any origin.
    """
    if policy.any:
        return
    origin = request.headers.get("origin")
    if origin is None or policy.allows(origin):
        return
    request.scope[_REFUSED] = True
    raise OriginNotAllowed(f"origin {origin!r} is not allowed for this write key",
                           [FieldError("Origin", "not in the tenant's allowed origins")])


def _request_headers(scope: Scope) -> tuple[str | None, bool, str | None]:
    """Origin, whether Access-Control-Request-Method is there, and the requested headers."""
    origin: str | None = None
    wants_method = False
    asked: str | None = None
    for name, value in scope["headers"]:
        if name == b"origin":
            origin = value.decode("latin-1")
        elif name == b"access-control-request-method":
            wants_method = True
        elif name == b"access-control-request-headers":
            asked = value.decode("latin-1")
    return origin, wants_method, asked


class BrowserCORS:
    """CORS on the ingest's event endpoints; other paths and Origin-less requests pass untouched.

    A preflight (OPTIONS with Origin and Access-Control-Request-Method) is
    answered 204 for any origin. Every other answer to a request with an
    Origin, errors included, echoes that origin in Access-Control-Allow-Origin,
    unless the tenant refused it (`check_origin`). An answer given before the
    key named a tenant (401, an unreadable body) says nothing tenant-specific
    and is readable from any origin, so the site's developer sees why.
    """

    def __init__(self, app: ASGIApp, paths: Collection[str]) -> None:
        self.app = app
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        origin, preflight, asked = _request_headers(scope)
        if origin is None:
            await self.app(scope, receive, send)
            return
        if preflight and scope["method"] == "OPTIONS":
            await _preflight(origin, asked)(scope, receive, send)
            return

        allowed = [(b"access-control-allow-origin", origin.encode("latin-1")),
                   (b"access-control-expose-headers", b"Retry-After"), (b"vary", b"Origin")]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"vary", b"Origin")] if scope.get(_REFUSED) else allowed
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_cors)


class PublicRead:
    """CORS on documents any website may read (the Segment settings): `*` on every answer.

    Errors included, so a site's developer sees why (an unknown key). The
    answer is the same for every origin and no credentials are asked for, so
    `*` and no Vary on Origin; a preflight (only a page that adds headers to
    its GET sends one) is answered for any origin.
    """

    def __init__(self, app: ASGIApp, paths: re.Pattern[str]) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.paths.fullmatch(scope["path"]):
            await self.app(scope, receive, send)
            return
        _, preflight, asked = _request_headers(scope)
        if preflight and scope["method"] == "OPTIONS":
            await _preflight("*", asked, "GET, OPTIONS")(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (b"access-control-allow-origin", b"*")]}
            await send(message)

        await self.app(scope, receive, send_with_cors)


def _preflight(origin: str, asked: str | None, methods: str = "POST, OPTIONS") -> Response:
    # Echo the headers asked for (a tracing library may add its own), as long
    # as they look like a list of header names.
    headers = asked if asked and len(asked) <= _MAX_HEADER_LIST and _HEADER_LIST.fullmatch(
        asked) else ALLOW_HEADERS
    return Response(status_code=204, headers={
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Allow-Headers": headers,
        "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
        "Vary": "Origin, Access-Control-Request-Headers",
    })
