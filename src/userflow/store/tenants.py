"""Tenants: the company row and its keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import psycopg

from userflow.identity import (
    Tier,
    TopicMode,
    check_name,
    check_slug,
    check_tier,
    default_topic_mode,
    slugify,
)
from userflow.store.keys import KeyKind, display_prefix, key_hash, new_key


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
    """Insert the company and a write and a read key, in one transaction.

    Raises InvalidIdentity for a name, slug or tier no tenant may have
    (userflow.identity), TenantExists when the slug is taken.
    """
    name = check_name(name)
    tier = check_tier(tier)
    slug = check_slug(slug) if slug is not None else slugify(name)
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


# --- Companies managed by the Kubernetes operator (sql/005_operator.sql) -------------

class NotOwned(ValueError):
    """The company row with this slug belongs to someone else (another resource, or the CLI)."""


@dataclass(frozen=True, slots=True)
class CompanyFields:
    """The columns a Company resource decides; the slug and id are its identity."""

    name: str
    tier: Tier
    retention_days: int
    topic_mode: TopicMode
    region: str | None = None
    email: str | None = None
    allowed_origins: tuple[str, ...] = ()
    rate_limit_per_second: int | None = None


_FIELD_COLUMNS = ("name", "subscription_tier", "retention_days", "topic_mode", "region", "email",
                  "allowed_origins", "rate_limit_per_second")


def _values(fields: CompanyFields) -> tuple[object, ...]:
    return (fields.name, fields.tier, fields.retention_days, fields.topic_mode, fields.region,
            fields.email, list(fields.allowed_origins), fields.rate_limit_per_second)


def upsert_owned(
    conn: psycopg.Connection,
    slug: str,
    fields: CompanyFields,
    *,
    owner: str,
    uid: uuid.UUID,
    company_id: uuid.UUID | None = None,
) -> tuple[uuid.UUID, Literal["created", "updated", "unchanged"]]:
    """Make the row of `slug`, owned by `owner`, hold `fields`; never a second row.

    A missing row is inserted (with `company_id` when given and still free, so a
    row someone deleted comes back under its old id and its events stay its own);
    a row of another owner raises NotOwned; an unchanged row is not written, so
    the ingest is not told to reload for nothing.
    """
    check_slug(slug)
    cols = ", ".join(_FIELD_COLUMNS)
    with conn.transaction():
        row = conn.execute(
            f"SELECT company_id, k8s_owner, k8s_uid, {cols} FROM company WHERE slug = %s FOR UPDATE",
            (slug,),
        ).fetchone()
        if row is None:
            if company_id is not None and conn.execute(
                    "SELECT 1 FROM company WHERE company_id = %s", (company_id,)).fetchone():
                company_id = None
            marks = ", ".join(["%s"] * (len(_FIELD_COLUMNS) + 4))
            made = conn.execute(
                f"INSERT INTO company (company_id, slug, k8s_owner, k8s_uid, {cols})"
                f" VALUES ({marks}) RETURNING company_id",
                (company_id or uuid.uuid4(), slug, owner, uid, *_values(fields)),
            ).fetchone()
            return made[0], "created"
        found_id, found_owner, found_uid, *current = row
        if found_owner != owner:
            who = f"the Company {found_owner}" if found_owner else "`userflow tenant create`"
            raise NotOwned(f"the company {slug!r} exists and is managed by {who}")
        wanted = list(_values(fields))
        if current == wanted and found_uid == uid:
            return found_id, "unchanged"
        sets = ", ".join(f"{c} = %s" for c in _FIELD_COLUMNS)
        conn.execute(f"UPDATE company SET {sets}, k8s_uid = %s, updated_at = now()"
                     " WHERE company_id = %s", (*wanted, uid, found_id))
        return found_id, "updated"


def owned_company(conn: psycopg.Connection, slug: str, owner: str) -> uuid.UUID | None:
    """The id of the row of `slug` if `owner` manages it."""
    row = conn.execute("SELECT company_id FROM company WHERE slug = %s AND k8s_owner = %s",
                       (slug, owner)).fetchone()
    return row[0] if row else None


@dataclass(frozen=True, slots=True)
class LiveKey:
    """A key not yet revoked; `revoke_after` is set while it is being rotated out."""

    key_id: uuid.UUID
    kind: KeyKind
    key_hash: bytes
    revoke_after: datetime | None


def live_keys(conn: psycopg.Connection, company_id: uuid.UUID) -> list[LiveKey]:
    rows = conn.execute(
        "SELECT key_id, kind, key_hash, revoke_after FROM api_key"
        " WHERE company_id = %s AND revoked_at IS NULL ORDER BY created_at", (company_id,))
    return [LiveKey(key_id, kind, bytes(digest), after) for key_id, kind, digest, after in rows]


def revoke_key_ids(conn: psycopg.Connection, key_ids: Iterable[uuid.UUID],
                   after: datetime | None = None) -> int:
    """Revoke these keys now, or (with `after`) let them work until then."""
    ids = list(key_ids)
    if not ids:
        return 0  # no statement, so the ingest is not told to reload
    if after is None:
        cur = conn.execute("UPDATE api_key SET revoked_at = now()"
                           " WHERE key_id = ANY(%s) AND revoked_at IS NULL", (ids,))
    else:
        cur = conn.execute("UPDATE api_key SET revoke_after = %s"
                           " WHERE key_id = ANY(%s) AND revoked_at IS NULL", (after, ids))
    return cur.rowcount


def revoke_all(conn: psycopg.Connection, company_id: uuid.UUID) -> int:
    return revoke_key_ids(conn, [k.key_id for k in live_keys(conn, company_id)])


def purge(conn: psycopg.Connection, company_id: uuid.UUID) -> int:
    """Delete the company's events, its ids, its keys and its row; returns the events deleted.

    Through userflow_purge_company (sql/009), so the operator needs no DELETE on
    events. Dictionary texts (text_value) are shared by all tenants and are left in place.
    """
    row = conn.execute("SELECT userflow_purge_company(%s)", (company_id,)).fetchone()
    return int(row[0]) if row else 0
