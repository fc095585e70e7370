"""Least privilege: each process's PostgreSQL role may do its work and is refused the rest.

The database is made as production makes one (sql/bootstrap.sql by a superuser, the
migrations by userflow_migrator); each test connects as a role, as the process does.
Grafana's role (userflow_dashboards) is no process's but is held to the same rules.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from userflow.store import bootstrap, tenants

from .conftest import make_tenant
from .stack import ROLE_OF, as_role

pytestmark = pytest.mark.services

# Every login role sql/bootstrap.sql makes: the processes' and Grafana's.
ROLES = sorted(bootstrap.ROLES.values())
DASHBOARDS = bootstrap.ROLES["dashboards"]


@pytest.fixture
def company(database_url: str) -> Iterator[str]:
    made = make_tenant(database_url, "Roles")
    yield str(made.company_id)


def connect(database_url: str, kind: str) -> psycopg.Connection:
    return psycopg.connect(as_role(database_url, ROLE_OF[kind]), autocommit=True)


def refused(conn: psycopg.Connection, statement: str, *params: object) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement, params or None)


def test_no_role_is_a_superuser_or_can_make_roles_or_bypass_security(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication"
            " FROM pg_roles WHERE rolname = ANY(%s) ORDER BY rolname", (ROLES,)).fetchall()
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database"
                             " WHERE datname = current_database()").fetchone()
    assert [r[0] for r in rows] == ROLES
    assert all(not any(r[1:]) for r in rows), rows
    assert owner == (ROLE_OF["migrate"],)


def test_the_ingest_reads_tenants_and_key_hashes_and_nothing_else(
        database_url: str, company: str) -> None:
    with connect(database_url, "ingest") as conn:
        assert conn.execute("SELECT count(*) FROM api_key WHERE company_id = %s AND kind = 'write'",
                            (company,)).fetchone() == (1,)
        conn.execute("SELECT slug, allowed_origins, rate_limit_per_second FROM company")
        refused(conn, "SELECT email, phone FROM company")
        refused(conn, "SELECT key_prefix FROM api_key")
        refused(conn, "SELECT count(*) FROM user_events")
        refused(conn, "INSERT INTO text_value (value) VALUES ('x')")
        refused(conn, "UPDATE company SET rate_limit_per_second = NULL")
        refused(conn, "UPDATE api_key SET revoked_at = NULL")
        refused(conn, "SELECT userflow_ensure_partition(current_date + 100)")


def test_the_consumer_writes_events_and_cannot_read_or_change_them(
        database_url: str, company: str) -> None:
    with connect(database_url, "consumer") as conn:
        conn.execute("SELECT userflow_ensure_partition(current_date)")
        conn.execute("INSERT INTO text_value (value) VALUES ('a consumer text')"
                     " ON CONFLICT ((md5(value)::uuid)) DO NOTHING")
        conn.execute("INSERT INTO user_events (event_timestamp, received_at, company_id, event_id,"
                     " event_type) VALUES (now(), now(), %s, gen_random_uuid(), 'click')", (company,))
        refused(conn, "SELECT count(*) FROM user_events")
        refused(conn, "DELETE FROM user_events")
        refused(conn, "UPDATE user_events SET is_bot = true")
        refused(conn, "TRUNCATE user_events")
        refused(conn, "SELECT key_hash FROM api_key")
        refused(conn, "SELECT slug FROM company")
        refused(conn, "SELECT userflow_purge_company(%s)", company)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DROP TABLE text_value")


def test_the_operator_manages_tenants_and_keys_but_reads_no_events(database_url: str) -> None:
    with connect(database_url, "operator") as conn:
        made = tenants.create(conn, "Operated")
        tenants.revoke_key(conn, made.read_key)
        refused(conn, "SELECT count(*) FROM user_events")
        refused(conn, "DELETE FROM user_events")
        refused(conn, "SELECT count(*) FROM text_value")
        refused(conn, "INSERT INTO user_events (event_timestamp, received_at, company_id, event_id,"
                      " event_type) VALUES (now(), now(), %s, gen_random_uuid(), 'click')",
                made.company_id)
        # Purge goes through the one function made for it.
        assert tenants.purge(conn, made.company_id) == 0
        assert conn.execute("SELECT count(*) FROM company WHERE company_id = %s",
                            (made.company_id,)).fetchone() == (0,)


def test_the_reader_only_reads(database_url: str, company: str) -> None:
    with connect(database_url, "reader") as conn:
        # Only the tenant schema, scoped to a read key (test_tenant_isolation.py).
        conn.execute("SELECT count(*) FROM tenant.events")
        conn.execute("SELECT slug, name FROM tenant.company")
        refused(conn, "SELECT count(*) FROM events")
        refused(conn, "SELECT value FROM text_value")
        refused(conn, "SELECT user_agent FROM user_agent")
        refused(conn, "SELECT count(*) FROM session_rollup")
        refused(conn, "SELECT email FROM company")
        refused(conn, "SELECT userflow_refresh_rollups()")
        refused(conn, "SELECT key_hash FROM api_key")
        refused(conn, "INSERT INTO text_value (value) VALUES ('x')")
        refused(conn, "DELETE FROM user_events")
        refused(conn, "UPDATE company SET name = 'x'")
        refused(conn, "CREATE TEMP TABLE scratch (x int)")
        refused(conn, "SELECT userflow_ensure_partition(current_date + 101)")


def test_the_dashboards_role_reads_every_tenant_but_no_keys_and_writes_nothing(
        database_url: str, company: str) -> None:
    other = str(make_tenant(database_url, "Roles Other").company_id)
    with psycopg.connect(as_role(database_url, DASHBOARDS), autocommit=True) as conn:
        # Every company's name and what the panels read, without a read key.
        names = {r[0] for r in conn.execute("SELECT company_id::text FROM company")}
        assert {company, other} <= names
        conn.execute("SELECT slug, name FROM company")
        for relation in ("events", "user_events", "user_agent", "text_value", "session_rollup",
                         "session_page_rollup", "actor_hour_rollup", "mv_user_activity",
                         "mv_daily_event_summary"):
            conn.execute(f"SELECT count(*) FROM {relation}")
        conn.execute("SELECT userflow_url_path('https://a.example/x?y'),"
                     " userflow_url_host('https://a.example/')")
        refused(conn, "SELECT key_hash FROM api_key")
        refused(conn, "SELECT email, phone FROM company")
        refused(conn, "SELECT count(*) FROM rollup_pending")
        refused(conn, "SELECT count(*) FROM event_ledger")
        refused(conn, "SELECT count(*) FROM tenant.events")
        refused(conn, "SELECT userflow_refresh_rollups()")
        refused(conn, "SELECT userflow_purge_company(%s)", company)
        # Read-only by default (bootstrap), and without the privileges when it asks to write.
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("UPDATE company SET name = 'x'")
        for write in ("UPDATE company SET name = 'x'", "INSERT INTO text_value (value) VALUES ('x')",
                      "DELETE FROM user_events", "REFRESH MATERIALIZED VIEW mv_user_activity"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute("SET TRANSACTION READ WRITE")
                conn.execute(write)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("1min",)


def test_the_migrator_owns_the_schema_but_not_the_server(database_url: str) -> None:
    with connect(database_url, "migrate") as conn:
        refused(conn, "CREATE ROLE intruder")
        refused(conn, "COPY (SELECT 1) TO PROGRAM 'true'")
        refused(conn, "SELECT pg_read_file('/etc/passwd')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("ALTER ROLE userflow_migrator SUPERUSER")


def test_only_userflows_roles_may_connect(database_url: str, service_env: dict[str, str]) -> None:
    with psycopg.connect(service_env["UF_ADMIN_DATABASE_URL"], autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS uf_stranger")
        admin.execute("CREATE ROLE uf_stranger LOGIN")
    try:
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            psycopg.connect(as_role(database_url, "uf_stranger")).close()
    finally:
        with psycopg.connect(service_env["UF_ADMIN_DATABASE_URL"], autocommit=True) as admin:
            admin.execute("DROP ROLE uf_stranger")
