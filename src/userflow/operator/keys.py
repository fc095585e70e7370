"""The tenant's write and read key: one live pair, its plain values in a Secret.

The database keeps only digests, so the Secret is the one place the plain
values exist. The plan is level-based: the live keys of the company should be
exactly the Secret's pair, plus keys being rotated out (`revoke_after` in the
future). Anything else is fixed:

- no Secret, or its keys are not live (the row was made again, someone revoked
  a key): a new pair; whatever was live is revoked now, its values being gone;
- the rotation annotation changed: a new pair; the old one works until the
  grace period ends, then is revoked;
- a live key that is neither (left by a Secret write that failed): revoked now.

The new pair is committed to the database before the Secret is written; a
failed write leaves a pair nobody knows, which the next pass revokes.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from userflow.store import tenants
from userflow.store.keys import key_hash

ROTATION_ANNOTATION = "userflow.io/rotation"


@dataclass(frozen=True, slots=True)
class SecretKeys:
    """What the Secret holds."""

    write_key: str
    read_key: str
    rotation: str

    @classmethod
    def from_secret(cls, secret: Mapping[str, Any] | None) -> SecretKeys | None:
        if not secret:
            return None
        data = secret.get("data") or {}
        try:
            write, read = (base64.b64decode(data[k]).decode() for k in ("writeKey", "readKey"))
        except (KeyError, ValueError):
            return None
        rotation = (secret.get("metadata", {}).get("annotations") or {}).get(ROTATION_ANNOTATION, "")
        return cls(write, read, rotation)


@dataclass(frozen=True, slots=True)
class KeyPlan:
    generate: bool
    revoke_now: tuple[uuid.UUID, ...] = ()
    revoke_later: tuple[uuid.UUID, ...] = ()
    # What happened, for the KeysReady condition.
    reason: str = "KeysInPlace"


def plan(secret: SecretKeys | None, live: list[tenants.LiveKey], rotation: str,
         now: datetime) -> KeyPlan:
    wanted = {}
    if secret is not None:
        wanted = {key_hash(secret.write_key): "write", key_hash(secret.read_key): "read"}
    current = [k for k in live if wanted.get(k.key_hash) == k.kind and k.revoke_after is None]
    current_ids = {k.key_id for k in current}
    valid = secret is not None and len(current) == 2
    due = [k.key_id for k in live if k.revoke_after is not None and k.revoke_after <= now]
    stray = [k.key_id for k in live if k.revoke_after is None and k.key_id not in current_ids]
    if valid and secret.rotation == rotation:
        return KeyPlan(False, tuple(due + stray))
    if valid:
        return KeyPlan(True, tuple(due + stray), tuple(current_ids), "KeysRotated")
    reason = "KeysCreated" if secret is None and not live else "KeysReplaced"
    return KeyPlan(True, tuple(due + stray + list(current_ids)), (), reason)


@dataclass(frozen=True, slots=True)
class NewKeys:
    write_key: str
    read_key: str


def apply(conn: psycopg.Connection, company_id: uuid.UUID, key_plan: KeyPlan,
          grace: timedelta, now: datetime) -> NewKeys | None:
    """Make the new pair and revoke or schedule the old ones, in one transaction."""
    if not (key_plan.generate or key_plan.revoke_now or key_plan.revoke_later):
        return None
    with conn.transaction():
        tenants.revoke_key_ids(conn, key_plan.revoke_now)
        tenants.revoke_key_ids(conn, key_plan.revoke_later, after=now + grace)
        if not key_plan.generate:
            return None
        return NewKeys(tenants.add_key(conn, company_id, "write"),
                       tenants.add_key(conn, company_id, "read"))


def secret_body(name: str, keys: NewKeys, rotation: str, company_id: uuid.UUID,
                topic: str) -> dict[str, Any]:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/managed-by": "userflow-operator"},
            "annotations": {ROTATION_ANNOTATION: rotation, "userflow.io/company-id": str(company_id)},
        },
        "data": {"writeKey": b64(keys.write_key), "readKey": b64(keys.read_key),
                 "companyId": b64(str(company_id)), "topic": b64(topic)},
    }
