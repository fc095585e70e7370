"""`make bench-queries`: the query API's answer times on 10 million events.

1. Load: 5 tenants, 91 days: each tenant's last week of simulated traffic
   through the consumer's own code (decode, enrichment, the id ledger, COPY
   and the insert that reports to rollup_pending; no Kafka, two processes),
   then copied back 12 weeks in SQL with new event and session ids and the
   same users (simulating 10M events in Python would take the best part of an
   hour here); the ledger and rollup_pending made for the copies in SQL.
2. Rollups: the first refresh (every session of the 90 days), then a steady
   cycle: `--cycle-events` new events of the last minutes plus late ones
   anywhere in the 90 days, and one refresh of them.
3. Queries: the rollups vacuumed as autovacuum would have, then `userflow api`
   (2 workers) over HTTP, warm: every endpoint for a 30-day range,
   `--requests` times, tenants taken in turn; p50 and p95.

Prints a table and writes bench/results-queries.json. Nothing is a threshold.
`--reuse` keeps the loaded database (uf_bench_queries) for the next run and
applies any new migration to it; each run's cycle adds its events to the first
tenant again, so the figures to compare are those of a fresh load.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import psycopg
import typer
from confluent_kafka import Message
from rich.console import Console
from rich.table import Table

from tests.integration.stack import ROLE_OF, Stack, as_role, stack_env
from userflow.consumer.decode import decode_batch
from userflow.consumer.writer import Writer
from userflow.events.enrich import Geo
from userflow.events.columns import NAMES
from userflow.events.model import encode
from userflow.events.receipt import Receipt
from userflow.events.segment import from_segment
from userflow.simulate import planted
from userflow.simulate.generate import generate
from userflow.store import bootstrap, migrate, tenants

HERE = Path(__file__).resolve().parent
DATABASE = "uf_bench_queries"
console = Console()
WEEKS = 13  # 91 days
TENANTS = 5
BATCH = 5000


def _load_week(task: tuple[str, str, int, int, str]) -> tuple[int, float]:
    """Generate one tenant's week and store it as the consumer would; (rows, seconds)."""
    url, company, seed, events, start = task
    began = time.perf_counter()
    sim = generate(events, seed, datetime.fromisoformat(start))
    company_id = uuid.UUID(company)
    geo = Geo()
    writer = Writer(url)
    stored = 0
    try:
        for i in range(0, len(sim.messages), BATCH):
            messages = []
            for offset, msg in enumerate(sim.messages[i:i + BATCH], start=i):
                at = datetime.fromisoformat(msg["timestamp"].replace("Z", "+00:00"))
                receipt = Receipt(company_id, at + timedelta(milliseconds=80), 3650, 86_400,
                                  request_ip=msg.get("context", {}).get("ip"))
                messages.append(Message(topic="bench", partition=0, offset=offset,
                                        value=encode(from_segment(msg, receipt))))
            batch = decode_batch(messages, geo, timedelta(days=1))
            writer.write(batch)
            stored += batch.inserted
    finally:
        writer.close()
    return stored, time.perf_counter() - began


# Each copy of a week: its times a whole number of weeks earlier, new event and
# session ids, the same users (so they return, as users do).
_COPY_WEEK = """
    INSERT INTO user_events ({columns})
    SELECT {shifted} FROM user_events e
    WHERE e.company_id = %(company)s AND e.event_timestamp >= %(since)s
"""


def _copy_columns() -> tuple[str, str]:
    shifted = {"event_timestamp": "e.event_timestamp - %(shift)s::interval",
               "received_at": "e.received_at - %(shift)s::interval",
               "sent_at": "e.sent_at - %(shift)s::interval",
               "event_id": "md5(e.event_id::text || %(copy)s)::uuid",
               "session_id": "e.session_id || ':' || %(copy)s"}
    return (", ".join(NAMES), ", ".join(shifted.get(n, f"e.{n}") for n in NAMES))


