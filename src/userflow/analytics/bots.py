"""Bots: what share of the traffic they are, and which agents they come as.

- events: all events in the range, bots included; bot_events: those flagged
  is_bot at ingest (by user agent, or by behaviour); share = bot_events /
  events (0 when there are none).
- sessions: sessions whose first event is in the range, bots included;
  bot_sessions: those with a flagged event (session_rollup's is_bot);
  session_share likewise.
- top_agents: the user agents of the bot events, most bot events first, then
  by agent (an event without one, a bot by behaviour, is the null agent, last
  among equals); at most `limit` (10). `browser` is the browser most of the
  agent's bot events name (the parsed agent's unless the client stated one);
  `events` counts the agent's bot events.
The common filters apply to events and sessions alike. `include_bots` does not
apply (bots are what this counts) and is refused, not silently ignored.
Events are read from the events (the agent is in no rollup), sessions from
session_rollup.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final

from userflow.analytics import filters, sessions
from userflow.analytics.args import Args
from userflow.analytics.errors import bad
from userflow.analytics.filters import Filters, Where
from userflow.analytics.period import Period
from userflow.analytics.query import Query, Row
from userflow.events.errors import FieldError

MAX_LIMIT: Final = 100


@dataclass(frozen=True, slots=True)
class Params:
    period: Period
    filters: Filters = field(default_factory=Filters)  # include_bots: implied
    limit: int = 10

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise bad("limit", f"must be between 1 and {MAX_LIMIT}")


@dataclass(frozen=True, slots=True)
class Agent:
    user_agent: str | None
    browser: str | None
    events: int


@dataclass(frozen=True, slots=True)
class Result:
    events: int
    bot_events: int
    share: float
    sessions: int
    bot_sessions: int
    session_share: float
    top_agents: list[Agent]


def from_args(a: Args) -> Params:
    if a.text("include_bots") is not None:
        a.errors.append(FieldError("include_bots", "does not apply: bots are what this counts"))
    period, chosen = a.period(), a.filters()
    limit = a.integer("limit", 10, 1, MAX_LIMIT)
    a.done()
    assert period is not None
    return Params(period, chosen, limit)


def build(p: Params) -> Query[Result]:
    everyone = replace(p.filters, include_bots=True)
    where = filters.on_events(everyone, Where())
    where.add("e.event_timestamp >= %(start)s AND e.event_timestamp < %(end)s",
              start=p.period.start, end=p.period.end)
    session_where = filters.on_sessions(everyone, sessions.in_period(p.period, Where(), "s.started_at"),
                                        prefix="s_")
    params = {**where.params, **session_where.params, "limit": p.limit}
    statement = f"""
        WITH agents AS MATERIALIZED (
            SELECT e.user_agent, count(*) AS events, count(*) FILTER (WHERE e.is_bot) AS bot_events,
                   mode() WITHIN GROUP (ORDER BY e.browser) FILTER (WHERE e.is_bot) AS browser
            FROM tenant.events e WHERE {where.sql()}
            GROUP BY e.user_agent),
        counted AS (
            SELECT count(*) AS sessions, count(*) FILTER (WHERE s.is_bot) AS bot_sessions
            FROM tenant.session_rollup s WHERE {session_where.sql()})
        SELECT
            (SELECT coalesce(sum(events), 0)::bigint FROM agents) AS events,
            (SELECT coalesce(sum(bot_events), 0)::bigint FROM agents) AS bot_events,
            counted.sessions, counted.bot_sessions,
            (SELECT coalesce(json_agg(json_build_object(
                        'user_agent', user_agent, 'browser', browser, 'events', bot_events)
                        ORDER BY bot_events DESC, user_agent NULLS LAST), '[]')
             FROM (SELECT * FROM agents WHERE bot_events > 0
                   ORDER BY bot_events DESC, user_agent NULLS LAST LIMIT %(limit)s) t) AS top_agents
        FROM counted"""
    return Query(statement, params, _shape, "events+session_rollup", p.period)


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _shape(rows: list[Row]) -> Result:
    row = rows[0]
    events, bot_events = int(row["events"]), int(row["bot_events"])
    total, bot_sessions = int(row["sessions"]), int(row["bot_sessions"])
    agents = [Agent(t["user_agent"], t["browser"], int(t["events"])) for t in row["top_agents"]]
    return Result(events, bot_events, _share(bot_events, events), total, bot_sessions,
                  _share(bot_sessions, total), agents)
