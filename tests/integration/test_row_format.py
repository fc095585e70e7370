"""The row format written once (userflow.events.columns) is the live table's."""

from __future__ import annotations

import psycopg
import pytest

from userflow.consumer.rows import COPY_TYPES
from userflow.events.columns import BY_NAME, COLUMNS, RANGE
from userflow.events.model import EVENT_TYPES

pytestmark = pytest.mark.services


def test_every_column_in_order_with_its_type(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        live = conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'user_events'::regclass AND attnum > 0 AND NOT attisdropped"
            " ORDER BY attnum").fetchall()
    assert live == [(c.name, c.pg_type) for c in COLUMNS]


def test_the_copy_types_are_the_binary_forms_of_those_types(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for column, wire in zip(COLUMNS, COPY_TYPES, strict=True):
            kind = conn.execute("SELECT typtype FROM pg_type WHERE oid = %s::regtype",
                                (column.pg_type,)).fetchone()
            if kind == ("e",):  # an enum travels as its label
                assert wire == "text"
            else:
                assert conn.execute("SELECT %s::regtype = %s::regtype",
                                    (wire, column.pg_type)).fetchone() == (True,)


def test_the_enum_and_the_ranges_match_the_tables_constraints(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        labels = {r[0] for r in conn.execute("SELECT unnest(enum_range(NULL::event_type))::text")}
        check = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'user_events'::regclass AND contype = 'c'").fetchone()
    assert labels == EVENT_TYPES
    low, high = RANGE["scroll_depth"]
    assert check is not None and f">= {low}" in check[0] and f"<= {high}" in check[0]
    assert BY_NAME["scroll_depth"].pg_type == "smallint"