def load(admin_url: str, total: int) -> dict[str, Any]:
    """Each tenant's last week through the consumer's code, then copied back 12 times in SQL."""
    made = []
    with psycopg.connect(as_role(admin_url, ROLE_OF["operator"])) as conn:
        for n in range(TENANTS):
            made.append(tenants.create(conn, f"Bench Tenant {n}", retention_days=3650))
    week_start = datetime.now(UTC) - timedelta(days=7, minutes=5)
    per_week = total // (TENANTS * WEEKS)
    consumer_url = as_role(admin_url, ROLE_OF["consumer"])
    tasks = [(consumer_url, str(t.company_id), 1000 + n, per_week, week_start.isoformat())
             for n, t in enumerate(made)]
    began = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        consumed = sum(stored for stored, _ in pool.imap_unordered(_load_week, tasks))
    through_consumer = time.perf_counter() - began
    columns, shifted = _copy_columns()
    statement = _COPY_WEEK.format(columns=columns, shifted=shifted)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SELECT userflow_ensure_partitions(%s, 2)", (WEEKS * 7 + 2,))
        for t in made:
            for copy in range(1, WEEKS):
                conn.execute(statement, {"company": t.company_id, "since": week_start,
                                         "shift": f"{7 * copy} days", "copy": str(copy)})
            console.print(f"  copied {t.company_id}'s week back {WEEKS - 1} times")
        # The ledger and the rollups' pending rows, as the consumer would have made them.
        conn.execute("INSERT INTO event_ledger SELECT userflow_event_digest(company_id, event_id),"
                     " event_timestamp FROM user_events ON CONFLICT DO NOTHING")
        conn.execute("DELETE FROM rollup_pending")
        conn.execute(_PENDING_OF_ALL)
        conn.execute("ANALYZE")
        rows = conn.execute("SELECT count(*) FROM user_events").fetchone()[0]  # type: ignore[index]
        first = conn.execute("SELECT min(event_timestamp) FROM user_events").fetchone()[0]  # type: ignore[index]
    seconds = time.perf_counter() - began
    return {"tenants": [{"company_id": str(t.company_id), "read_key": t.read_key,
                         "write_key": t.write_key} for t in made],
            "rows": rows, "seconds": round(seconds, 1),
            "through_consumer": {"rows": consumed, "seconds": round(through_consumer, 1)},
            "method": (f"each tenant's last week ({per_week:,} simulated events) through the "
                       "consumer's code (decode_batch + Writer, no Kafka, 2 processes), then copied "
                       f"{WEEKS - 1} weeks back in SQL with new event and session ids; ledger and "
                       "rollup_pending filled in SQL"),
            "first_day": first.date().isoformat()}


# What the consumer's insert reports to rollup_pending, for every stored row at once.
_PENDING_OF_ALL = """
    INSERT INTO rollup_pending
    SELECT company_id, session_id, coalesce(user_id, anonymous_id),
           date_trunc('hour', event_timestamp, 'UTC'), is_bot, min(event_timestamp),
           max(event_timestamp), count(*),
           count(*) FILTER (WHERE event_type = 'page_view'), count(*) FILTER (WHERE event_type = 'click'),
           count(*) FILTER (WHERE event_type = 'scroll'), count(*) FILTER (WHERE event_type = 'form_submit'),
           count(*) FILTER (WHERE event_type = 'hover'), count(*) FILTER (WHERE event_type = 'keydown'),
           count(*) FILTER (WHERE event_type = 'custom'), count(*) FILTER (WHERE event_type = 'identify')
    FROM user_events GROUP BY 1, 2, 3, 4, 5
"""


def refresh(admin_url: str) -> tuple[int, float]:
    with psycopg.connect(as_role(admin_url, ROLE_OF["migrate"]), autocommit=True) as conn:
        began = time.perf_counter()
        row = conn.execute("SELECT userflow_refresh_rollups()").fetchone()
        return int(row[0]) if row else 0, time.perf_counter() - began


