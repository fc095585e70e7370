"""The id ledger (sql/008): ids leave it with their events, by retention or by purge."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from userflow.store import tenants

from .conftest import make_tenant
from .stack import ROLE_OF, as_role

pytestmark = pytest.mark.services


def store(conn: psycopg.Connection, company: uuid.UUID, days_ago: int, n: int) -> list[uuid.UUID]:
    """n events of `company`, `days_ago` days old, with their ids in the ledger, as the
    consumer stores them."""
    ids = [uuid.uuid4() for _ in range(n)]
    conn.execute("SELECT userflow_ensure_partition((now() - make_interval(days => %s))::date)",
                 (days_ago,))
    for event_id in ids:
        conn.execute(
            "WITH e AS (INSERT INTO user_events (event_timestamp, received_at, company_id,"
            " event_id, event_type) VALUES (now() - make_interval(days => %s), now(), %s, %s,"
            " 'click') RETURNING event_timestamp, company_id, event_id)"
            " INSERT INTO event_ledger SELECT userflow_event_digest(company_id, event_id),"
            " event_timestamp FROM e", (days_ago, company, event_id))
    return ids


def in_ledger(conn: psycopg.Connection, company: uuid.UUID, ids: list[uuid.UUID]) -> int:
    return conn.execute("SELECT count(*) FROM event_ledger WHERE id_digest IN"
                        " (SELECT userflow_event_digest(%s, e) FROM unnest(%s::uuid[]) e)",
                        (company, ids)).fetchone()[0]


def test_the_same_id_of_two_tenants_is_two_keys(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        one, other = uuid.uuid4(), uuid.uuid4()
        event = uuid.uuid4()
        a, b = (conn.execute("SELECT userflow_event_digest(%s, %s)", (c, event)).fetchone()[0]
                for c in (one, other))
    assert a != b


def test_a_purge_takes_the_tenants_ids_out_of_the_ledger(database_url: str) -> None:
    gone, kept = make_tenant(database_url, "Purged"), make_tenant(database_url, "Kept")
    with psycopg.connect(database_url, autocommit=True) as conn:
        gone_ids = store(conn, gone.company_id, 1, 5)
        kept_ids = store(conn, kept.company_id, 1, 3)
    with psycopg.connect(as_role(database_url, ROLE_OF["operator"]), autocommit=True) as conn:
        assert tenants.purge(conn, gone.company_id) == 5
    with psycopg.connect(database_url) as conn:
        assert in_ledger(conn, gone.company_id, gone_ids) == 0
        assert in_ledger(conn, kept.company_id, kept_ids) == 3


def test_retention_takes_ids_out_with_their_events(database_url: str) -> None:
    short = make_tenant(database_url, "Short", retention_days=30)
    long = make_tenant(database_url, "Long", retention_days=90)
    with psycopg.connect(database_url, autocommit=True) as conn:
        expired = store(conn, short.company_id, 40, 4)
        recent = store(conn, short.company_id, 5, 2)
        older_but_kept = store(conn, long.company_id, 40, 3)
    with psycopg.connect(as_role(database_url, ROLE_OF["migrate"]), autocommit=True) as conn:
        conn.execute("SELECT userflow_apply_retention()")
    with psycopg.connect(database_url) as conn:
        assert in_ledger(conn, short.company_id, expired) == 0
        assert in_ledger(conn, short.company_id, recent) == 2
        assert in_ledger(conn, long.company_id, older_but_kept) == 3
        assert conn.execute("SELECT count(*) FROM user_events WHERE company_id = %s",
                            (short.company_id,)).fetchone() == (2,)
