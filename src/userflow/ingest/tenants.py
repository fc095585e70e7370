"""The ingest's view of tenants: key digest → tenant, kept in memory.

A background thread loads every live key at start, then LISTENs for the
`userflow_tenants` notification (sent by triggers on company and api_key), so
a new key works and a revoked key stops working within milliseconds, and
reloads every `refresh_seconds` as well in case a notification was missed.
A key not in the snapshot triggers one reload before it is refused, so a
key used the moment it was made never sees a stale cache; such reloads are
at most one per `_MISS_RELOAD_SECONDS`, so unknown keys cannot flood the
database.

Keys are looked up by their SHA-256 only, and companies (for the seed's
keyless `/send_event`) by their id only: a slug is never a key into either
map, so no tenant can name itself after another's id and take its events.
A key being rotated out carries its `revoke_after`, and is refused from that
instant by every lookup, whether or not anything (the operator, pg_cron) has
yet marked it revoked.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import psycopg

from userflow.ingest.cors import ANY_ORIGIN, OriginPolicy
from userflow.store.keys import key_hash

log = logging.getLogger(__name__)

CHANNEL: Final = "userflow_tenants"
_MISS_RELOAD_SECONDS: Final = 0.5
# One statement, so companies and keys come from one snapshot: with two, a
# company committed between them had keys but no tenant, and the KeyError
# ended the cache's thread (it catches database errors only).
_QUERY: Final = """
SELECT c.company_id, c.slug, c.retention_days, c.topic_mode, c.legacy_keyless_ingest,
       c.allowed_origins, c.rate_limit_per_second, k.key_hash,
       extract(epoch FROM k.revoke_after)::float8
FROM company c
LEFT JOIN api_key k
       ON k.company_id = c.company_id AND k.kind = 'write' AND k.revoked_at IS NULL
"""


@dataclass(frozen=True, slots=True)
class Tenant:
    company_id: uuid.UUID
    slug: str
    retention_days: int
    topic_mode: str
    legacy_keyless_ingest: bool
    allowed_origins: OriginPolicy = ANY_ORIGIN
    # Events a second (per ingest worker); None: no limit.
    rate_limit_per_second: int | None = None


@dataclass(frozen=True, slots=True)
class WriteKey:
    tenant: Tenant
    # Unix time from which the key is refused (a rotated-out key); None: no end.
    revoke_after: float | None = None

    def live(self, now: float) -> bool:
        return self.revoke_after is None or now < self.revoke_after


@dataclass(frozen=True, slots=True)
class Snapshot:
    write_keys: dict[bytes, WriteKey]
    # By company id only, for the seed's keyless /send_event.
    companies: dict[uuid.UUID, Tenant]


def load(conn: psycopg.Connection) -> Snapshot:
    companies: dict[uuid.UUID, Tenant] = {}
    write_keys: dict[bytes, WriteKey] = {}
    for (company_id, slug, retention, mode, legacy, origins, rate, digest,
         revoke_after) in conn.execute(_QUERY):
        tenant = companies.get(company_id)
        if tenant is None:
            tenant = Tenant(company_id, slug, retention, mode, legacy,
                            OriginPolicy.parse(origins), rate)
            companies[company_id] = tenant
        if digest is not None:
            write_keys[bytes(digest)] = WriteKey(tenant, revoke_after)
    return Snapshot(write_keys, companies)


class TenantCache:
    def __init__(self, conninfo: str, refresh_seconds: float = 30.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._conninfo = conninfo
        self._refresh = refresh_seconds
        # Wall-clock time, as revoke_after is; a test moves it.
        self._clock = clock
        self._snapshot: Snapshot | None = None
        self._loaded_at = 0.0
        self._miss_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tenant-cache", daemon=True)

    @property
    def loaded(self) -> bool:
        return self._snapshot is not None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    async def by_write_key(self, key: str) -> Tenant | None:
        """The tenant of a live write key; None for a key unknown, revoked or past revoke_after."""
        digest = key_hash(key)
        snap = self._snapshot
        found = snap.write_keys.get(digest) if snap is not None else None
        if found is None:
            snap = await asyncio.to_thread(self._reload_after_miss)
            found = snap.write_keys.get(digest) if snap else None
        return found.tenant if found is not None and found.live(self._clock()) else None

    async def by_company(self, company_id: uuid.UUID) -> Tenant | None:
        snap = self._snapshot
        if snap is not None and company_id in snap.companies:
            return snap.companies[company_id]
        snap = await asyncio.to_thread(self._reload_after_miss)
        return snap.companies.get(company_id) if snap else None

    def _install(self, snap: Snapshot) -> Snapshot:
        self._snapshot = snap
        self._loaded_at = time.monotonic()
        return snap

    def _reload_after_miss(self) -> Snapshot | None:
        with self._miss_lock:
            if time.monotonic() - self._loaded_at < _MISS_RELOAD_SECONDS:
                return self._snapshot
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=2) as conn:
                    return self._install(load(conn))
            except psycopg.Error as exc:
                log.warning("tenant cache: reload after a miss failed: %s", exc)
                return self._snapshot

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._install(load(conn))
                    while not self._stop.is_set():
                        # Any notification, or none within the period, means reload.
                        for _ in conn.notifies(timeout=self._refresh, stop_after=1):
                            pass
                        self._install(load(conn))
            except psycopg.Error as exc:
                # Keep serving the last snapshot while the database is away.
                log.warning("tenant cache: %s; retrying in 1 s", exc)
                self._stop.wait(1.0)
