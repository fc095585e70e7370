"""The read key of a request: `Authorization: Bearer <key>`, or HTTP Basic with the key as user."""

from __future__ import annotations

import base64
import binascii

from userflow.analytics.errors import NotAuthorized


def read_key(authorization: str | None) -> str:
    if not authorization:
        raise NotAuthorized("no Authorization header")
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        return credentials
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise NotAuthorized("Basic credentials are not base64 of UTF-8") from None
        user = decoded.partition(":")[0]
        if user:
            return user
    raise NotAuthorized("Authorization must be Bearer <read key> or Basic with the key as user")
