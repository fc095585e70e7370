"""Which day partitions of the events a metric's statement reads: its plan, as the reader sees it."""

from __future__ import annotations

from typing import Any

import psycopg

from userflow.analytics.query import Query
from userflow.analytics.scope import tenant_transaction

from .stack import ROLE_OF, as_role


def partitions_read(admin_url: str, read_key: str, query: Query[Any]) -> set[str]:
    """The user_events partitions the statement scans when run (EXPLAIN ANALYZE): a
    partition pruned when planning is not in the plan, one pruned while running (a
    bound known only then) is in it but never executed."""
    with psycopg.connect(as_role(admin_url, ROLE_OF["reader"]), autocommit=True) as conn, \
            tenant_transaction(conn, read_key, 60_000):
        row = conn.execute(b"EXPLAIN (ANALYZE, FORMAT JSON) " + query.sql.encode(),
                           query.params).fetchone()
    assert row is not None
    found: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        name = node.get("Relation Name", "")
        if name.startswith("user_events_p") and node.get("Actual Loops", 0) > 0:
            found.add(name)
        for child in node.get("Plans", []):
            walk(child)

    walk(row[0][0]["Plan"])
    return found
