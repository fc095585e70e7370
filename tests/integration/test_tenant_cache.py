"""The ingest's tenant snapshot, loaded from the real database."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import psycopg
import pytest

from userflow.ingest.tenants import TenantCache, load
from userflow.store import tenants
from userflow.store.keys import key_hash

from .conftest import make_tenant

pytestmark = pytest.mark.services


def test_snapshot_holds_live_write_keys_and_company_settings(database_url: str) -> None:
    t = make_tenant(database_url, "Snap", company={
        "allowed_origins": ["https://*.snap.example"], "rate_limit_per_second": 150})
    keyless = make_tenant(database_url, "Keyless")
    with psycopg.connect(database_url) as conn:
        tenants.revoke_key(conn, keyless.write_key)
        tenants.revoke_key(conn, keyless.read_key)
        snap = load(conn)
    tenant = snap.write_keys[key_hash(t.write_key)].tenant
    assert (tenant.company_id, tenant.slug, tenant.rate_limit_per_second) == (
        t.company_id, t.slug, 150)
    assert tenant.allowed_origins.allows("https://www.snap.example")
    assert not tenant.allowed_origins.allows("https://snap.example")
    assert snap.companies[t.company_id] is tenant
    # Slugs are no key into the snapshot: only ids name a company.
    assert t.slug not in snap.companies and str(t.company_id) not in snap.companies
    assert key_hash(t.read_key) not in snap.write_keys
    assert key_hash(keyless.write_key) not in snap.write_keys
    # A company without live keys is still there for keyless /send_event.
    assert snap.companies[keyless.company_id].rate_limit_per_second is None


def test_loading_while_tenants_are_created_sees_each_with_its_keys(database_url: str) -> None:
    """Companies and keys come from one snapshot, so a new key never lacks its tenant."""
    made: list[tenants.NewTenant] = []
    stop = threading.Event()

    def create() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            while not stop.is_set():
                made.append(tenants.create(conn, f"Busy {uuid.uuid4().hex[:8]}"))

    creator = threading.Thread(target=create)
    creator.start()
    snapshots = []
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            while len(made) < 30:
                snapshots.append(load(conn))
    finally:
        stop.set()
        creator.join()
    with psycopg.connect(database_url, autocommit=True) as conn:
        snapshots.append(load(conn))
    for snap in snapshots:
        assert all(snap.companies[k.tenant.company_id] is k.tenant
                   for k in snap.write_keys.values())
    assert {key_hash(t.write_key) for t in made} <= snapshots[-1].write_keys.keys()


def test_a_key_ends_at_its_revoke_after_by_the_clock_alone(database_url: str) -> None:
    """A rotated-out key works until revoke_after and not an instant longer, whatever
    revoked_at says (pg_cron or the operator may set it a minute later, or never)."""
    t = make_tenant(database_url, "Clocked")
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE api_key SET revoke_after = now() + interval '1 hour'"
                     " WHERE key_hash = %s", (key_hash(t.write_key),))
    now = time.time()
    clock = [now]
    # Not started: the first lookup's miss loads the snapshot, and no thread reloads it.
    cache = TenantCache(database_url, clock=lambda: clock[0])

    def lookup() -> object:
        return asyncio.run(cache.by_write_key(t.write_key))

    assert getattr(lookup(), "company_id", None) == t.company_id
    clock[0] = now + 3599
    assert lookup() is not None
    clock[0] = now + 3601
    assert lookup() is None
