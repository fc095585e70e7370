"""Rollups against the events on random data, late events included (hypothesis).

Events are stored in two rounds with a refresh after each; the second round's
events fall anywhere in time, so some land in sessions and hours the first
refresh already built. The overview from actor_hour_rollup must equal the
overview from the events, and session_rollup's figures must equal the
definitions computed here in Python from the same events.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings, strategies as st

from userflow.analytics import overview, period, sessions
from userflow.analytics.filters import Filters
from userflow.events.model import Event

from .analytics_support import BOT, PHONE, ask, event, refresh, store
from .conftest import make_tenant

START = datetime(2026, 10, 20, tzinfo=UTC)
TYPES = ("page_view", "click", "scroll", "form_submit", "custom", "keydown")

one_event = st.tuples(
    st.integers(0, 3 * 86_400 - 1),  # seconds after START
    st.sampled_from(TYPES),
    st.sampled_from(["s1", "s2", "s3", "s4", "s5", None]),
    st.sampled_from(["u1", "u2", "u3", None]),
    st.sampled_from([None, "/", "/a", "/b?q=1"]),
    st.sampled_from(["desktop", "phone", "bot"]),
)


def build_events(company, raw) -> list[Event]:  # type: ignore[no-untyped-def]
    agents = {"phone": PHONE, "bot": BOT}
    out = []
    for at, kind, session, user, page, agent in raw:
        extra = {"agent": agents[agent]} if agent in agents else {}
        out.append(event(company, START + timedelta(seconds=at), kind, session=session, user=user,
                         anon=None if user else "anon", page=page,
                         event_name="Signed Up" if kind == "custom" else None, **extra))
    return out


def python_sessions(events: list[Event], begin: datetime, end: datetime) -> tuple[int, float, float]:
    """Sessions, bounce rate and median duration by DESIGN's definitions, bots left out."""
    grouped: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        if e.session_id is not None:
            grouped[e.session_id].append(e)
    kept = []
    for evs in grouped.values():
        if any(e.user_agent == BOT for e in evs):
            continue  # a session with a bot's event is a bot's session
        first = min(e.event_timestamp for e in evs)
        if begin <= first < end:
            kept.append(evs)
    if not kept:
        return 0, 0.0, 0.0
    bounced = sum(1 for evs in kept
                  if sum(e.event_type == "page_view" for e in evs) == 1
                  and not any(e.event_type in ("click", "form_submit", "custom") for e in evs))
    durations = [(max(e.event_timestamp for e in evs) - min(e.event_timestamp for e in evs))
                 .total_seconds() for evs in kept]
    return len(kept), bounced / len(kept), statistics.median(durations)


def python_new_users(events: list[Event], begin: datetime, end: datetime, bots: bool) -> int:
    """Users whose first event ever (of a bot too when `bots`) falls in [begin, end)."""
    first: dict[str, datetime] = {}
    for e in events:
        actor = e.user_id or e.anonymous_id
        if actor is None or (e.user_agent == BOT and not bots):
            continue
        first[actor] = min(first.get(actor, e.event_timestamp), e.event_timestamp)
    return sum(1 for at in first.values() if begin <= at < end)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.lists(one_event, min_size=1, max_size=40),
       late=st.lists(one_event, min_size=1, max_size=20),
       day=st.integers(0, 2), tz=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]))
def test_rollups_and_events_agree(database_url: str, first, late, day: int, tz: str) -> None:  # type: ignore[no-untyped-def]
    made = make_tenant(database_url, "Rollup Props")
    first_events = build_events(made.company_id, first)
    late_events = build_events(made.company_id, late)
    store(database_url, first_events)
    refresh(database_url)
    store(database_url, late_events)
    refresh(database_url)
    everything = first_events + late_events

    begin = START + timedelta(days=day)
    for p in (period.parse(begin.isoformat(), (begin + timedelta(days=1)).isoformat()),
              period.parse((START + timedelta(days=1)).date().isoformat(),
                           (START + timedelta(days=3)).date().isoformat(), tz)):
        for interval in ("hour", "day"):
            for bots in (False, True):
                f = Filters(include_bots=bots)
                rolled = ask(database_url, made.read_key,
                             overview.build(overview.Params(p, interval, f))).result  # type: ignore[arg-type]
                raw = ask(database_url, made.read_key,
                          overview.build(overview.Params(p, interval, f, raw=True))).result  # type: ignore[arg-type]
                assert rolled == raw, (p, interval, bots)
                assert rolled.totals.new_users == python_new_users(everything, p.start, p.end, bots)
        got = ask(database_url, made.read_key, sessions.build(sessions.Params(p))).result
        want = python_sessions(everything, p.start, p.end)
        assert (got.sessions, round(got.bounce_rate, 9), round(got.median_duration_s, 6)) == (
            want[0], round(want[1], 9), round(want[2], 6))


def rollup_rows(database_url: str, company) -> dict[str, int]:  # type: ignore[no-untyped-def]
    import psycopg

    with psycopg.connect(database_url) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t} WHERE company_id = %s",
                                (company,)).fetchone()[0]  # type: ignore[index]
                for t in ("session_rollup", "session_page_rollup", "actor_hour_rollup",
                          "rollup_pending", "actor_first_seen")}


def first_seen(database_url: str, company) -> dict[str, datetime]:  # type: ignore[no-untyped-def]
    import psycopg

    with psycopg.connect(database_url) as conn:
        return dict(conn.execute("SELECT actor, first_hour FROM actor_first_seen"
                                 " WHERE company_id = %s", (company,)).fetchall())


def test_rollups_obey_retention_and_purge(database_url: str) -> None:
    import psycopg

    from .conftest import update_company

    now = datetime.now(UTC).replace(microsecond=0)
    made = make_tenant(database_url, "Short Memory")
    old, recent = now - timedelta(days=20), now - timedelta(hours=2)
    hour = timedelta(hours=1)
    store(database_url, [event(made.company_id, old, session="old", anon="o"),
                         event(made.company_id, recent, session="new", anon="n"),
                         event(made.company_id, recent, session="back", anon="o")])
    refresh(database_url)
    assert rollup_rows(database_url, made.company_id) == {
        "session_rollup": 3, "session_page_rollup": 3, "actor_hour_rollup": 3, "rollup_pending": 0,
        "actor_first_seen": 2}
    # A late event earlier than any moves the first hour back.
    store(database_url, [event(made.company_id, recent - 3 * hour, session="early", anon="n")])
    refresh(database_url)
    truncated = {"o": old.replace(minute=0, second=0), "n": (recent - 3 * hour).replace(minute=0, second=0)}
    assert first_seen(database_url, made.company_id) == truncated
    # An event still pending when retention runs goes too.
    store(database_url, [event(made.company_id, old + timedelta(seconds=5), "click",
                               session="old", anon="o")])
    with psycopg.connect(database_url) as conn:
        update_company(conn, made.company_id, retention_days=10)
        conn.execute("SELECT userflow_apply_retention()")
    # "o" is first seen when they came back; "n" as before.
    assert rollup_rows(database_url, made.company_id) == {
        "session_rollup": 3, "session_page_rollup": 3, "actor_hour_rollup": 3, "rollup_pending": 0,
        "actor_first_seen": 2}
    assert first_seen(database_url, made.company_id) == {
        **truncated, "o": recent.replace(minute=0, second=0)}
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT userflow_purge_company(%s)", (made.company_id,))
    assert set(rollup_rows(database_url, made.company_id).values()) == {0}
