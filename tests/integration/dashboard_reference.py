"""The dashboards' figures computed again in Python from the stored events, by the definitions
(README, Metric definitions; the panels' descriptions): a second opinion that needs no rollup,
no SQL of the panels and no analytics module, for the panels whose module may not exist yet.

Rows come from the public `events` view, read as the superuser; a user is user_id, else
anonymous_id; bots are left out; ties in time break by event id, as the rollups break them.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from scipy.stats import norm

from .grafana import TimeRange

COLUMNS = """coalesce(user_id, anonymous_id) AS actor, session_id, event_type::text AS event_type,
             event_name, userflow_url_path(page_url) AS page, event_timestamp AS at, event_id,
             experiment_id, variant, x_coordinate AS x, y_coordinate AS y,
             element_selector AS selector, device_type, is_bot"""


@dataclass(frozen=True, slots=True)
class E:
    actor: str | None
    session_id: str | None
    event_type: str
    event_name: str | None
    page: str | None
    at: datetime
    event_id: UUID
    experiment_id: str | None
    variant: str | None
    x: int | None
    y: int | None
    selector: str | None
    device_type: str | None
    is_bot: bool


def events_of(admin_url: str, company_id: str) -> list[E]:
    with psycopg.connect(admin_url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT {COLUMNS} FROM events WHERE company_id = %s"
                    " ORDER BY event_timestamp, event_id", (company_id,))
        return [E(**r) for r in cur.fetchall()]


def humans(rows: Iterable[E], window: TimeRange | None = None) -> list[E]:
    return [r for r in rows if not r.is_bot
            and (window is None or window.start <= r.at < window.end)]


# --- funnel ---------------------------------------------------------------------------------

def _step_of(r: E, spec: str) -> bool:
    if spec.startswith("/"):
        return r.event_type == "page_view" and r.page == spec
    return r.event_type == "custom" and r.event_name == spec


def funnel(rows: list[E], window: TimeRange, specs: list[str], seconds: int) -> list[dict[str, Any]]:
    """Per step: count, drop_off, median_seconds_from_previous (each user's earliest attempt
    that reaches their furthest step). Attempts start in the range; later steps may fall
    after it, within the window."""
    hits: defaultdict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for r in humans(rows):
        for k, spec in enumerate(specs):
            if r.actor is not None and r.at >= window.start and _step_of(r, spec):
                hits[r.actor].append((r.at, k))
    limit = timedelta(seconds=seconds)
    best: dict[str, list[datetime]] = {}
    for actor, found in hits.items():
        found.sort()
        for start, k in found:
            if k != 0 or start >= window.end:
                continue
            times = [start]
            for at, step in found:
                if step == len(times) and at > times[-1] and at <= start + limit:
                    times.append(at)
            if len(times) > len(best.get(actor, [])):  # earliest attempt wins a tie
                best[actor] = times
    out = []
    for k, spec in enumerate(specs):
        reached = [t for t in best.values() if len(t) > k]
        gaps = [(t[k] - t[k - 1]).total_seconds() for t in reached] if k else []
        out.append({"spec": spec, "count": len(reached),
                    "median_seconds_from_previous": statistics.median(gaps) if gaps else None})
    for k, step in enumerate(out):
        step["drop_off"] = (out[k - 1]["count"] if k else step["count"]) - step["count"]
    return out


# --- retention ------------------------------------------------------------------------------

def _period(at: datetime, interval: str) -> date:
    day = at.date()
    return day - timedelta(days=day.weekday()) if interval == "week" else day


def retention(rows: list[E], window: TimeRange, interval: str) -> dict[tuple[str, int], int]:
    """(cohort, n) -> users; a cohort is the period of a user's first event ever; n runs to
    30 days or 11 weeks (the query API's default number of periods)."""
    people = [r for r in humans(rows) if r.actor is not None]
    first: dict[str, datetime] = {}
    for r in people:
        first[r.actor] = min(first.get(r.actor, r.at), r.at)  # type: ignore[index]
    active: defaultdict[str, set[date]] = defaultdict(set)
    for r in people:
        if r.at < window.end:
            active[r.actor].add(_period(r.at, interval))  # type: ignore[index]
    step = 7 if interval == "week" else 1
    out: Counter[tuple[str, int]] = Counter()
    for actor, at in first.items():
        if window.start <= at < window.end:
            cohort = _period(at, interval)
            for p in active[actor]:
                if (p - cohort).days // step < (12 if interval == "week" else 31):
                    out[(cohort.isoformat(), (p - cohort).days // step)] += 1
    return dict(out)


# --- experiment -----------------------------------------------------------------------------

def experiment(rows: list[E], window: TimeRange, experiment_id: str, goal: str,
               control: str) -> dict[str, dict[str, Any]]:
    """Per variant: users exposed (at their first exposure in the range; users of several
    variants in none), converted (a custom event `goal` at or after it, in the range), rate,
    and against the control lift and the 95% Wald interval of the difference."""
    kept = humans(rows, window)
    first: dict[str, datetime] = {}
    seen: defaultdict[str, set[str]] = defaultdict(set)
    for r in kept:
        if r.actor is not None and r.experiment_id == experiment_id and r.variant is not None:
            first[r.actor] = min(first.get(r.actor, r.at), r.at)
            seen[r.actor].add(r.variant)
    goals: defaultdict[str, list[datetime]] = defaultdict(list)
    for r in kept:
        if r.actor is not None and r.event_type == "custom" and r.event_name == goal:
            goals[r.actor].append(r.at)
    counts = {v: [0, 0] for variants in seen.values() for v in variants}
    for actor, variants in seen.items():
        if len(variants) == 1:
            tally = counts[next(iter(variants))]
            tally[0] += 1
            tally[1] += any(g >= first[actor] for g in goals[actor])
    out = {v: {"exposed": n, "converted": c, "rate": c / n if n else None}
           for v, (n, c) in counts.items()}
    z = norm.ppf(0.975)
    base = out.get(control)
    for variant, row in out.items():
        if base is None or variant == control or not row["exposed"] or not base["exposed"]:
            row.update(lift=None, ci95_low=None, ci95_high=None)
            continue
        diff = row["rate"] - base["rate"]
        se = (row["rate"] * (1 - row["rate"]) / row["exposed"]
              + base["rate"] * (1 - base["rate"]) / base["exposed"]) ** 0.5
        row.update(lift=diff / base["rate"] if base["rate"] else None,
                   ci95_low=diff - z * se, ci95_high=diff + z * se)
    return out


# --- paths ------------------------------------------------------------------------------------

def _sessions(rows: list[E], window: TimeRange) -> dict[str, list[E]]:
    """The events of each human session that started in the range, in order."""
    by_session: defaultdict[str, list[E]] = defaultdict(list)
    for r in rows:
        if r.session_id is not None:
            by_session[r.session_id].append(r)
    return {s: sorted(es, key=lambda e: (e.at, e.event_id)) for s, es in by_session.items()
            if not any(e.is_bot for e in es) and window.start <= min(e.at for e in es) < window.end}


def _pages(events: list[E]) -> list[str]:
    """The pages viewed in order, one viewed again at once counted once."""
    seen: list[str] = []
    for e in events:
        if e.event_type == "page_view" and e.page is not None and (not seen or seen[-1] != e.page):
            seen.append(e.page)
    return seen


def journeys(rows: list[E], window: TimeRange, steps: int = 5) -> Counter[str]:
    return Counter(" → ".join(_pages(es)[:steps]) for es in _sessions(rows, window).values()
                   if _pages(es))


def next_pages(rows: list[E], window: TimeRange, page: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for es in _sessions(rows, window).values():
        seq = _pages(es)
        out.update({seq[i + 1] for i in range(len(seq) - 1) if seq[i] == page})
    return out


def exit_pages(rows: list[E], window: TimeRange) -> Counter[str]:
    out: Counter[str] = Counter()
    for es in _sessions(rows, window).values():
        views = [e for e in es if e.event_type == "page_view"]
        if views and views[-1].page is not None:
            out[views[-1].page] += 1
    return out


# --- clicks -----------------------------------------------------------------------------------

def _clicks(rows: list[E], window: TimeRange, page: str, device: str) -> list[E]:
    return [r for r in humans(rows, window) if r.event_type == "click" and r.page == page
            and r.device_type == device]


def heatmap(rows: list[E], window: TimeRange, page: str, device: str,
            cell: int) -> Counter[tuple[int, int]]:
    """Clicks by the top-left corner of their cell; clicks off any page are in none."""
    return Counter((r.x // cell * cell, r.y // cell * cell)  # type: ignore[operator]
                   for r in _clicks(rows, window, page, device)
                   if r.x is not None and r.y is not None and 0 <= r.x < 10_000
                   and 0 <= r.y < 1_000_000)


def selectors(rows: list[E], window: TimeRange, page: str, device: str) -> dict[str, tuple[int, int]]:
    """selector -> (clicks, rage clicks as PostHog's tracker counts them: a run of clicks of
    one session (else one user) on the selector, each under 1 s and 30 px from the previous,
    is one rage click once it holds 3)."""
    runs: defaultdict[tuple[str | None, str | None, str], list[E]] = defaultdict(list)
    for r in _clicks(rows, window, page, device):
        if r.selector is not None:
            lone = r.actor if r.session_id is None else None
            runs[(r.session_id, lone, r.selector)].append(r)  # rows come in order
    out: dict[str, list[int]] = {}
    for (_, _, selector), clicks in runs.items():
        tally = out.setdefault(selector, [0, 0])
        tally[0] += len(clicks)
        length = 0
        for before, click in zip([None, *clicks], clicks):
            near = before is not None and click.at - before.at < timedelta(seconds=1) and (
                None in (click.x, click.y, before.x, before.y)
                or abs(click.x - before.x) + abs(click.y - before.y) < 30)  # type: ignore[operator]
            length = length + 1 if near else 1
            tally[1] += length == 3  # the run became a rage click
    return {s: (c, r) for s, (c, r) in out.items()}
