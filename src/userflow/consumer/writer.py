"""Storing a Batch in PostgreSQL: user agents, texts, partitions, then COPY and one INSERT.

The rows are copied (binary) into a temporary staging table and moved into
`user_events` by one statement that first records their ids in the tenant's
ledger (`event_ledger`, sql/008) and keeps only the rows whose id was new
there, however far in time from the first copy a retry is. User agents,
dictionary texts (URLs, titles, element texts) and partitions are settled
in their own short transactions first: a partition
takes a strong lock on `user_events`, which inside the batch transaction
could deadlock with another consumer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from typing import Any, Final

import psycopg
from psycopg import errors, postgres, sql
from psycopg.adapt import Dumper
from psycopg.pq import Format

from userflow.consumer.batch import Batch, Poison
from userflow.consumer.rows import COLUMNS, COPY_TYPES, TEXT_IDS, USER_AGENT_ID
from userflow.events import columns
from userflow.events.enrich import describe_user_agent

log = logging.getLogger(__name__)

_COLUMN_LIST: Final = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
# From the row format, not LIKE user_events: that would need SELECT on every
# event, which the consumer's role does not have. Each row's ledger key is
# computed as it is copied in (sql/008).
_CREATE_STAGING: Final = sql.SQL(
    "CREATE TEMP TABLE IF NOT EXISTS staging ({}, id_digest uuid GENERATED ALWAYS AS"
    " (userflow_event_digest(company_id, event_id)) STORED) ON COMMIT DELETE ROWS"
).format(sql.SQL(", ").join(
    sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in columns.COLUMNS))
_COPY: Final = sql.SQL("COPY staging ({}) FROM STDIN (FORMAT BINARY)").format(_COLUMN_LIST)
# The batch's ids go into the ledger first, sorted, so two consumers
# inserting overlapping ids lock them in the same order; only the rows whose
# id was new there go into user_events, in the same transaction. Staging holds
# each id once (the decode step dropped in-batch duplicates). What was stored
# is reported to rollup_pending in the same statement, so the rollups see a
# row exactly when it is committed (sql/010_analytics.sql).
_INSERT: Final = sql.SQL(
    """
    WITH fresh AS (
        INSERT INTO event_ledger (id_digest, event_timestamp)
        SELECT id_digest, event_timestamp FROM staging ORDER BY id_digest
        ON CONFLICT DO NOTHING
        RETURNING id_digest
    ), stored AS (
        INSERT INTO user_events ({columns})
        SELECT {staged} FROM staging s JOIN fresh f USING (id_digest)
    ), pending AS (
        INSERT INTO rollup_pending
        SELECT s.company_id, s.session_id, coalesce(s.user_id, s.anonymous_id),
               date_trunc('hour', s.event_timestamp, 'UTC'), s.is_bot,
               min(s.event_timestamp), max(s.event_timestamp), count(*),
               count(*) FILTER (WHERE s.event_type = 'page_view'),
               count(*) FILTER (WHERE s.event_type = 'click'),
               count(*) FILTER (WHERE s.event_type = 'scroll'),
               count(*) FILTER (WHERE s.event_type = 'form_submit'),
               count(*) FILTER (WHERE s.event_type = 'hover'),
               count(*) FILTER (WHERE s.event_type = 'keydown'),
               count(*) FILTER (WHERE s.event_type = 'custom'),
               count(*) FILTER (WHERE s.event_type = 'identify')
        FROM staging s JOIN fresh f USING (id_digest)
        GROUP BY 1, 2, 3, 4, 5
    )
    SELECT count(*) FROM fresh
    """
).format(
    columns=_COLUMN_LIST,
    staged=sql.SQL(", ").join(sql.Identifier("s", c) for c in COLUMNS),
)
# The agents come sorted, for the same reason as the event keys above.
_UPSERT_AGENTS: Final = """
    INSERT INTO user_agent
        (user_agent, browser, browser_version, os, os_version, device_type, is_bot)
    SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                         %s::bool[])
    ON CONFLICT (user_agent) DO NOTHING
