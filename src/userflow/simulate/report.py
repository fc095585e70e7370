"""What a send achieved, and its table for the terminal."""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table


@dataclass(frozen=True, slots=True)
class SendReport:
    events: int  # in the simulation
    sent: int  # posted at least once; fewer than events only when the send was stopped (e.g. 401)
    accepted: int
    rejected: int
    failed: (
        int  # sent but neither accepted nor rejected: retries used up, 401, 413, 5xx, no connection
    )
    requests: int  # HTTP attempts, retries included
    retries: int
    statuses: dict[str, int]  # HTTP status, or the exception's name when there was no answer
    rejections: dict[str, int]  # "field: reason" → events
    elapsed_seconds: float
    events_per_second: float  # sent / elapsed
    latency_p50_ms: float
    latency_p99_ms: float


def report_table(report: SendReport) -> Table:
    table = Table(title="userflow simulate", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    rows = [
        ("events", f"{report.events:,}"),
        ("sent", f"{report.sent:,}"),
        ("accepted", f"[green]{report.accepted:,}[/]"),
        ("rejected", f"[red]{report.rejected:,}[/]" if report.rejected else "0"),
        ("failed", f"[red]{report.failed:,}[/]" if report.failed else "0"),
        ("requests", f"{report.requests:,}"),
        ("retries", f"{report.retries:,}"),
        ("elapsed", f"{report.elapsed_seconds:.2f} s"),
        ("throughput", f"{report.events_per_second:,.0f} events/s"),
        ("latency p50 / p99", f"{report.latency_p50_ms:.1f} / {report.latency_p99_ms:.1f} ms"),
    ]
    rows += [(f"HTTP {status}", f"{count:,}") for status, count in sorted(report.statuses.items())]
    top = sorted(report.rejections.items(), key=lambda item: -item[1])
    rows += [(f"rejected: {reason}", f"{count:,}") for reason, count in top[:10]]
    if len(top) > 10:
        rows.append(("rejected: other reasons", f"{sum(count for _, count in top[10:]):,}"))
    for row in rows:
        table.add_row(*row)
    return table
