from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from userflow.store import migrate, tenants
from userflow.store.tenants import NewTenant

from .stack import Stack, scratch_database, stack_env


@pytest.fixture(scope="session")
def database_url(service_env: dict[str, str]) -> Iterator[str]:
    with scratch_database(service_env["UF_DATABASE_URL"], f"uf_it_{uuid.uuid4().hex[:8]}") as url:
        migrate.apply(url)
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


def make_tenant(database_url: str, name: str, **kw: object) -> NewTenant:
    with psycopg.connect(database_url) as conn:
        return tenants.create(conn, f"{name} {uuid.uuid4().hex[:6]}", **kw)  # type: ignore[arg-type]


@pytest.fixture
def tenant(database_url: str) -> NewTenant:
    return make_tenant(database_url, "Acme")


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return tmp_path
