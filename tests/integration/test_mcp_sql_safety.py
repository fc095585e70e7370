"""run_sql and the tools' arguments cannot harm or leak: each escape fails with a clear error
and changes nothing (every table's rows counted before and after).

run_sql is the tools' own (ai/tools.py through a Reader as the reader role, as
the MCP server runs it): writes, DDL, COPY … PROGRAM, server files, dblink,
SET ROLE, switching the read scope to another tenant's key by set_config or
by the binder inside the statement, the tables behind the views, several
statements, sleeping past the timeout. What a statement may do to its session
(a setting, an advisory lock, a large object, a notification) does not
outlive its call, and another tenant's SQL text never shows in
pg_stat_activity.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from userflow.ai import tools
from userflow.ai.reader import Limits, Reader
from userflow.analytics.errors import NotAuthorized

from .analytics_support import refresh
from .mcp_support import B_AGENT, B_PAGE, B_TEXT, Seed, counts, seed
from .stack import ROLE_OF, as_role, wait_for

MARKER = Path("/tmp/userflow-mcp-escape-marker")
LIMITS = Limits(statement_timeout_ms=20_000, work_mem_mb=32, sql_timeout_ms=1_000,
                sql_max_rows=50, sql_max_bytes=100_000)


@pytest.fixture(scope="module")
def seeded(database_url: str) -> Seed:
    return seed(database_url)


@pytest.fixture(scope="module")
def pool(database_url: str) -> Iterator[ConnectionPool[Any]]:
    # One connection: every call reuses the connection an escape ran on.
    with ConnectionPool(as_role(database_url, ROLE_OF["reader"]), min_size=1, max_size=1,
                        kwargs={"autocommit": True}) as p:
        yield p


def reader(pool: ConnectionPool[Any], key: str, limits: Limits = LIMITS) -> Reader:
    return Reader(pool, key, limits)


def run_sql(r: Reader, sql: str) -> tools.Outcome:
    return tools.answer(r, "run_sql", {"sql": sql})


def escapes(s: Seed) -> list[tuple[str, str, str]]:
    """(statement, the SQLSTATE it fails with, a word of the message)."""
    other = s.b.read_key
    return [
        # writes, through the views and around them
        ("INSERT INTO tenant.company (slug) VALUES ('x') RETURNING slug", "42501", "permission"),
        ("UPDATE tenant.session_rollup SET events = 0 RETURNING 1", "42501", "permission"),
        ("DELETE FROM tenant.session_rollup RETURNING 1", "42501", "permission"),
        ("WITH gone AS (DELETE FROM public.user_events RETURNING 1) SELECT count(*) FROM gone",
         "25006", "read-only"),
        ("INSERT INTO public.company (slug, name) VALUES ('x', 'x')", "42P11", "one statement"),
        ("UPDATE public.api_key SET revoked_at = now()", "42P11", "one statement"),
        ("DELETE FROM public.user_events", "42P11", "one statement"),
        ("TRUNCATE public.user_events", "42P11", "one statement"),
        # DDL
        ("CREATE TABLE tenant.x (i int)", "42P11", "one statement"),
        ("DROP TABLE public.user_events", "42P11", "one statement"),
        ("DROP VIEW tenant.events", "42P11", "one statement"),
        ("ALTER TABLE public.user_events ADD COLUMN x int", "42P11", "one statement"),
        ("CREATE EXTENSION dblink", "42P11", "one statement"),
        # the server's files and programs, other databases
        (f"COPY (SELECT 1) TO PROGRAM 'touch {MARKER}'", "42P11", "one statement"),
        ("COPY public.user_events TO STDOUT", "42P11", "one statement"),
        ("SELECT pg_read_file('/etc/passwd')", "42501", "pg_read_file"),
        ("SELECT pg_ls_dir('.')", "42501", "pg_ls_dir"),
        ("SELECT lo_import('/etc/passwd')", "42501", "lo_import"),
        ("SELECT * FROM dblink('dbname=postgres', 'SELECT 1') AS t(i int)", "42883", "dblink"),
        # roles
        ("SET ROLE userflow_migrator", "42P11", "one statement"),
        ("SELECT set_config('role', 'userflow_migrator', true)", "42501", "role"),
        ("SELECT set_config('session_authorization', 'postgres', true)", "42501", "authorization"),
        ("RESET ROLE", "42P11", "one statement"),
        # the read scope: another tenant's key, set or bound inside the statement
        (f"SELECT (SELECT set_config('userflow.read_key', '{other}', true)), "
         "(SELECT count(*) FROM events)", "42501", "userflow_bind_read_key"),
        (f"WITH b AS MATERIALIZED (SELECT userflow_bind_read_key('{other}') AS x) "
         "SELECT (SELECT count(*) FROM b), (SELECT count(*) FROM events)",
         "42501", "cannot change its own scope"),
        (f"WITH b AS MATERIALIZED (SELECT userflow_bind_read_key('{other}', true) AS x) "
         "SELECT (SELECT count(*) FROM b), (SELECT page_url FROM events LIMIT 1)",
         "42501", "cannot change its own scope"),
        ("SELECT (SELECT set_config('userflow.read_seal', '', true)), "
         "(SELECT count(*) FROM events)", "42501", "userflow_bind_read_key"),
        (f"SET userflow.read_key = '{other}'", "42P11", "one statement"),
        ("SELECT set_config('transaction_read_only', 'off', true)", "25001", "read-write"),
        # the tables behind the views, the dictionaries, the keys, the seal's secret
        ("SELECT * FROM public.user_events", "42501", "user_events"),
        ("SELECT * FROM public.events", "42501", "events"),
        ("SELECT value FROM text_value", "42501", "text_value"),
        ("SELECT user_agent FROM user_agent", "42501", "user_agent"),
        ("SELECT key_hash FROM api_key", "42501", "api_key"),
        ("SELECT * FROM read_scope_secret", "42501", "read_scope_secret"),
        ("SELECT * FROM public.session_rollup", "42501", "session_rollup"),
        ("SELECT userflow_read_seal('k', '1')", "42501", "userflow_read_seal"),
        ("SELECT * FROM public.actor_first_seen", "42501", "actor_first_seen"),
        # other sessions: the API's and other tenants' questions run as the same role
        ("SELECT pg_cancel_backend(pid) FROM pg_stat_activity", "42501", "pg_cancel_backend"),
        ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity", "42501", "pg_terminate_backend"),
        # one statement only
        ("SELECT 1; SELECT 2", "42P11", "one statement"),
        ("SELECT 1; DROP TABLE public.user_events", "42P11", "one statement"),
        # time
        ("SELECT pg_sleep(120)", "57014", "timeout"),
        ("SELECT set_config('statement_timeout', '0', true), pg_sleep(120)", "57014", "timeout"),
    ]


def test_every_escape_fails_clearly_and_changes_nothing(database_url: str, seeded: Seed,
                                                        pool: ConnectionPool[Any]) -> None:
    before = counts(database_url)
    r = reader(pool, seeded.a.read_key)
    wrong = []
    for statement, sqlstate, word in escapes(seeded):
        out = run_sql(r, statement)
        if not (out.is_error and out.content["code"] == "sql_refused"
                and out.content["sqlstate"] == sqlstate
                and word.lower() in out.content["message"].lower()):
            wrong.append((statement, out.content))
    assert wrong == [], "\n".join(f"{w[0][:90]} -> {str(w[1])[:300]}" for w in wrong)
    # A switch the scope was read before (the view's scope comes first here) reads A's own rows.
    late = run_sql(r, f"SELECT set_config('userflow.read_key', '{seeded.b.read_key}', true),"
                      " count(*) FROM events WHERE page_url LIKE '%secret%'")
    assert late.content["rows"] == [[seeded.b.read_key, 0]]
    assert counts(database_url) == before
    assert not MARKER.exists()
    # The pooled connection still answers A's questions as A.
    assert run_sql(r, "SELECT slug FROM tenant.company").content["rows"] == [[
        _slug(database_url, seeded.a.company_id)]]


def _slug(database_url: str, company: Any) -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT slug FROM company WHERE company_id = %s", (company,)).fetchone()
    assert row is not None
    return str(row[0])


def test_another_tenant_s_rows_and_texts_are_out_of_reach(database_url: str, seeded: Seed,
                                                          pool: ConnectionPool[Any]) -> None:
    a, b = reader(pool, seeded.a.read_key), reader(pool, seeded.b.read_key)
    everything = ("SELECT page_url, element_text, user_agent, company_id FROM events "
                  "UNION ALL SELECT entry_page, NULL, NULL, company_id FROM session_rollup")
    seen_by_a = str(run_sql(a, everything).content)
    for secret in (B_PAGE, B_TEXT, B_AGENT, str(seeded.b.company_id)):
        assert secret not in seen_by_a
    assert run_sql(a, f"SELECT count(*) FROM events WHERE company_id = '{seeded.b.company_id}'"
                   ).content["rows"] == [[0]]
    seen_by_b = str(run_sql(b, everything).content)
    assert B_PAGE in seen_by_b and B_TEXT in seen_by_b and B_AGENT in seen_by_b
    assert "/pricing" not in seen_by_b
    # A write key and a made-up key read nothing.
    for key in (seeded.b.write_key, "ufr_made-up"):
        with pytest.raises(NotAuthorized):
            reader(pool, key).sql("SELECT 1")


def test_hostile_tool_arguments_are_refused_or_read_only_their_tenant(
        database_url: str, seeded: Seed, pool: ConnectionPool[Any]) -> None:
    before = counts(database_url)
    a = reader(pool, seeded.a.read_key)
    span = {"from": seeded.start, "to": seeded.end}
    hostile = "'; DROP TABLE user_events; --"
    # (tool, arguments, refused?); what is not refused counts nothing of B's
    calls: list[tuple[str, dict[str, Any], bool]] = [
        ("sessions", {**span, "device_type": hostile}, False),
        ("sessions", {**span, "page": [B_PAGE, "\") UNION SELECT value FROM text_value --"]}, False),
        ("breakdown", {**span, "dimension": "device_type; DROP TABLE user_events"}, True),
        ("heatmap", {**span, "page": B_PAGE}, False),
        ("heatmap", {**span, "page": "/' OR 1=1 --"}, False),
        ("timeline", {"user_id": "buser"}, True),  # no such user of A's: 404's not_found
        ("paths", {**span, "after": B_PAGE}, False),
        ("experiments", {**span, "experiment_id": "x' OR '1'='1", "goal_event_type": "click"},
         True),
        ("funnel", {**span, "steps": [{"event_type": "page_view", "page": B_PAGE},
                                      {"event_type": "click", "element_selector": hostile}]},
         False),
        ("pages", {**span, "limit": 5, "tz": "UTC'; SELECT pg_sleep(10); --"}, True),
        ("run_sql", {"sql": "SELECT 1", "role": "userflow_migrator"}, True),
        ("adoption", {**span, "feature": "#b"}, False),  # B's element selector
    ]
    for name, arguments, refused in calls:
        out = tools.answer(a, name, arguments)
        assert out.is_error == refused, (name, arguments, out.content)
        text = str(out.content)
        assert B_TEXT not in text and B_AGENT not in text, name
        if name in ("sessions", "heatmap"):
            assert out.content["population"]["sessions"] == 0, (name, out.content["population"])
        if name == "adoption":
            assert out.content["result"]["adopters"] == 0
    assert counts(database_url) == before


def test_what_a_statement_does_to_its_session_does_not_outlive_it(
        database_url: str, seeded: Seed, pool: ConnectionPool[Any]) -> None:
    a = reader(pool, seeded.a.read_key)
    assert not run_sql(a, "SELECT set_config('application_name', 'pwned', false),"
                          " set_config('search_path', 'pg_temp', false)").is_error
    assert not run_sql(a, "SELECT pg_advisory_lock(hashtext('userflow_refresh_rollups')),"
                          " pg_advisory_lock(42)").is_error
    assert not run_sql(a, "SELECT lo_create(0), pg_notify('userflow_tenants', 'x')").is_error
    got = run_sql(a, "SELECT current_setting('application_name'), current_setting('search_path')")
    assert got.content["rows"] == [["", "tenant, public"]]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid IN "
                            "(SELECT pid FROM pg_stat_activity WHERE usename = 'userflow_reader')"
                            ).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone() == (0,)
    refresh(database_url)  # the refresh's lock is free: this returns


def test_another_tenant_s_sql_text_never_shows_in_pg_stat_activity(
        database_url: str, seeded: Seed, pool: ConnectionPool[Any]) -> None:
    slow = Limits(20_000, 32, 60_000, 50, 100_000)
    secret = "b-literal-secret-4711"
    done: list[tools.Outcome] = []
    with ConnectionPool(as_role(database_url, ROLE_OF["reader"]), min_size=1, max_size=1,
                        kwargs={"autocommit": True}) as other_pool:
        b = reader(other_pool, seeded.b.read_key, slow)
        worker = threading.Thread(target=lambda: done.append(
            run_sql(b, f"SELECT pg_sleep(3), '{secret}' AS s")))
        worker.start()
        a = reader(pool, seeded.a.read_key)
        watch = ("SELECT query FROM pg_stat_activity WHERE state = 'active'"
                 " AND wait_event = 'PgSleep' AND pid <> pg_backend_pid()")
        seen: list[Any] = []

        def sleeping() -> bool:
            seen[:] = run_sql(a, watch).content["rows"]
            return bool(seen)

        wait_for(sleeping, 30, "tenant B's statement to be running")
        worker.join(60)
    assert done and not done[0].is_error
    assert all(secret not in row[0] and "userflow_tenant_sql" in row[0] for row in seen), seen


def test_rows_past_the_cap_are_cut_and_counted(seeded: Seed, pool: ConnectionPool[Any]) -> None:
    a = reader(pool, seeded.a.read_key)
    got = run_sql(a, "SELECT g FROM generate_series(1, 130) g").content
    assert got["row_count"] == 50 and got["cut"] == 80 and got["rows"][-1] == [50]
    wide = run_sql(a, "SELECT repeat('x', 30000) FROM generate_series(1, 10)").content
    assert wide["row_count"] == 3 and wide["cut"] == 7
