"""`make bench`: the pipeline's figures on this machine, as a table and bench/results.json.

Phases, on a scratch database and fresh topics:
1. ingest alone (consumer stopped): single events from wrk, batches of 100
   from wrk, then realistic simulated traffic — all of it piles up in Kafka;
2. consumer alone: start it and time the drain of that pre-filled backlog;
3. end to end, the simulator through /v1/batch with the consumer running:
   a. sustained: paced at a steady rate for a minute (what a site sends);
   b. flat out: as fast as the ingest takes them (a burst the consumer
      catches up on afterwards);
   each from the first request to the last row visible, with the delay
   from ingest (received_at) to the row's commit (track_commit_timestamp);
4. bytes per stored event: heap, indexes and TOAST of every table an event
   costs, divided by the rows.
Every figure is measured here; nothing is a threshold.
"""

from __future__ import annotations

import json
import os
import platform
import time
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import psycopg
import typer
from rich.console import Console
from rich.table import Table

from bench import wrk
from tests.integration.stack import Stack, prepared_database, stack_env, wait_for
from userflow import simulate
from userflow.store import tenants

HERE = Path(__file__).resolve().parent
console = Console()

SINGLE = {"userId": "bench-user", "event": "click",
          "properties": {"selector": "#buy", "text": "Buy", "x": 10, "y": 20},
          "context": {"sessionId": "bench-session", "ip": "81.2.69.142",
                      "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                                   "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                      "page": {"url": "https://shop.example/products/42"}}}


def _rows(url: str, company: uuid.UUID) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM user_events WHERE company_id = %s",
                            (company,)).fetchone()[0]


def _drain(url: str, company: uuid.UUID, expected: int, timeout: float) -> tuple[float, float]:
    """Poll until `expected` rows; return (time of first row seen, time of the last)."""
    first = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = _rows(url, company)
        if n and first is None:
            first = time.monotonic()
        if n >= expected:
            return first or time.monotonic(), time.monotonic()
        time.sleep(0.25)
    raise TimeoutError(f"only {_rows(url, company)} of {expected} rows after {timeout} s")


def _delay_p99_ms(url: str, company: uuid.UUID, since: datetime) -> dict[str, float]:
    with psycopg.connect(url) as conn:
        p50, p99, worst = conn.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d), "
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY d), max(d) FROM ("
            " SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - received_at) * 1000 AS d"
            " FROM user_events WHERE company_id = %s AND received_at >= %s) t",
            (company, since)).fetchone()
    return {"delay_p50_ms": round(float(p50), 1), "delay_p99_ms": round(float(p99), 1),
            "delay_max_ms": round(float(worst), 1)}


