"""Which tenant sent a request: the write key, wherever the client put it.

Segment's clients send the key as the HTTP Basic user; our own clients send
`X-UserFlow-Key`; some Segment libraries also put `writeKey` in the body.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import Request

from userflow.events.errors import FieldError
from userflow.events.fields import parse_uuid
from userflow.ingest.errors import Unauthorized
from userflow.ingest.tenants import Tenant, TenantCache


def key_from(request: Request, body: Any) -> str | None:
    header = request.headers.get("x-userflow-key")
    if header:
        return header.strip()
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            user = base64.b64decode(value.strip(), validate=True).decode("utf-8").split(":", 1)[0]
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("Authorization header is not valid Basic credentials",
                               [FieldError("Authorization", "not valid Basic credentials")]) from None
        return user or None
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if isinstance(body, dict) and isinstance(body.get("writeKey"), str):
        return body["writeKey"]
    return None


async def tenant_for_key(cache: TenantCache, key: str | None) -> Tenant:
    if not key:
        raise Unauthorized(
            "a write key is required: HTTP Basic user, X-UserFlow-Key header or writeKey",
            [FieldError("writeKey", "missing")],
        )
    tenant = await cache.by_write_key(key)
    if tenant is None:
        raise Unauthorized("the write key is unknown or revoked",
                           [FieldError("writeKey", "unknown or revoked")])
    return tenant


async def tenant_for_legacy(cache: TenantCache, request: Request, body: Any) -> Tenant:
    """/send_event: the key when one is sent, else the company_id of a tenant that allows it.

    Only the company's id names it here, never its slug, which anyone could guess.
    """
    key = key_from(request, body)
    if key:
        return await tenant_for_key(cache, key)
    company = body.get("company_id") if isinstance(body, dict) else None
    company_id = parse_uuid(company) if isinstance(company, str) else None
    tenant = await cache.by_company(company_id) if company_id is not None else None
    if tenant is None or not tenant.legacy_keyless_ingest:
        raise Unauthorized(
            "a write key is required (X-UserFlow-Key); keyless ingest by company_id is off",
            [FieldError("X-UserFlow-Key", "missing")],
        )
    return tenant
