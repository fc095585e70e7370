"""Paths, worked by hand on a small dataset, and the parameters that must be refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from userflow.analytics import paths, period
from userflow.analytics.args import Args
from userflow.analytics.errors import BadParameters
from userflow.analytics.filters import Filters
from userflow.analytics.paths import PageCount, Params, Sequence
from userflow.events.model import Event

from .analytics_support import BOT, PHONE, ask, event, refresh, store
from .conftest import make_tenant

pytestmark = pytest.mark.services

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
DAY = period.parse("2026-11-02", "2026-11-03")
M = timedelta(minutes=1)


@pytest.fixture(scope="module")
def site(database_url: str):  # type: ignore[no-untyped-def]
    made = make_tenant(database_url, "Paths Shop")
    c = made.company_id

    def visit(session: str, pages: list[str | None], start: datetime = T0,
              **kw: object) -> list[Event]:
        return [event(c, start + i * M, session=session, anon=f"v-{session}", page=page, **kw)
                for i, page in enumerate(pages)]

    store(database_url, [
        # s1: the query string is not the path, and a reload is one step: /, /pricing, /signup
        *visit("s1", ["/", "/pricing?plan=pro", "/pricing", "/signup"]),
        # s2: back home; a page view without a URL is no step: /, /pricing, /
        *visit("s2", ["/", None, "/pricing", "/"]),
        # s3: as s1
        *visit("s3", ["/", "/pricing", "/signup"]),
        # s4: seven steps, of which the first five make its sequence
        *visit("s4", ["/blog", "/", "/pricing", "/docs", "/pricing", "/signup", "/thanks"]),
        # s6: one page, on a phone
        *visit("s6", ["/pricing#faq"], agent=PHONE),
        # s8: starts just before midnight and goes on after it: all of it counts
        *visit("s8", ["/", "/signup"], start=datetime(2026, 11, 2, 23, 59, 30, tzinfo=UTC)),
        # s5: no page view, so no path
        event(c, T0, "click", session="s5", anon="v-s5", page="/"),
        # s7 started the day before; b1 is a bot
        *visit("s7", ["/", "/pricing"], start=T0 - timedelta(days=1)),
        *visit("b1", ["/", "/pricing"], agent=BOT),
    ])
    refresh(database_url)
    return made


def get(database_url: str, site, p: Params) -> paths.Result:  # type: ignore[no-untyped-def]
    return ask(database_url, site.read_key, paths.build(p)).result


def test_sequences_from_session_start_and_exit_pages(database_url: str, site) -> None:  # type: ignore[no-untyped-def]
    got = get(database_url, site, Params(DAY))
    assert got.sessions == 6
    assert got.sequences == [
        Sequence(["/", "/pricing", "/signup"], 2),  # s1, s3
        Sequence(["/", "/pricing", "/"], 1),  # s2
        Sequence(["/", "/signup"], 1),  # s8
        Sequence(["/blog", "/", "/pricing", "/docs", "/pricing"], 1),  # s4, cut at five
        Sequence(["/pricing"], 1),  # s6
    ]
    assert got.exit_pages == [PageCount("/signup", 3), PageCount("/", 1), PageCount("/pricing", 1),
                              PageCount("/thanks", 1)]
    assert (got.next_pages, got.previous_pages, got.page_sessions) == (None, None, None)


def test_next_pages_after_a_page(database_url: str, site) -> None:  # type: ignore[no-untyped-def]
    got = get(database_url, site, Params(DAY, after="/pricing"))
    # s4 leaves /pricing twice (to /docs, then to /signup); s6 never leaves it.
    assert got.next_pages == [PageCount("/signup", 3), PageCount("/", 1), PageCount("/docs", 1)]
    assert got.page_sessions == 5
    assert got.previous_pages is None
    assert get(database_url, site, Params(DAY, after="/nowhere")).next_pages == []


def test_previous_pages_before_a_page(database_url: str, site) -> None:  # type: ignore[no-untyped-def]
    got = get(database_url, site, Params(DAY, before="/pricing"))
    # s4 reaches /pricing from / and from /docs; s6 enters on it.
    assert got.previous_pages == [PageCount("/", 4), PageCount("/docs", 1)]
    assert got.page_sessions == 5
    assert got.next_pages is None
    signup = get(database_url, site, Params(DAY, before="/signup"))
    assert (signup.previous_pages, signup.page_sessions) == (
        [PageCount("/pricing", 3), PageCount("/", 1)], 4)


def test_bots_filters_and_limits(database_url: str, site) -> None:  # type: ignore[no-untyped-def]
    with_bots = get(database_url, site, Params(DAY, filters=Filters(include_bots=True)))
    assert with_bots.sessions == 7
    assert Sequence(["/", "/pricing"], 1) in with_bots.sequences
    phones = get(database_url, site, Params(DAY, filters=Filters(device_type=("mobile",))))
    assert (phones.sessions, phones.sequences, phones.exit_pages) == (
        1, [Sequence(["/pricing"], 1)], [PageCount("/pricing", 1)])
    # Sessions that viewed /docs: s4 alone, all of its path.
    docs = get(database_url, site, Params(DAY, filters=Filters(page=("/docs",))))
    assert (docs.sessions, docs.exit_pages) == (1, [PageCount("/thanks", 1)])
    top = get(database_url, site, Params(DAY, after="/pricing", limit=1))
    assert (top.sequences, top.exit_pages, top.next_pages) == (
        [Sequence(["/", "/pricing", "/signup"], 2)], [PageCount("/signup", 3)],
        [PageCount("/signup", 3)])
    # The day before holds s7 alone.
    before = get(database_url, site, Params(period.parse("2026-11-01", "2026-11-02")))
    assert (before.sessions, before.sequences) == (1, [Sequence(["/", "/pricing"], 1)])
    # SQL in a value is a value.
    hostile = get(database_url, site, Params(DAY, after="/'; DROP TABLE user_events; --"))
    assert (hostile.next_pages, hostile.page_sessions, hostile.sessions) == ([], 0, 6)


def args(**query: str) -> Args:
    return Args({k: [v] for k, v in query.items()})


def refused(**query: str) -> set[str]:
    with pytest.raises(BadParameters) as caught:
        paths.from_args(args(**query))
    return {e.field for e in caught.value.errors}


def test_a_late_view_changes_the_path_at_the_next_refresh(database_url: str) -> None:
    made = make_tenant(database_url, "Late Paths Shop")
    c = made.company_id
    store(database_url, [event(c, T0, session="L", anon="v-L", page="/"),
                         event(c, T0 + 2 * M, session="L", anon="v-L", page="/signup")])
    refresh(database_url)
    assert ask(database_url, made.read_key, paths.build(Params(DAY))).result.sequences == [
        Sequence(["/", "/signup"], 1)]
    # A view that happened between them arrives late; ties in time break by event id.
    store(database_url, [event(c, T0 + M, session="L", anon="v-L", page="/pricing"),
                         event(c, T0 + 3 * M, session="L", anon="v-L", page="/signup")])
    refresh(database_url)
    got = ask(database_url, made.read_key, paths.build(Params(DAY))).result
    assert got.sequences == [Sequence(["/", "/pricing", "/signup"], 1)]
    assert got.exit_pages == [PageCount("/signup", 1)]


def test_parameters_read_as_written() -> None:
    p = paths.from_args(Args({"from": ["2026-11-02"], "to": ["2026-11-03"], "after": ["/pricing"],
                              "limit": ["5"], "device_type": ["mobile"], "include_bots": ["true"]}))
    assert (p.after, p.before, p.limit) == ("/pricing", None, 5)
    assert p.filters == Filters(device_type=("mobile",), include_bots=True)
    assert p.period == DAY
    assert paths.from_args(args()).limit == paths.DEFAULT_LIMIT


@pytest.mark.parametrize(("query", "fields"), [
    ({"after": "/a", "before": "/b"}, {"before"}),
    ({"after": "/a?x=1"}, {"after"}),
    ({"before": "/a#top"}, {"before"}),
    ({"limit": "0"}, {"limit"}),
    ({"limit": "1001"}, {"limit"}),
    ({"limit": "ten"}, {"limit"}),
    ({"steps": "5"}, {"steps"}),
    ({"from": "2026-11-03", "to": "2026-11-02"}, {"from"}),
    ({"from": "2016-01-01", "to": "2026-01-01"}, {"to"}),
    ({"from": "'; DROP TABLE events; --"}, {"from"}),
    ({"device_type": "x" * 3000}, {"device_type"}),
    ({"event_type": "purchase"}, {"event_type"}),
    ({"include_bots": "maybe"}, {"include_bots"}),
    ({"after": "/\x00"}, {"after"}),
])
def test_bad_parameters_are_named(query: dict[str, str], fields: set[str]) -> None:
    assert refused(**query) == fields


def test_params_refuse_both_directions() -> None:
    with pytest.raises(BadParameters):
        Params(DAY, after="/a", before="/b")
    with pytest.raises(BadParameters):
        Params(DAY, limit=0)


def test_one_statement_with_every_value_bound() -> None:
    hostile = "'; DROP TABLE user_events; --"
    q = paths.build(Params(DAY, before=hostile, filters=Filters(city=(hostile,))))
    assert hostile not in q.sql and ";" not in q.sql
    assert hostile in q.params.values() and [hostile] in q.params.values()
    assert "user_events" not in q.sql and "FROM events" not in q.sql
    assert "tenant.session_rollup" in q.sql
