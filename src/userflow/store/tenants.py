"""Tenants: the company row and its keys."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Literal

import psycopg

from userflow.store.keys import KeyKind, display_prefix, key_hash, new_key

Tier = Literal["free", "basic", "pro", "enterprise"]
TopicMode = Literal["shared", "dedicated"]
TIERS: tuple[Tier, ...] = ("free", "basic", "pro", "enterprise")


class TenantExists(ValueError):
    """A company with this slug exists already."""


@dataclass(frozen=True, slots=True)
class NewTenant:
    company_id: uuid.UUID
    slug: str
    write_key: str
    read_key: str

    def as_json(self) -> dict[str, str]:
        return {
            "company_id": str(self.company_id),
            "slug": self.slug,
            "write_key": self.write_key,
            "read_key": self.read_key,
        }


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63].strip("-")
    if not slug:
        raise ValueError(f"name {name!r} has no letters or digits to make a slug from")
    return slug


def default_topic_mode(tier: Tier) -> TopicMode:
    """Paying tiers get their own topic, so a noisy neighbour cannot delay them."""
    return "dedicated" if tier in ("pro", "enterprise") else "shared"


def add_key(conn: psycopg.Connection, company_id: uuid.UUID, kind: KeyKind) -> str:
    key = new_key(kind)
    conn.execute(
        "INSERT INTO api_key (company_id, kind, key_hash, key_prefix) VALUES (%s, %s, %s, %s)",
        (company_id, kind, key_hash(key), display_prefix(key)),
    )
    return key


def revoke_key(conn: psycopg.Connection, key: str) -> bool:
    cur = conn.execute(
        "UPDATE api_key SET revoked_at = now() WHERE key_hash = %s AND revoked_at IS NULL",
        (key_hash(key),),
    )
    return cur.rowcount == 1


def create(
    conn: psycopg.Connection,
    name: str,
    tier: Tier = "free",
    *,
    slug: str | None = None,
    retention_days: int = 90,
    topic_mode: TopicMode | None = None,
    legacy_keyless_ingest: bool = False,
) -> NewTenant:
    """Insert the company and a write and a read key, in one transaction."""
    slug = slug or slugify(name)
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO company (slug, name, subscription_tier, retention_days, topic_mode,"
            " legacy_keyless_ingest) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (slug) DO NOTHING RETURNING company_id",
            (slug, name, tier, retention_days, topic_mode or default_topic_mode(tier),
             legacy_keyless_ingest),
        ).fetchone()
        if row is None:
            raise TenantExists(f"a company with slug {slug!r} exists already")
        company_id: uuid.UUID = row[0]
        write_key = add_key(conn, company_id, "write")
        read_key = add_key(conn, company_id, "read")
    return NewTenant(company_id, slug, write_key, read_key)
