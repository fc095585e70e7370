"""What a tenant's data holds, for an analyst who has not seen it: describe_data's queries.

Read from the rollups (a tenant's whole history is too much to scan per
question), bots left out unless said: the range covered (first session start
to last session end), events, users and sessions, events by type, the custom
event names and the pages most seen, the experiments with their variants and
exposed users, and the tenant views run_sql can read, with their columns.
The rollups lag the events by the refresh cycle (a minute or so).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from userflow.analytics.overview import TYPE_COLUMNS
from userflow.analytics.query import Answer, Query, Row

NAMES_SHOWN: Final = 50
PAGES_SHOWN: Final = 20
EXPERIMENTS_SHOWN: Final = 100
# Ready-made helpers run_sql may call besides PostgreSQL's own.
HELPERS: Final = {
    "userflow_url_path(url)": "a URL's path: scheme and host gone, query and fragment ignored",
    "userflow_url_host(url)": "a URL's host, lower case, without a leading www.",
}

_TOTALS = f"""
SELECT (SELECT count(*) FROM tenant.session_rollup WHERE NOT is_bot) AS sessions,
       (SELECT count(*) FROM tenant.session_rollup WHERE is_bot) AS bot_sessions,
       (SELECT min(started_at) FROM tenant.session_rollup) AS first_session_start,
       (SELECT max(ended_at) FROM tenant.session_rollup) AS last_session_end,
       (SELECT count(*) FROM tenant.session_page_rollup) AS session_pages,
       h.*
FROM (SELECT count(DISTINCT actor) FILTER (WHERE NOT is_bot) AS users,
             coalesce(sum(events) FILTER (WHERE NOT is_bot), 0) AS events,
             coalesce(sum(events) FILTER (WHERE is_bot), 0) AS bot_events,
             {", ".join(f"coalesce(sum({c}) FILTER (WHERE NOT is_bot), 0) AS {t}"
                        for t, c in TYPE_COLUMNS.items())}
      FROM tenant.actor_hour_rollup) h"""

_NAMES = """
SELECT n AS event_name, count(*) AS sessions
FROM tenant.session_rollup s, unnest(s.event_names) n
WHERE NOT s.is_bot GROUP BY n ORDER BY sessions DESC, n LIMIT %(limit)s"""

_PAGES = """
SELECT page, sum(views)::bigint AS views, count(DISTINCT actor) AS visitors
FROM tenant.session_page_rollup WHERE NOT is_bot
GROUP BY page ORDER BY views DESC, page LIMIT %(limit)s"""

_EXPERIMENTS = """
SELECT split_part(x, E'\\x1f', 1) AS experiment_id, split_part(x, E'\\x1f', 2) AS variant,
       count(DISTINCT s.actor) AS exposed_users
FROM tenant.session_rollup s, unnest(s.exposures) x
WHERE NOT s.is_bot GROUP BY 1, 2 ORDER BY 1, 2 LIMIT %(limit)s"""

_VIEWS = """
SELECT table_name AS view, column_name AS column, data_type AS type
FROM information_schema.columns WHERE table_schema = 'tenant'
ORDER BY table_name, ordinal_position"""


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    query: Query[Any]


def _rows(rows: list[Row]) -> list[Row]:
    return rows


def _totals(rows: list[Row]) -> Row:
    row = dict(rows[0])
    row["events_by_type"] = {t: row.pop(t) for t in TYPE_COLUMNS}
    return row


def _experiments(rows: list[Row]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        out.setdefault(r["experiment_id"], {})[r["variant"]] = r["exposed_users"]
    return out


def _views(rows: list[Row]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(f"tenant.{r['view']}", []).append(f"{r['column']} {r['type']}")
    return out


def _part(name: str, sql: str, shape: Callable[[list[Row]], Any], source: str,
          limit: int | None = None) -> Part:
    return Part(name, Query(sql, {} if limit is None else {"limit": limit}, shape, source))


PARTS: Final = (
    _part("totals", _TOTALS, _totals, "session_rollup+actor_hour_rollup"),
    _part("event_names", _NAMES, _rows, "session_rollup", NAMES_SHOWN),
    _part("top_pages", _PAGES, _rows, "session_page_rollup", PAGES_SHOWN),
    _part("experiments", _EXPERIMENTS, _experiments, "session_rollup", EXPERIMENTS_SHOWN),
    _part("views", _VIEWS, _views, "information_schema"),
)


def assemble(answers: list[Answer[Any]]) -> dict[str, Any]:
    """describe_data's answer from its parts' answers (in PARTS' order)."""
    out: dict[str, Any] = {part.name: answer.result for part, answer in zip(PARTS, answers)}
    totals = out.pop("totals")
    out = {"range_covered": {"first_session_start": totals.pop("first_session_start"),
                             "last_session_end": totals.pop("last_session_end")},
           "event_types": {t: n for t, n in totals.pop("events_by_type").items() if n},
           "counts": totals, **out}
    out["event_names"] = {"shown": NAMES_SHOWN, "by_sessions": out["event_names"]}
    out["top_pages"] = {"shown": PAGES_SHOWN, "by_views": out["top_pages"]}
    out["sql_helpers"] = HELPERS
    out["meta"] = {part.name: answer.meta.as_json() for part, answer in zip(PARTS, answers)}
    return out
