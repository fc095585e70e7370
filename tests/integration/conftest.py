from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from userflow.store import tenants
from userflow.store.tenants import NewTenant

from .browser import browser, playwright  # noqa: F401 - fixtures for the browser tests
from .stack import Stack, prepared_database, stack_env


@pytest.fixture(scope="session")
def database_url(service_env: dict[str, str]) -> Iterator[str]:
    with prepared_database(service_env["UF_ADMIN_DATABASE_URL"],
                           f"uf_it_{uuid.uuid4().hex[:8]}") as url:
        yield url


@pytest.fixture(scope="session")
def stack(service_env: dict[str, str], database_url: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Ingest and consumer, started once for the session with their own topic prefix."""
    prefix = f"uft{uuid.uuid4().hex[:8]}.events"
    logs = tmp_path_factory.mktemp("stack")
    s = Stack(stack_env(service_env, database_url, prefix), database_url, logs)
    s.start_ingest()
    s.start_consumer()
    yield s
    s.stop()
    # Every test on this stack sends hostile input somewhere, and what the ingest
    # answered 2xx for the consumer must store: the dead-letter topic is for what no
    # validation foresees (DESIGN, invariant 3), so it stays empty.
    assert s.dead_letters() == 0, f"dead letters on the test stack:\n{s.consumer.tail()}"


@pytest.fixture(scope="session")
def api_url(stack: Stack) -> str:
    """The query API (`userflow api`), beside the session's ingest and consumer."""
    return stack.start_api()


def make_tenant(database_url: str, name: str, *, company: dict[str, object] | None = None,
                **kw: object) -> NewTenant:
    """A tenant and its keys; `company` sets further columns in the same transaction,
    so the ingest never sees the tenant without them."""
    with psycopg.connect(database_url) as conn:
        made = tenants.create(conn, f"{name} {uuid.uuid4().hex[:6]}", **kw)  # type: ignore[arg-type]
        if company:
            update_company(conn, made.company_id, **company)
    return made


def update_company(conn: psycopg.Connection, company_id: uuid.UUID, **columns: object) -> None:
    """Set company columns as the operator does; the ingest hears of it through NOTIFY."""
    sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in columns)
    conn.execute(sql.SQL("UPDATE company SET {}, updated_at = now() WHERE company_id = %s")
                 .format(sets), (*columns.values(), company_id))


@pytest.fixture
def tenant(database_url: str) -> NewTenant:
    return make_tenant(database_url, "Acme")


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return tmp_path
