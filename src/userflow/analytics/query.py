"""A metric's question as one SQL statement, and running it.

`build` functions are pure: they return a Query (the statement, its bound
parameters, the rollup or relation it reads, and how its rows become the
result). `run` executes one on a connection scoped to a tenant (scope.py) and
says what stands behind the figure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Generic, TypeVar

import psycopg
from psycopg.rows import dict_row

from userflow.analytics.period import Period

R = TypeVar("R")
Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Query(Generic[R]):
    sql: str
    params: Mapping[str, object]
    shape: Callable[[list[Row]], R]
    source: str  # the rollup the answer comes from, or "events"
    period: Period | None = None


@dataclass(frozen=True, slots=True)
class Meta:
    period: Period | None
    source: str
    rows: int
    sql_ms: float

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = dict(self.period.as_json()) if self.period else {}
        out.update(source=self.source, rollup=self.source if self.source != "events" else None,
                   rows=self.rows, sql_ms=round(self.sql_ms, 2))
        return out


@dataclass(frozen=True, slots=True)
class Answer(Generic[R]):
    result: R
    meta: Meta


def run(conn: psycopg.Connection[Any], query: Query[R]) -> Answer[R]:
    started = perf_counter()
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query.sql.encode(), query.params)  # bytes: the text is ours, not a template
        rows = cur.fetchall()
    took = (perf_counter() - started) * 1000
    return Answer(query.shape(rows), Meta(query.period, query.source, len(rows), took))
