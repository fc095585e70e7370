"""The read key a report reads with: minted for the run, revoked when it ends.

Keys are stored only as hashes (store/keys.py), so no existing read key can be
looked up; the report asks as the operator role (the one that makes keys, as
`userflow tenant create` does) for a fresh read key of the company with that
slug, and revokes it in every case once the report is written. Everything the
report reads goes through that key and the reader role, as the MCP server's
questions do.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from userflow.identity import InvalidIdentity, check_slug
from userflow.store import tenants


class UnknownTenant(LookupError):
    """No company has that slug."""


@dataclass(frozen=True, slots=True)
class TenantKey:
    company_id: uuid.UUID
    slug: str
    name: str
    read_key: str


@contextmanager
def report_key(operator_url: str, slug: str) -> Iterator[TenantKey]:
    """A live read key of `slug`'s company for the duration of the block."""
    try:
        check_slug(slug)
    except InvalidIdentity as exc:
        raise UnknownTenant(f"--tenant {slug[:64]!r} is not a tenant's slug: {exc}") from None
    with psycopg.connect(operator_url) as conn:
        row = conn.execute("SELECT company_id, name FROM company WHERE slug = %s",
                           (slug,)).fetchone()
        if row is None:
            raise UnknownTenant(f"no tenant has the slug {slug!r} (userflow tenant create makes one)")
        key = tenants.add_key(conn, row[0], "read")
    try:
        yield TenantKey(row[0], slug, row[1], key)
    finally:
        with psycopg.connect(operator_url) as conn:
            tenants.revoke_key(conn, key)