"""
_SELECT_AGENTS: Final = (
    "SELECT user_agent, user_agent_id FROM user_agent WHERE user_agent = ANY(%s::text[])"
)
# A process sees few distinct agents; past this many the map starts over.
_AGENT_IDS_MAX: Final = 200_000
# Sorted, like the agents; the digest index is what makes a text unique.
_UPSERT_TEXTS: Final = """
    INSERT INTO text_value (value) SELECT unnest(%s::text[])
    ON CONFLICT ((md5(value)::uuid)) DO NOTHING
"""
_SELECT_TEXTS: Final = """
    SELECT t.value, t.text_id FROM unnest(%s::text[]) AS wanted(value)
    JOIN text_value t ON md5(t.value)::uuid = md5(wanted.value)::uuid
"""
_TEXT_IDS_MAX: Final = 500_000
_DETAIL_MAX: Final = 500


class UnencodableRow(ValueError):
    """psycopg could not turn a row's value into its column's wire form."""


def is_row_error(exc: BaseException) -> bool:
    """Whether the data (some row of it) is at fault, not the database's state."""
    if isinstance(exc, errors.UniqueViolation):
        return False
    return isinstance(
        exc,
        (UnencodableRow, psycopg.DataError, psycopg.IntegrityError, errors.ProgramLimitExceeded),
    )


class _PackedInetDumper(Dumper):
    """inet from `rows.inet_binary`'s bytes, which are already its binary wire form."""

    format = Format.BINARY
    oid = postgres.types["inet"].oid

    def dump(self, obj: bytes) -> bytes:
        return obj


class _JsonTextJsonbDumper(Dumper):
    """jsonb from JSON text (orjson's bytes): binary jsonb is a version byte, then the text."""

    format = Format.BINARY
    oid = postgres.types["jsonb"].oid

    def dump(self, obj: bytes) -> bytes:
        return b"\x01" + obj


