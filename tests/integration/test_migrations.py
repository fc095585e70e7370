"""Migrations: an empty database gets the whole schema; a second run changes nothing."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import psycopg
import pytest

from userflow.store import bootstrap, migrate

from .stack import ROLE_OF, as_role, scratch_database

pytestmark = pytest.mark.services


def schema_fingerprint(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT c.relname, c.relkind, count(a.attnum) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"
            " WHERE n.nspname = 'public' GROUP BY 1, 2 ORDER BY 1").fetchall()


def test_empty_database_then_no_change(service_env: dict[str, str]) -> None:
    """As production runs them: a superuser bootstraps the roles, the migrator migrates."""
    with scratch_database(service_env["UF_ADMIN_DATABASE_URL"],
                          f"uf_mig_{uuid.uuid4().hex[:8]}") as admin:
        bootstrap.apply(admin, migrate.REPOSITORY_SQL, {})
        url = as_role(admin, ROLE_OF["migrate"])
        applied = migrate.apply(url, migrate.REPOSITORY_SQL)
        assert applied == [m.version for m in migrate.discover(migrate.REPOSITORY_SQL)]
        before = schema_fingerprint(url)
        names = {row[0] for row in before}
        assert {"company", "api_key", "user_events", "text_value", "user_agent", "events",
                "mv_user_activity", "mv_daily_event_summary"} <= names
        assert any(n.startswith("user_events_p") for n in names)
        assert migrate.apply(url, migrate.REPOSITORY_SQL) == []
        assert schema_fingerprint(url) == before


def test_an_edited_migration_is_refused(service_env: dict[str, str], tmp_path: Path) -> None:
    sql = tmp_path / "sql"
    shutil.copytree(migrate.REPOSITORY_SQL, sql)
    with scratch_database(service_env["UF_ADMIN_DATABASE_URL"],
                          f"uf_mig_{uuid.uuid4().hex[:8]}") as url:
        migrate.apply(url, sql)
        first = sorted(sql.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited\n")
        with pytest.raises(migrate.MigrationChanged):
            migrate.apply(url, sql)


def test_pg_cron_jobs_in_the_cron_database(service_env: dict[str, str]) -> None:
    """In the database pg_cron serves, the migrations schedule its jobs, and the jobs run
    as the migrator (who owns what they change), not as a superuser."""
    url = service_env["UF_MIGRATE_DATABASE_URL"]
    migrate.apply(url, migrate.REPOSITORY_SQL)
    with psycopg.connect(url) as conn:
        users = {u for (u,) in conn.execute(
            "SELECT DISTINCT username FROM cron.job WHERE jobname LIKE 'userflow-%'")}
    assert users == {ROLE_OF["migrate"]}
    with psycopg.connect(url) as conn:
        jobs = dict(conn.execute("SELECT jobname, schedule FROM cron.job").fetchall())
        for job in ("userflow-refresh-views", "userflow-partitions", "userflow-retention"):
            command = conn.execute("SELECT command FROM cron.job WHERE jobname = %s",
                                   (job,)).fetchone()[0]
            conn.execute(command)  # each job's command runs cleanly as scheduled
    assert jobs["userflow-refresh-views"] == "*/10 * * * *"