def _bytes_per_event(url: str) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        rows = conn.execute("SELECT count(*) FROM user_events").fetchone()[0]
        parts = conn.execute(
            "SELECT sum(pg_relation_size(c.oid)), sum(pg_indexes_size(c.oid)),"
            " sum(pg_total_relation_size(c.oid) - pg_relation_size(c.oid) - pg_indexes_size(c.oid))"
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'user_events'::regclass").fetchone()
        dictionaries = conn.execute(
            "SELECT pg_total_relation_size('text_value') + pg_total_relation_size('user_agent')"
        ).fetchone()[0]
        # The id ledger (sql/008): what exactly-once at any distance costs.
        ledger = conn.execute("SELECT pg_total_relation_size('event_ledger')").fetchone()[0]
    heap, indexes, toast = (int(x or 0) for x in parts)
    return {
        "rows": rows,
        "user_events_heap": round(heap / rows, 1),
        "user_events_indexes": round(indexes / rows, 1),
        "user_events_toast": round(toast / rows, 1),
        "dictionaries": round(dictionaries / rows, 1),
        "id_ledger": round(ledger / rows, 1),
        "total": round((heap + indexes + toast + dictionaries + ledger) / rows, 1),
    }


def _tenant(url: str, name: str) -> tenants.NewTenant:
    with psycopg.connect(url) as conn:
        return tenants.create(conn, name, "pro")


def main(
    seconds: Annotated[int, typer.Option(help="Length of each wrk run")] = 20,
    prefill_events: Annotated[int, typer.Option(help="Simulated events for the drain")] = 300_000,
    e2e_rate: Annotated[int, typer.Option(help="Events/s offered in the sustained run")] = 27_000,
    e2e_seconds: Annotated[int, typer.Option(help="Length of the sustained run")] = 60,
    burst_events: Annotated[int, typer.Option(help="Simulated events sent flat out")] = 600_000,
) -> None:
    base = {k: v for k, v in os.environ.items() if k.startswith("UF_")}
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    logs = Path(os.environ.get("UF_BENCH_LOGS", "/tmp/userflow-bench"))
    logs.mkdir(parents=True, exist_ok=True)
    with prepared_database(base["UF_ADMIN_DATABASE_URL"], "uf_bench") as url:
        stack = Stack(stack_env(base, url, f"ufb{uuid.uuid4().hex[:6]}.events"), url, logs)
        try:
            _run(stack, url, logs, seconds, prefill_events, results)
            _end_to_end(stack, url, "sustained", e2e_rate * e2e_seconds, e2e_rate, results)
            _end_to_end(stack, url, "burst", burst_events, None, results)
            console.print("[bold]4. bytes per stored event[/]")
            results["bytes_per_event"] = _bytes_per_event(url)
        finally:
            stack.stop()
            _save(results)
    console.print(_table(results))
    console.print(f"written to {HERE / 'results.json'}")


def _save(results: dict[str, Any]) -> None:
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")


def _run(stack: Stack, url: str, logs: Path, seconds: int, prefill: int,
         out: dict[str, Any]) -> None:
    """Fill `out` phase by phase, saving after each, so a late failure keeps the figures."""
    backlog = _tenant(url, "Backlog")
    stack.start_ingest(workers=2)

    console.print("[bold]1. ingest alone[/] (consumer stopped)")
    script = wrk.lua_post(logs / "single.lua", backlog.write_key, orjson.dumps(SINGLE).decode())
    single = wrk.run(f"{stack.url}/v1/track", script, seconds, connections=64)
    out["single_event"] = asdict(single) | {
        "accepted_events_per_second": round((single.requests - single.non_2xx) / single.seconds)}
    batch_body = orjson.dumps({"batch": [{**SINGLE, "type": "track"}] * 100}).decode()
    script = wrk.lua_post(logs / "batch.lua", backlog.write_key, batch_body)
    batch = wrk.run(f"{stack.url}/v1/batch", script, seconds, connections=16)
    out["batch_of_100"] = asdict(batch) | {
        "accepted_events_per_second": round((batch.requests - batch.non_2xx) * 100 / batch.seconds)}
    sim = simulate.generate(prefill, seed=11)
    report = simulate.send(sim, stack.url, backlog.write_key, rate=None, single=False,
                           concurrency=8, progress=False)
    out["simulated_batches"] = {"events": report.accepted,
                                "events_per_second": round(report.events_per_second),
                                "p50_ms": report.latency_p50_ms, "p99_ms": report.latency_p99_ms}
    _save(out)
    console.print(out["single_event"], out["batch_of_100"], out["simulated_batches"])
    expected = (single.requests - single.non_2xx) + (batch.requests - batch.non_2xx) * 100 \
        + report.accepted

    console.print(f"[bold]2. consumer alone[/]: draining {expected:,} events")
    started = time.monotonic()
    stack.start_consumer()
    first, last = _drain(url, backlog.company_id, expected, timeout=1800)
    out["consumer_drain"] = {"rows": expected,
                             "rows_per_second": round(expected / (last - first)),
                             "rows_per_second_incl_startup": round(expected / (last - started))}
    _save(out)
    console.print(out["consumer_drain"])



def _end_to_end(stack: Stack, url: str, name: str, events: int, rate: int | None,
                out: dict[str, Any]) -> None:
    """Simulated traffic through /v1/batch to a fresh tenant, timed to its last row."""
    pace = f"at {rate:,}/s" if rate else "flat out"
    console.print(f"[bold]3. end to end, {name}[/]: {events:,} simulated events {pace}")
    tenant = _tenant(url, name.title())
    sim = simulate.generate(events, seed=12)
    since = datetime.now(UTC)
    report = simulate.send(sim, stack.url, tenant.write_key, rate=rate, single=False,
                           concurrency=8, progress=False)
    # The bodies are serialised before send's clock starts; time from the first request.
    first_request = time.monotonic() - report.elapsed_seconds
    _, done = _drain(url, tenant.company_id, report.accepted, timeout=1800)
    out[f"end_to_end_{name}"] = {
        "offered_events_per_second": rate,
        "events": report.accepted, "rejected": report.rejected, "failed": report.failed,
        "send_seconds": round(report.elapsed_seconds, 1),
        "send_events_per_second": round(report.events_per_second),
        "seconds_to_last_row": round(done - first_request, 1),
        "events_per_second": round(report.accepted / (done - first_request)),
        "rows": _rows(url, tenant.company_id),
    } | _delay_p99_ms(url, tenant.company_id, since)
    _save(out)
    console.print(out[f"end_to_end_{name}"])


def _table(r: dict[str, Any]) -> Table:
    t = Table(title=f"UserFlow benchmark, {r['machine']['cpus']} cores, {r['when']}")
    t.add_column("measure")
    t.add_column("figure", justify="right")
    s, b, c, by = (r[k] for k in ("single_event", "batch_of_100", "consumer_drain",
                                  "bytes_per_event"))
    rows = [
        ("single events (wrk, 64 conn): accepted/s", f"{s['accepted_events_per_second']:,}"),
        ("single events: p50 / p99 latency", f"{s['p50_ms']:.1f} / {s['p99_ms']:.1f} ms"),
        ("/v1/batch of 100 (wrk, 16 conn): events/s", f"{b['accepted_events_per_second']:,}"),
        ("batch: p50 / p99 latency", f"{b['p50_ms']:.1f} / {b['p99_ms']:.1f} ms"),
        ("simulated batches (8 conn): events/s", f"{r['simulated_batches']['events_per_second']:,}"),
        ("consumer alone: rows/s", f"{c['rows_per_second']:,}"),
    ]
    for name, label in (("sustained", "end to end, paced"), ("burst", "end to end, flat out")):
        e = r[f"end_to_end_{name}"]
        offered = e["offered_events_per_second"]
        sent = f"{e['send_events_per_second']:,}/s" + (f" of {offered:,}/s offered" if offered else "")
        rows += [
            (f"{label}: sent", f"{sent} for {e['send_seconds']} s"),
            (f"{label}: events/s, first request → last row", f"{e['events_per_second']:,}"),
            (f"{label}: events / rows", f"{e['events']:,} / {e['rows']:,}"),
            (f"{label}: ingest → row delay p50 / p99",
             f"{e['delay_p50_ms']:,} / {e['delay_p99_ms']:,} ms"),
        ]
    rows += [
        ("bytes per stored event (all tables)", f"{by['total']}"),
        ("  user_events heap / indexes", f"{by['user_events_heap']} / {by['user_events_indexes']}"),
        ("  dictionaries (texts, user agents)", f"{by['dictionaries']}"),
        ("  id ledger (exactly once at any distance)", f"{by['id_ledger']}"),
    ]
    for name, value in rows:
        t.add_row(name, value)
    return t


if __name__ == "__main__":
    typer.run(main)
