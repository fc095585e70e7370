"""One tenant and range of the dashboards' tests: every panel's rows as Grafana would show
them, the variables they ran with, and the query API's answer to the same question.

The API's answer is the endpoint's own (ENDPOINTS: its from_args or from_body, and build),
run as the reader with the tenant's read key, as the query API runs it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from userflow.analytics.args import Args
from userflow.api.endpoints import ENDPOINTS

from . import dashboard_reference as ref
from .analytics_support import ask
from .dashboard_support import Row, Tenant, dashboards_connection, queries, resolve, run
from .grafana import TimeRange, render


@dataclass(frozen=True, slots=True)
class World:
    """The database with the simulated week, its tenants and their stored events."""

    admin_url: str
    start: datetime
    tenants: dict[str, Tenant]
    events: dict[str, list[ref.E]]  # by company id

    def window(self, name: str) -> TimeRange:
        if name == "week":
            return TimeRange(self.start, self.start + timedelta(days=8))
        return TimeRange(self.start + timedelta(days=2, hours=6),
                         self.start + timedelta(days=5, hours=18))


@dataclass(frozen=True, slots=True)
class Case:
    """One tenant and range: every panel's rows, the variables they ran with, the API."""

    world: World
    tenant: Tenant
    window: TimeRange
    values: dict[str, dict[str, str]]  # dashboard uid -> variable -> value
    rows: dict[tuple[str, str], list[Row]]  # (panel title, refId) -> rows

    def panel(self, title: str, ref_id: str = "A") -> list[Row]:
        return self.rows[(title, ref_id)]

    def var(self, d: Mapping[str, Any], name: str) -> str:
        return self.values[d["uid"]][name]

    @property
    def events(self) -> list[ref.E]:
        return self.world.events[self.tenant.company_id]

    def api(self, path: str, **params: str | list[str]) -> dict[str, Any]:
        """The query API's answer (as a dict) for this tenant and range."""
        return api(self, path, dict(params))

    def api_body(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return api(self, path, body, post=True)


def endpoint(path: str) -> Any:
    found = [e for e in ENDPOINTS if e.path == path]
    assert found, f"a dashboard panel compares with {path}, which is not an endpoint"
    return found[0]


def api(case: Case, path: str, params: dict[str, Any], post: bool = False) -> dict[str, Any]:
    e = endpoint(path)
    span = {"from": case.window.start.isoformat(), "to": case.window.end.isoformat()}
    if post:
        built = e.build(e.from_body({**span, **params}))
    else:
        query = {k: v if isinstance(v, list) else [v] for k, v in {**span, **params}.items()}
        built = e.build(e.from_args(Args(query)))
    answer = ask(case.world.admin_url, case.tenant.read_key, built)
    return dataclasses.asdict(answer.result)


def evaluate(world: World, dashboards: Mapping[str, Mapping[str, Any]], slug: str,
             window: TimeRange, chosen: Mapping[str, str] | None = None) -> Case:
    """Every panel of `dashboards` for the tenant `slug` over `window`; `chosen` sets variables."""
    tenant = world.tenants[slug]
    values, rows = {}, {}
    with dashboards_connection(world.admin_url) as conn:
        for uid, d in dashboards.items():
            values[uid] = resolve(conn, d, window, {"tenant": tenant.company_id, **(chosen or {})})
            for q in queries(d):
                if q.title:
                    rows[(q.title, q.ref)] = run(conn, render(q.sql, values[uid], window))
    return Case(world, tenant, window, values, rows)


def same(got: Any, want: Any) -> bool:
    """Equal, floats to 1e-9 (relative): the same SQL in another statement may sum in another order."""
    if isinstance(want, float) or isinstance(got, float):
        return got is not None and want is not None and math.isclose(got, want, rel_tol=1e-9,
                                                                      abs_tol=1e-9)
    return bool(got == want)


def assert_rows(got: list[Row], want: list[Mapping[str, Any]], where: str) -> None:
    assert len(got) == len(want), f"{where}: {len(got)} rows, the API has {len(want)}"
    for g, w in zip(got, want, strict=True):
        common = set(g) & set(w)
        assert common, f"{where}: no column in common with the API's fields"
        wrong = {k: (g[k], w[k]) for k in common if not same(g[k], w[k])}
        assert not wrong, f"{where}: (panel, API) differ: {wrong}\n{g}\n{w}"
