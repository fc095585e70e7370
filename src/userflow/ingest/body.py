"""Reading a request body within the limits: size, encoding, content type, JSON."""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from fastapi import Request

from userflow.events.errors import FieldError
from userflow.ingest.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

# text/plain too: browsers' sendBeacon and no-preflight fetches send JSON that way.
_JSON_TYPES = ("application/json", "text/plain")


def _check_type(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in _JSON_TYPES and not media.endswith("+json"):
        raise UnsupportedMediaType(
            f"content type {content_type!r} is not supported; send application/json",
            [FieldError("Content-Type", "must be application/json")],
        )


async def _read_raw(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _gunzip(raw: bytes, limit: int) -> bytes:
    # Bounded output: a small gzip bomb must not become gigabytes in memory.
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    try:
        data = inflater.decompress(raw, limit + 1)
    except zlib.error:
        raise BadRequest("body is not valid gzip", [FieldError("body", "not valid gzip")]) from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"decompressed request body is over {limit} bytes")
    return data


async def read_json(request: Request, limit: int) -> tuple[Any, bytes]:
    """The parsed JSON body and its raw bytes; raises the ingest's 4xx errors."""
    _check_type(request)
    raw = await _read_raw(request, limit)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        raw = _gunzip(raw, limit)
    elif encoding not in ("identity", ""):
        raise UnsupportedMediaType(
            f"content encoding {encoding!r} is not supported; use gzip or none",
            [FieldError("Content-Encoding", "must be gzip or identity")],
        )
    if not raw:
        raise BadRequest("request body is empty", [FieldError("body", "is empty")])
    try:
        return orjson.loads(raw), raw
    except orjson.JSONDecodeError as exc:
        reason = "is not valid UTF-8" if "utf-8" in str(exc).lower() else f"is not valid JSON: {exc}"
        raise BadRequest(f"body {reason}", [FieldError("body", reason)]) from None