def cycle(admin_url: str, setup: dict[str, Any], events: int) -> dict[str, Any]:
    """A refresh cycle's work: the last minutes' new events and late ones, then one refresh."""
    company = setup["tenants"][0]["company_id"]
    now = datetime.now(UTC)
    recent = (now - timedelta(days=7, minutes=10)).isoformat()
    consumer_url = as_role(admin_url, ROLE_OF["consumer"])
    # The simulator's week ending now: its last `events` messages are the last minutes'.
    # Seeds of this run's own, so a rerun on the kept database adds new events.
    seed = int(time.time())
    stored, _ = _load_week((consumer_url, company, seed, events, recent))
    late, _ = _load_week((consumer_url, company, seed + 1, max(events // 20, 1),
                          setup["first_day"] + "T12:00:00+00:00"))
    sessions, seconds = refresh(admin_url)
    return {"new_events": stored, "late_events": late, "sessions_rebuilt": sessions,
            "seconds": round(seconds, 2)}


def requests_for(setup: dict[str, Any], admin_url: str) -> dict[str, tuple[str, str, Any]]:
    """Each endpoint's request for a 30-day range ending today: path -> (method, url, params)."""
    end = datetime.now(UTC).date() + timedelta(days=1)
    start = end - timedelta(days=30)
    r = {"from": start.isoformat(), "to": end.isoformat()}
    with psycopg.connect(admin_url) as conn:
        busiest = [conn.execute("SELECT user_id FROM user_events WHERE company_id = %s"
                                " AND user_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
                                (t["company_id"],)).fetchone() for t in setup["tenants"]]
    # Each tenant's busiest signed-in user, as the timeline is asked with that tenant's key.
    users = [row[0] if row else "nobody" for row in busiest]
    funnel = {**r, "steps": [{"event_type": "page_view", "page": "/products"},
                             {"event_type": "custom", "event_name": "Product Added"},
                             {"event_type": "page_view", "page": "/checkout"},
                             {"event_type": "custom", "event_name": planted.GOAL_EVENT}]}
    return {
        "overview": ("GET", "/v1/analytics/overview", {**r, "interval": "day"}),
        "sessions": ("GET", "/v1/analytics/sessions", r),
        "breakdown": ("GET", "/v1/analytics/breakdown", {**r, "dimension": "device_type"}),
        "pages": ("GET", "/v1/analytics/pages", r),
        "funnel": ("POST", "/v1/analytics/funnel", funnel),
        "paths": ("GET", "/v1/analytics/paths", r),
        "retention": ("GET", "/v1/analytics/retention", {**r, "interval": "week"}),
        "experiments": ("GET", f"/v1/analytics/experiments/{planted.EXPERIMENT_ID}",
                        {**r, "goal_event_type": "custom", "goal_event_name": planted.GOAL_EVENT}),
        "adoption": ("GET", "/v1/analytics/adoption", {**r, "feature": planted.FEATURE_EVENT}),
        "heatmap": ("GET", "/v1/analytics/heatmap", {**r, "page": "/products"}),
        "realtime": ("GET", "/v1/analytics/realtime", {}),
        "timeline": ("GET", "/v1/analytics/users/{}/timeline", users),
        "bots": ("GET", "/v1/analytics/bots", r),
        "anomalies": ("GET", "/v1/analytics/anomalies", {**r, "metric": "sessions"}),
    }


def time_endpoints(api: str, setup: dict[str, Any], admin_url: str, n: int) -> dict[str, Any]:
    keys = [t["read_key"] for t in setup["tenants"]]
    out: dict[str, Any] = {}
    with httpx.Client(base_url=api, timeout=120) as client:
        for name, (method, path, params) in requests_for(setup, admin_url).items():
            def once(i: int) -> tuple[float, int, Any]:
                tenant = i % len(keys)
                headers = {"Authorization": f"Bearer {keys[tenant]}"}
                began = time.perf_counter()
                if method == "POST":
                    resp = client.post(path, json=params, headers=headers)
                elif isinstance(params, list):  # a path parameter per tenant
                    resp = client.get(path.format(params[tenant]), headers=headers)
                else:
                    resp = client.get(path, params=params, headers=headers)
                return (time.perf_counter() - began) * 1000, resp.status_code, resp

            for i in range(len(keys)):  # warm: each tenant once
                once(i)
            times, statuses, meta = [], set(), None
            for i in range(n):
                ms, status, resp = once(i)
                times.append(ms)
                statuses.add(status)
                if status == 200:
                    meta = resp.json().get("meta")
            times.sort()
            out[name] = {"path": path, "status": sorted(statuses), "requests": n,
                         "p50_ms": round(statistics.median(times), 1),
                         "p95_ms": round(times[max(0, int(round(0.95 * n)) - 1)], 1),
                         "max_ms": round(times[-1], 1),
                         "source": meta.get("source") if meta else None}
            console.print(f"  {name}: p50 {out[name]['p50_ms']} ms, p95 {out[name]['p95_ms']} ms,"
                          f" status {out[name]['status']}")
    return out


def main(
    events: Annotated[int, typer.Option(help="Simulated events to load")] = 10_000_000,
    requests: Annotated[int, typer.Option(help="Timed requests per endpoint")] = 40,
    cycle_events: Annotated[int, typer.Option(help="New events in the steady refresh cycle")] = 100_000,
    reuse: Annotated[bool, typer.Option(help="Keep and reuse the loaded database")] = False,
) -> None:
    admin = os.environ["UF_ADMIN_DATABASE_URL"]
    base = {k: v for k, v in os.environ.items() if k.startswith("UF_")}
    saved = HERE / ".bench-queries-setup.json"
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    url = psycopg.conninfo.make_conninfo(admin, dbname=DATABASE)
    fresh = not (reuse and saved.exists() and _exists(admin))
    if fresh:
        _create(admin)
        console.print(f"loading {events:,} events ({TENANTS} tenants, {WEEKS} weeks)")
        setup = load(url, events)
        sessions, seconds = refresh(url)
        setup["first_refresh"] = {"sessions": sessions, "seconds": round(seconds, 1)}
        saved.write_text(json.dumps(setup))
    else:
        setup = json.loads(saved.read_text())
        migrate.apply(as_role(url, ROLE_OF["migrate"]), migrate.REPOSITORY_SQL)  # any new ones
    try:
        results["load"] = {k: v for k, v in setup.items() if k != "tenants"}
        console.print(f"load: {setup['rows']:,} rows in {setup['seconds']} s; first refresh "
                      f"{setup['first_refresh']}")
        results["refresh_cycle"] = cycle(url, setup, cycle_events)
        console.print(f"refresh cycle: {results['refresh_cycle']}")
        # What autovacuum does in a steady state (here it would start in the middle of
        # the timings): the visibility map the rollups' index-only scans rely on.
        with psycopg.connect(url, autocommit=True) as conn:
            for table in ("actor_hour_rollup", "actor_first_seen", "session_rollup",
                          "session_page_rollup"):
                conn.execute(f"VACUUM (ANALYZE) {table}")
        with psycopg.connect(url) as conn:
            results["sizes"] = dict(conn.execute(
                "SELECT relname, pg_total_relation_size(oid)::bigint FROM pg_class"
                " WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace AND relname IN"
                " ('session_rollup', 'session_page_rollup', 'actor_hour_rollup', 'event_ledger')"
            ).fetchall())
            results["sizes"]["user_events"] = conn.execute(
                "SELECT sum(pg_total_relation_size(inhrelid))::bigint FROM pg_inherits"
                " WHERE inhparent = 'user_events'::regclass").fetchone()[0]  # type: ignore[index]
        stack = Stack(stack_env(base, url, f"ufbq{uuid.uuid4().hex[:6]}.events"), url,
                      Path(os.environ.get("TMPDIR", "/tmp")))
        api = stack.start_api(workers=2)
        try:
            results["endpoints"] = time_endpoints(api, setup, url, requests)
        finally:
            stack.stop()
    finally:
        if not reuse:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            saved.unlink(missing_ok=True)
    (HERE / "results-queries.json").write_text(json.dumps(results, indent=2) + "\n")
    show(results)
    console.print(f"written to {HERE / 'results-queries.json'}")


def _exists(admin: str) -> bool:
    with psycopg.connect(admin) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (DATABASE,)).fetchone() is not None


def _create(admin: str) -> None:
    """The bench's database, made as production makes one (roles, then migrations)."""
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    url = psycopg.conninfo.make_conninfo(admin, dbname=DATABASE)
    bootstrap.apply(url, migrate.REPOSITORY_SQL, {})
    migrate.apply(as_role(url, ROLE_OF["migrate"]), migrate.REPOSITORY_SQL)


def show(r: dict[str, Any]) -> None:
    t = Table(title=f"UserFlow query API, {r['machine']['cpus']} cores, {r['when']}, "
                    f"{r['load']['rows']:,} events, 30-day range")
    for column in ("endpoint", "p50 ms", "p95 ms", "max ms", "source", "status"):
        t.add_column(column)
    for name, e in r["endpoints"].items():
        t.add_row(name, str(e["p50_ms"]), str(e["p95_ms"]), str(e["max_ms"]), str(e["source"]),
                  ",".join(map(str, e["status"])))
    console.print(t)


if __name__ == "__main__":
    typer.run(main)
