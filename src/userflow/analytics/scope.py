"""A read-only transaction that sees one tenant: the company of a read key.

The key is bound to the transaction by userflow_bind_read_key() (the setting
userflow.read_key, sealed so that a later statement cannot switch it:
sql/020_sealed_read_scope.sql); the `tenant` views (sql/010_analytics.sql)
show only that company's rows, so a statement cannot read another tenant's
whatever it says. A key that is not a live read key (a write key, a revoked
one, nonsense) sees nothing and is refused here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool

from userflow.analytics.errors import NotAuthorized

# A key is far shorter; anything longer is not one.
MAX_KEY_CHARS = 256


@contextmanager
def tenant_transaction(conn: psycopg.Connection[Any], read_key: str,
                       timeout_ms: int, work_mem_mb: int = 32) -> Iterator[UUID]:
    """Inside: conn reads as the key's company (yielded); the transaction is read-only."""
    if not read_key or len(read_key) > MAX_KEY_CHARS or "\x00" in read_key:
        raise NotAuthorized("not a read key")
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        # work_mem: a question sorts and hashes a tenant's month of events; PostgreSQL's
        # 4 MB default sends retention's and adoption's to disk. jit: compiling the
        # plans of the questions that read events cost more than it saved (10M events:
        # adoption 5.2 s with it, 3.5 s without; heatmap 1.3 s, 0.85 s).
        # TimeZone: the hours the SQL truncates to are the rollups' UTC hours.
        # plan_cache_mode: psycopg prepares a statement run five times on a connection,
        # and PostgreSQL's generic plan for it knows neither the range nor the tenant, so
        # it cannot prune partitions when planning (10M events: adoption 1.5-3 s planned
        # for its values, 4-6 s generic).
        conn.execute("SELECT userflow_bind_read_key(%s),"
                     " set_config('statement_timeout', %s, true), set_config('work_mem', %s, true),"
                     " set_config('jit', 'off', true), set_config('TimeZone', 'UTC', true),"
                     " set_config('plan_cache_mode', 'force_custom_plan', true)",
                     (read_key, str(timeout_ms), f"{work_mem_mb}MB"))
        # A statement of its own: the views refuse a key bound by the statement that reads.
        row = conn.execute("SELECT userflow_read_company()").fetchone()
        company = row[0] if row else None
        if company is None:
            raise NotAuthorized("not a live read key")
        yield company


@contextmanager
def tenant_connection(pool: ConnectionPool[Any], read_key: str, timeout_ms: int,
                      work_mem_mb: int = 32) -> Iterator[psycopg.Connection[Any]]:
    with pool.connection() as conn, tenant_transaction(conn, read_key, timeout_ms, work_mem_mb):
        yield conn
