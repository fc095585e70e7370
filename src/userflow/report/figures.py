"""Each section's figures: the tool answers (gather.py) as tables and charts, as HTML.

A figure is shown as the column says: counts with thousands separators,
shares as percentages with one decimal, seconds with one. Every text is
escaped; charts are PNGs inlined as data: URIs, so the page is one file.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from userflow.report import charts
from userflow.report.gather import Gathered

Kind = Literal["text", "int", "pct", "sec", "num", "z"]
CHARTS_OF_ANOMALIES: Final = 6


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    key: str
    kind: Kind = "int"


def fmt(value: Any, kind: Kind) -> str:
    """A figure as the report prints it."""
    if value is None:
        return "–"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "pct":
        return f"{100 * float(value):.1f}%"
    if kind == "sec":
        return f"{float(value):,.1f} s"
    if kind == "num":
        return f"{float(value):,.2f}"
    if kind == "z":
        return f"{float(value):+.2f}"
    return str(value)


def table(ident: str, columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> str:
    head = "".join(f"<th>{html.escape(c.header)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(r.get(c.key), c.kind))}</td>"
                                    for c in columns) + "</tr>" for r in rows)
    return f'<table id="{html.escape(ident)}"><tr>{head}</tr>{body}</table>'


def figure(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode()
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _failed(g: Gathered, key: str) -> str:
    got = g.answers.get(key)
    if got is None:
        return ""
    return (f'<p class="note">{html.escape(got.name)} could not answer:'
            f' {html.escape(str(got.content.get("message", "")))}</p>')


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


_SESSION_COLUMNS: Final = (Column("sessions", "sessions"), Column("users", "users"),
                           Column("bounce rate", "bounce_rate", "pct"),
                           Column("median duration", "median_duration_s", "sec"),
                           Column("mean duration", "avg_duration_s", "sec"),
                           Column("pages per session", "pages_per_session", "num"))


def _anomalies(g: Gathered) -> str:
    found: list[dict[str, Any]] = []
    checked: list[dict[str, Any]] = []
    shown: list[str] = []
    for key in [k for k in g.answers if k.startswith("anomalies.")]:
        result = g.result(key)
        label = key.removeprefix("anomalies.")
        if result is None:
            shown.append(_failed(g, key))
            continue
        kind: Kind = "pct" if result["metric"] in ("bounce_rate", "funnel_conversion") else "int"
        checked.append({"series": label, "judged": sum(p["judged"] for p in result["series"]),
                        "found": len(result["anomalies"]),
                        "history": "enough" if result["enough_history"] else result["note"]})
        for a in result["anomalies"]:
            found.append({**a, "series": label, "shown_actual": fmt(a["actual"], kind),
                          "shown_expected": fmt(a["expected"], kind if kind == "pct" else "num")})
        wanted = result["anomalies"] or label in ("sessions.hour", "sessions.day")
        if wanted and result["enough_history"] and len(shown) < CHARTS_OF_ANOMALIES:
            series = result["series"]
            judged = [p for p in series if p["judged"]]
            shown.append(figure(charts.anomaly(
                f"{label}: actual and expected", [_at(p["t"]) for p in series],
                [p["value"] for p in series], [p["expected"] for p in series],
                _at(judged[0]["t"]) if judged else None,
                [(_at(a["t"]), a["actual"]) for a in result["anomalies"]]),
                f"{label}: {result['definition']}; {result['method']}"))
    parts = []
    if found:
        parts.append(table("anomalies-found", (
            Column("series", "series", "text"), Column("bucket", "t", "text"),
            Column("actual", "shown_actual", "text"), Column("expected", "shown_expected", "text"),
            Column("relative change", "relative_change", "pct"),
            Column("robust z", "robust_z", "z"), Column("direction", "direction", "text"),
            Column("n", "n")), found))
    else:
        parts.append("<p>No series left its seasonal baseline in the range.</p>")
    parts.append(table("anomalies-checked", (
        Column("series checked", "series", "text"), Column("points judged", "judged"),
        Column("anomalies", "found"), Column("history", "history", "text")), checked))
    return "".join(parts + shown)


def _summary(g: Gathered) -> str:
    overview, sessions = g.result("overview"), g.result("sessions")
    if overview is None or sessions is None:
        return _failed(g, "overview") + _failed(g, "sessions")
    found = sum(len((g.result(k) or {}).get("anomalies", [])) for k in g.answers
                if k.startswith("anomalies."))
    row = {**overview["totals"], **sessions, "anomalies": found}
    return table("summary-figures", (
        Column("events", "events"), Column("users", "users"), Column("new users", "new_users"),
        Column("sessions", "sessions"), Column("bounce rate", "bounce_rate", "pct"),
        Column("median session", "median_duration_s", "sec"),
        Column("pages per session", "pages_per_session", "num"),
        Column("anomalies", "anomalies")), [row])


def _breakdown(g: Gathered, dimension: str) -> str:
    result = g.result(f"breakdown.{dimension}")
    if result is None:
        return _failed(g, f"breakdown.{dimension}")
    rows = [{**r, "value": r["value"] if r["value"] is not None else "(none)"}
            for r in result["rows"]]
    return f"<h3>By {html.escape(dimension)}</h3>" + table(
        f"breakdown-{dimension}", (Column(dimension, "value", "text"), *_SESSION_COLUMNS), rows)


def _traffic(g: Gathered) -> str:
    overview = g.result("overview")
    if overview is None:
        return _failed(g, "overview")
    series = overview["series"]
    chart = figure(charts.lines("Events, users and sessions per day", [_at(p["t"]) for p in series],
                                {name: [p[name] for p in series]
                                 for name in ("events", "users", "sessions")}),
                   "overview: events, users and sessions per day")
    totals = table("traffic-totals", (
        Column("events", "events"), Column("users", "users"), Column("new users", "new_users"),
        Column("returning users", "returning_users"), Column("sessions", "sessions")),
        [overview["totals"]])
    daily = table("traffic-daily", (Column("day", "t", "text"), Column("events", "events"),
                                    Column("users", "users"), Column("sessions", "sessions")),
                  series)
    return totals + chart + daily + _breakdown(g, "referrer") + _breakdown(g, "utm_source")


def _devices(g: Gathered) -> str:
    result = g.result("breakdown.device_type")
    chart = ""
    if result is not None and result["rows"]:
        labels = [str(r["value"]) for r in result["rows"]]
        chart = figure(charts.bars("Sessions by device", labels,
                                   [r["sessions"] for r in result["rows"]]),
                       "breakdown by device_type: sessions") + figure(
            charts.bars("Bounce rate by device", labels,
                        [100 * r["bounce_rate"] for r in result["rows"]], "%"),
            "breakdown by device_type: bounce rate")
    return chart + "".join(_breakdown(g, d) for d in ("device_type", "browser", "os"))


def _sessions(g: Gathered) -> str:
    result = g.result("sessions")
    return _failed(g, "sessions") if result is None else table(
        "sessions-figures", _SESSION_COLUMNS, [result])


def _step_label(step: dict[str, Any]) -> str:
    target = step.get("page") or step.get("event_name") or step.get("element_selector") or ""
    return f"{step['event_type']} {target}".strip()


def _funnels(g: Gathered) -> str:
    if not g.funnel_steps:
        return "<p>No funnel: no path of two or more pages, and no --funnel given.</p>"
    result = g.result("funnel")
    if result is None:
        return _failed(g, "funnel")
    steps = [{**s, "step": _step_label(s)} for s in result["steps"]]
    parts = [table("funnel-steps", (
        Column("step", "step", "text"), Column("actors", "count"),
        Column("from first", "conversion_from_first", "pct"),
        Column("from previous", "conversion_from_previous", "pct"),
        Column("dropped", "drop_off"), Column("median time from previous",
                                              "median_seconds_from_previous", "sec")), steps),
             figure(charts.bars("Funnel: actors at each step", [s["step"] for s in steps],
                                [s["count"] for s in steps]), "funnel: actors at each step")]
    rows = [{"value": b["value"] if b["value"] is not None else "(none)",
             "entered": b["steps"][0]["count"], "converted": b["steps"][-1]["count"],
             "conversion": b["steps"][-1]["conversion_from_first"]}
            for b in result["breakdown"] or []]
    parts.append("<h3>By device_type</h3>" + table("funnel-devices", (
        Column("device_type", "value", "text"), Column("entered", "entered"),
        Column("converted", "converted"), Column("conversion", "conversion", "pct")), rows))
    return "".join(parts)


def _content(g: Gathered) -> str:
    result = g.result("pages")
    if result is None:
        return _failed(g, "pages")
    rows = result["rows"]
    chart = figure(charts.bars("Page views", [r["page"] for r in rows[:10]],
                               [r["views"] for r in rows[:10]]), "pages: views") if rows else ""
    return chart + table("pages", (
        Column("page", "page", "text"), Column("views", "views"), Column("visitors", "visitors"),
        Column("time on page", "avg_time_on_page_s", "sec"),
        Column("click-through", "click_through_rate", "pct"),
        Column("scroll depth", "avg_scroll_depth", "num"), Column("exit rate", "exit_rate", "pct")),
        rows)


def _regions(g: Gathered) -> str:
    result = g.result("breakdown.country")
    chart = ""
    if result is not None and result["rows"]:
        chart = figure(charts.bars("Sessions by country", [str(r["value"]) for r in result["rows"]],
                                   [r["sessions"] for r in result["rows"]]),
                       "breakdown by country: sessions")
    return chart + _breakdown(g, "country")


def _experiments(g: Gathered) -> str:
    described = g.result("describe_data") or {}
    exposures = described.get("experiments") or {}
    if not exposures:
        return "<p>No experiment exposed anyone.</p>"
    parts = []
    for experiment in sorted(exposures):
        result = g.result(f"experiments.{experiment}")
        parts.append(f"<h3>{html.escape(experiment)}</h3>")
        if result is None:
            parts.append(_failed(g, f"experiments.{experiment}") or (
                "<p>No goal to read it by (give --goal EVENT_NAME); exposed users by variant:"
                "</p>" + table(f"exposures-{experiment}", (
                    Column("variant", "variant", "text"), Column("exposed users", "exposed")),
                    [{"variant": v, "exposed": n} for v, n in sorted(exposures[experiment].items())])))
            continue
        parts.append(f"<p>Goal: custom event {html.escape(str(g.goal))}; control"
                     f" {html.escape(result['control'])}; sample-ratio mismatch p-value"
                     f" {html.escape(fmt(result['srm_p_value'], 'num'))}.</p>")
        parts.append(table(f"experiment-{experiment}", (
            Column("variant", "variant", "text"), Column("exposed", "exposed"),
            Column("converted", "converted"), Column("rate", "rate", "pct"),
            Column("lift", "lift", "pct"), Column("p-value", "p_value", "num"),
            Column("95% CI low", "ci95_low", "pct"), Column("95% CI high", "ci95_high", "pct")),
            result["variants"]))
    return "".join(parts)


def _adoption(g: Gathered) -> str:
    rows = [g.result(k) for k in g.answers if k.startswith("adoption.")]
    rows = [r for r in rows if r is not None]
    if not rows:
        return "<p>No custom event to read as a feature.</p>"
    return table("adoption", (
        Column("feature", "feature", "text"), Column("adopters", "adopters"),
        Column("active users", "active_users"), Column("adoption", "adoption_rate", "pct"),
        Column("median time to first use", "median_time_to_first_use_s", "sec"),
        Column("DAU", "dau", "num"), Column("WAU", "wau", "num"), Column("MAU", "mau", "num"),
        Column("stickiness", "stickiness", "pct")), rows)


def _recommendations(g: Gathered) -> str:
    return ""


FIGURES: Final[dict[str, Callable[[Gathered], str]]] = {
    "anomalies": _anomalies, "summary": _summary, "traffic": _traffic, "devices": _devices,
    "sessions": _sessions, "funnels": _funnels, "content": _content, "regions": _regions,
    "experiments": _experiments, "adoption": _adoption, "recommendations": _recommendations,
}
