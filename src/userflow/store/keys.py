"""API keys: made once, shown once, stored only as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal

KeyKind = Literal["write", "read"]
_PREFIX: dict[KeyKind, str] = {"write": "ufw_", "read": "ufr_"}


def new_key(kind: KeyKind) -> str:
    return _PREFIX[kind] + secrets.token_urlsafe(32)


def key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def display_prefix(key: str) -> str:
    return key[:10]
