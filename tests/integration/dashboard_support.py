"""The dashboards' tests' pieces: their PostgreSQL queries, the variables resolved as Grafana
resolves them, each query run as Grafana's role, and a week of simulated traffic to run them on.

Grafana resolves a dashboard's variables in order, each query variable's SQL with the values
chosen before it; a query variable keeps its saved value when the query still lists it and
takes the first listed otherwise; custom and textbox variables keep their saved value.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from userflow.events.model import Event
from userflow.events.receipt import Receipt
from userflow.events.segment import from_segment
from userflow.simulate.generate import Simulation, generate
from userflow.store import bootstrap

from .analytics_support import DESKTOP, event, refresh, store
from .conftest import make_tenant
from .grafana import TimeRange, render
from .stack import ROOT, as_role

DASHBOARDS = ROOT / "dashboards"
POSTGRES = "grafana-postgresql-datasource"
DATASOURCE_UID = "userflow-postgres"
Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Query:
    """One SQL text of a dashboard: a panel's target, or a query variable's."""

    dashboard: str  # its uid
    where: str  # "panel <title> <refId>" or "variable <name>"
    sql: str
    title: str = ""  # the panel's
    ref: str = ""


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def postgres_dashboards() -> dict[str, dict[str, Any]]:
    """The dashboards with any PostgreSQL query, by uid."""
    found = {}
    for path in dashboard_files():
        d = load(path)
        if any(True for _ in queries(d)):
            found[d["uid"]] = d
    return found


def panels(d: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside rows (collapsed ones keep theirs in `panels`) included."""
    for p in d.get("panels", []):
        yield p
        yield from p.get("panels", [])


def is_postgres(source: Mapping[str, Any] | None) -> bool:
    return bool(source) and source.get("type") == POSTGRES  # type: ignore[union-attr]


def queries(d: Mapping[str, Any]) -> Iterator[Query]:
    for v in d.get("templating", {}).get("list", []):
        if v.get("type") == "query" and is_postgres(v.get("datasource")):
            yield Query(d["uid"], f"variable {v['name']}", v["query"])
    for p in panels(d):
        for t in p.get("targets", []):
            if is_postgres(t.get("datasource")) or (is_postgres(p.get("datasource"))
                                                  and not t.get("datasource")):
                yield Query(d["uid"], f"panel {p['title']!r} {t['refId']}", t["rawSql"],
                            p["title"], t["refId"])


def run(conn: psycopg.Connection[Any], sql: str) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql.encode())  # bytes: the text is Grafana's, with no placeholders of ours
        return cur.fetchall()


def options(rows: list[Row]) -> list[tuple[str, str]]:
    """A query variable's (text, value) options, as Grafana's SQL data sources read rows:
    the __text and __value columns when present, else the first column as both."""
    found = []
    for r in rows:
        if "__value" in r:
            found.append((str(r.get("__text", r["__value"])), str(r["__value"])))
        else:
            first = str(next(iter(r.values())))
            found.append((first, first))
    return found


def resolve(conn: psycopg.Connection[Any], d: Mapping[str, Any], window: TimeRange,
            chosen: Mapping[str, str]) -> dict[str, str]:
    """Every variable's value, as Grafana would have it for this range; `chosen` picks a
    query variable's value (the tenant), which its options must list."""
    values: dict[str, str] = {}
    for v in d["templating"]["list"]:
        name = v["name"]
        saved = (v.get("current") or {}).get("value")
        if v["type"] == "query":
            listed = [value for _, value in options(run(conn, render(v["query"], values, window)))]
            assert listed, f"{d['uid']}: variable {name} lists nothing"
            if name in chosen:
                assert chosen[name] in listed, f"{d['uid']}: {name} does not list {chosen[name]}"
                values[name] = chosen[name]
            else:
                values[name] = saved if saved in listed else listed[0]
        elif v["type"] in ("custom", "textbox", "constant"):
            values[name] = chosen.get(name, saved)
        else:
            raise AssertionError(f"{d['uid']}: variable {name} of type {v['type']}: not handled")
    return values


def dashboards_connection(database_url: str) -> psycopg.Connection[Any]:
    """A connection as Grafana's data source logs in (sql/014_dashboards.sql)."""
    return psycopg.connect(as_role(database_url, bootstrap.ROLES["dashboards"]), autocommit=True)


# --- a week of simulated traffic ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Tenant:
    slug: str
    company_id: str
    read_key: str
    simulation: Simulation


def simulated_tenant(database_url: str, name: str, events: int, seed: int,
                     start: datetime) -> Tenant:
    """A tenant and a week of its simulated traffic from `start`, normalised as the ingest
    does (the Segment messages the simulator sends) and stored as the consumer does."""
    made = make_tenant(database_url, name)
    simulation = generate(events, seed, start)
    receipt = Receipt(company_id=made.company_id, received_at=datetime.now(UTC),
                      retention_days=90, max_future_seconds=86_400)
    normalised: list[Event] = [from_segment(m, receipt) for m in simulation.messages]
    store(database_url, normalised)
    return Tenant(made.slug, str(made.company_id), made.read_key, simulation)


def simulated_week_start() -> datetime:
    """Midnight UTC eight days ago: the simulated week lies wholly in the past (as the
    generator requires) and whole UTC days cover it."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=8)


def edge_cases(company_id: str, start: datetime) -> list[Event]:
    """What the simulator never does, for the blog: a rage burst (four clicks on one element
    within a second, a fifth two seconds on), and a funnel's second step at the very time of
    its first (not after it, so not reached)."""
    at = start + timedelta(days=3, hours=12)
    ms = timedelta(milliseconds=1)
    company = uuid.UUID(company_id)
    burst = [event(company, at + n * ms, "click", session="rage", anon="rage-tester",
                   page="/products", agent=DESKTOP, element_selector="button#buy",
                   x_coordinate=410, y_coordinate=990) for n in (100, 300, 600, 900, 2900)]
    return [
        event(company, at, session="rage", anon="rage-tester", page="/products", agent=DESKTOP),
        *burst,
        event(company, at, session="tie", anon="tie-tester", page="/products", agent=DESKTOP),
        event(company, at, "custom", session="tie", anon="tie-tester", page="/products",
              agent=DESKTOP, event_name="Product Added"),
    ]


def load_tenants(database_url: str, start: datetime) -> dict[str, Tenant]:
    found = {"shop": simulated_tenant(database_url, "Dashboards Shop", 6000, 7, start),
             "blog": simulated_tenant(database_url, "Dashboards Blog", 1500, 8, start)}
    store(database_url, edge_cases(found["blog"].company_id, start))
    refresh(database_url)
    return found
