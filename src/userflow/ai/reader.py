"""One tenant's questions to the database, as the reader role: the metrics' queries and run_sql.

A Reader holds a pool of `userflow_reader` connections and one read key; every
question is a read-only transaction scoped to that key (analytics.scope), so
whatever runs through it sees that company's rows and nothing else.

run_sql (`Reader.sql`) is safe by construction, not by reading the SQL: the
statement goes as a bound parameter to userflow_tenant_sql()
(sql/020_sealed_read_scope.sql), which runs it as the reader, in the
read-only transaction whose scope the statement cannot switch, under a
statement timeout, as a cursor (one statement that returns rows, or the
server refuses it), keeping at most `sql_max_rows` rows and `sql_max_bytes`
of JSON and counting the rest. The transaction is always rolled back, so
even a setting the statement changed for the session is undone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Final
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool

from userflow.analytics import query as queries
from userflow.analytics.errors import bad
from userflow.analytics.query import Answer, Query
from userflow.analytics.scope import tenant_connection, tenant_transaction
from userflow.config import Settings

# A statement longer than this is not a question an analyst types.
MAX_SQL_CHARS: Final = 20_000
# What each refusal means, by SQLSTATE class or code, for the analyst reading it.
_REFUSALS: Final = {
    "42P11": "run_sql takes one statement that returns rows (SELECT, WITH … SELECT, VALUES, TABLE, "
             "EXPLAIN or SHOW)",
    "25006": "run_sql is read-only",
    "42501": "not permitted: run_sql reads the tenant views only (describe_data lists them), as the "
             "tenant's read-only role",
    "57014": "cancelled by the statement timeout",
}


@dataclass(frozen=True, slots=True)
class Limits:
    statement_timeout_ms: int  # a metric's question
    work_mem_mb: int
    sql_timeout_ms: int  # one run_sql statement
    sql_max_rows: int
    sql_max_bytes: int

    @classmethod
    def of(cls, s: Settings) -> Limits:
        return cls(s.api_statement_timeout_ms, s.api_work_mem_mb, s.mcp_sql_timeout_ms,
                   s.mcp_sql_max_rows, s.mcp_sql_max_bytes)


@dataclass(frozen=True, slots=True)
class SqlAnswer:
    columns: list[str]
    rows: list[list[Any]]
    cut: int  # rows the statement gave beyond the ones kept
    sql_ms: float


class SqlRefused(ValueError):
    """The database refused a run_sql statement; the message says why, as PostgreSQL put it."""

    def __init__(self, reason: str, detail: str, sqlstate: str | None) -> None:
        super().__init__(f"{reason}: {detail}" if reason else detail)
        self.sqlstate = sqlstate


def open_pool(s: Settings, max_size: int | None = None) -> ConnectionPool[Any]:
    """A pool of reader connections (opened; close it when done)."""
    return ConnectionPool(s.database_url_for("reader"), min_size=1,
                          max_size=max_size or s.api_pool_max, kwargs={"autocommit": True},
                          name="userflow-ai", open=True)


class Reader:
    """The questions of one read key's company."""

    def __init__(self, pool: ConnectionPool[Any], read_key: str, limits: Limits) -> None:
        self._pool = pool
        self.read_key = read_key
        self.limits = limits

    def company(self) -> UUID:
        """The key's company; NotAuthorized when it is not a live read key."""
        with self._pool.connection() as conn, tenant_transaction(
                conn, self.read_key, self.limits.statement_timeout_ms) as company:
            return company

    def run(self, query: Query[Any]) -> Answer[Any]:
        return self.run_all([query])[0]

    def run_all(self, batch: Sequence[Query[Any]]) -> list[Answer[Any]]:
        """The queries' answers, from one transaction."""
        with tenant_connection(self._pool, self.read_key, self.limits.statement_timeout_ms,
                               self.limits.work_mem_mb) as conn:
            return [queries.run(conn, q) for q in batch]

    def sql(self, statement: object) -> SqlAnswer:
        if not isinstance(statement, str) or not statement.strip():
            raise bad("sql", "is required: one SQL statement")
        if len(statement) > MAX_SQL_CHARS or "\x00" in statement:
            raise bad("sql", f"over {MAX_SQL_CHARS} characters or holds NUL")
        limits = self.limits
        with self._pool.connection() as conn:
            try:
                return self._sql(conn, statement)
            except psycopg.Error as exc:
                # A lost connection is the server's trouble, not the statement's.
                if exc.sqlstate is None or exc.sqlstate.startswith("08"):
                    raise
                reason = _REFUSALS.get(exc.sqlstate, "")
                if exc.sqlstate == "57014":
                    reason += f" ({limits.sql_timeout_ms} ms); narrow the question"
                detail = exc.diag.message_primary or str(exc)
                if exc.diag.message_hint:
                    detail += f" (hint: {exc.diag.message_hint})"
                raise SqlRefused(reason, detail, exc.sqlstate) from None
            finally:
                # Session-level advisory locks outlive a rollback; none may stay on a pooled
                # connection (one on the rollup refresh's key would stall pg_cron's refresh).
                if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                    conn.execute("SELECT pg_advisory_unlock_all()")

    def _sql(self, conn: psycopg.Connection[Any], statement: str) -> SqlAnswer:
        limits = self.limits
        answer: SqlAnswer | None = None
        with tenant_transaction(conn, self.read_key, limits.sql_timeout_ms, limits.work_mem_mb):
            # Unqualified names are the tenant views' first (`events` is tenant.events), then
            # public's (the helpers userflow_url_path and userflow_url_host).
            conn.execute("SELECT set_config('search_path', 'tenant, public', true)")
            started = perf_counter()
            row = conn.execute("SELECT public.userflow_tenant_sql(%s, %s::integer, %s::integer)",
                               (statement, limits.sql_max_rows, limits.sql_max_bytes)).fetchone()
            took = (perf_counter() - started) * 1000
            assert row is not None
            got = row[0]
            answer = SqlAnswer(list(got["columns"]), list(got["rows"]), int(got["cut"]), took)
            # Nothing the statement did to the session (a setting, a lock's wait) is kept.
            raise psycopg.Rollback()
        assert answer is not None
        return answer


@contextmanager
def reader_of(s: Settings, read_key: str) -> Iterator[Reader]:
    """A Reader with a pool of its own, for a process that serves one tenant (stdio, a report)."""
    pool = open_pool(s, max_size=2)
    try:
        yield Reader(pool, read_key, Limits.of(s))
    finally:
        pool.close()