class Writer:
    """Owns one connection (autocommit off) and the process-local agent ids and known days."""

    def __init__(self, conninfo: str, statement_timeout_ms: int = 30_000) -> None:
        self._conninfo = conninfo
        self._statement_timeout_ms = statement_timeout_ms
        self._conn: psycopg.Connection[Any] | None = None
        self._agent_ids: dict[str, int] = {}
        self._text_ids: dict[str, int] = {}
        self._days: set[date] = set()

    def write(self, batch: Batch) -> None:
        """Store the batch's rows; rows the database refuses become batch poison.

        Raises psycopg.Error for anything that is not the rows' fault (the
        caller retries); the connection is then dropped and made anew.
        """
        if not batch.rows:  # every message was poison or a duplicate
            return
        try:
            conn = self._connection()
            self._resolve_agents(conn, batch)
            self._ensure_partitions(conn, batch.days)
            inserted, refused = self._store(conn, batch.rows, list(range(len(batch.rows))))
        except psycopg.Error:
            self.close()
            raise
        batch.inserted = inserted
        batch.duplicates += len(batch.rows) - inserted - len(refused)
        batch.poison.extend(
            Poison(batch.sources[index], reason, detail) for index, reason, detail in refused
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        conn = psycopg.connect(
            self._conninfo,
            autocommit=False,
            connect_timeout=10,
            application_name="userflow-consumer",
            options=f"-c statement_timeout={self._statement_timeout_ms}",
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )
        # Registered by oid only, so they serve COPY's set_types and nothing else.
        conn.adapters.register_dumper(None, _PackedInetDumper)
        conn.adapters.register_dumper(None, _JsonTextJsonbDumper)
        conn.execute(_CREATE_STAGING)
        conn.commit()
        self._conn = conn
        return conn

    def _resolve_agents(self, conn: psycopg.Connection[Any], batch: Batch) -> None:
        ids = self._agent_ids
        if len(ids) > _AGENT_IDS_MAX:
            ids.clear()
        unseen = sorted({ua for ua in batch.user_agents if ua is not None and ua not in ids})
        if unseen:
            infos = [describe_user_agent(ua) for ua in unseen]
            conn.execute(
                _UPSERT_AGENTS,
                (
                    unseen,
                    [i.browser for i in infos],
                    [i.browser_version for i in infos],
                    [i.os for i in infos],
                    [i.os_version for i in infos],
                    [i.device_type for i in infos],
                    [i.is_bot for i in infos],
                ),
            )
            ids.update(conn.execute(_SELECT_AGENTS, (unseen,)).fetchall())
            conn.commit()
        for row, ua in zip(batch.rows, batch.user_agents, strict=True):
            row[USER_AGENT_ID] = None if ua is None else ids[ua]

    def _ensure_partitions(self, conn: psycopg.Connection[Any], days: set[date]) -> None:
        for day in sorted(days - self._days):
            conn.execute("SELECT userflow_ensure_partition(%s::date)", (day,))
            conn.commit()
            self._days.add(day)

    def _store(
        self, conn: psycopg.Connection[Any], rows: list[list[Any]], positions: list[int]
    ) -> tuple[int, list[tuple[int, str, str]]]:
        """Insert rows[positions]; on a data error, halve until the bad rows stand alone."""
        try:
            return self._insert(conn, [rows[i] for i in positions]), []
        except (psycopg.Error, UnencodableRow) as exc:
            if not is_row_error(exc):
                raise
            conn.rollback()
            if len(positions) == 1:
                return 0, [(positions[0], *_refusal(exc))]
        middle = len(positions) // 2
        first, first_refused = self._store(conn, rows, positions[:middle])
        second, second_refused = self._store(conn, rows, positions[middle:])
        return first + second, first_refused + second_refused

    def _new_text_ids(
        self, conn: psycopg.Connection[Any], rows: Sequence[list[Any]]
    ) -> dict[str, int]:
        """Ids for the rows' dictionary texts not yet known, made in the batch's transaction.

        Inside it, so a text PostgreSQL refuses is isolated with its row by
        the bisect; known to the process only once that transaction commits.
        """
        known = self._text_ids
        if len(known) > _TEXT_IDS_MAX:
            known.clear()
        unseen = sorted(
            {row[i] for row in rows for i in TEXT_IDS if row[i] is not None and row[i] not in known}
        )
        if not unseen:
            return {}
        conn.execute(_UPSERT_TEXTS, (unseen,))
        return dict(conn.execute(_SELECT_TEXTS, (unseen,)).fetchall())

    def _insert(self, conn: psycopg.Connection[Any], rows: Sequence[list[Any]]) -> int:
        known = self._text_ids
        new = self._new_text_ids(conn, rows)
        with conn.cursor() as cur:
            with cur.copy(_COPY) as copy:
                copy.set_types(COPY_TYPES)
                for row in rows:
                    # A copy: the batch keeps its texts in case it is written again.
                    out = row.copy()
                    for i in TEXT_IDS:
                        text = out[i]
                        if text is not None:
                            out[i] = known.get(text) or new[text]
                    try:
                        copy.write_row(out)
                    except (TypeError, ValueError, OverflowError) as exc:
                        # Leaving the block with an error aborts the COPY.
                        raise UnencodableRow(f"{type(exc).__name__}: {exc}") from exc
            # Never prepared: psycopg prepares a statement run five times, and
            # a prepared statement without parameters keeps the plan it got
            # first. Made while the day's partitions were nearly empty, that
            # plan probed them by sequential scan for every staged row, and
            # each batch got slower as the day filled (2.5 s, then 10 s, in
            # `make bench`). Planned afresh, it sees their sizes now (~1 ms).
            cur.execute(_INSERT, prepare=False)
            counted = cur.fetchone()
            inserted = int(counted[0]) if counted else 0
        conn.commit()
        known.update(new)
        return inserted


def _refusal(exc: psycopg.Error | UnencodableRow) -> tuple[str, str]:
    """The dead-letter reason and detail for a row the database (or psycopg) refused."""
    if isinstance(exc, UnencodableRow):
        reason, detail = "unencodable", str(exc)
    else:
        reason = f"db_refused:{exc.sqlstate or 'client'}"
        detail = exc.diag.message_primary or str(exc)
    log.warning("row refused", extra={"reason": reason, "error": detail})
    return reason, detail[:_DETAIL_MAX]
