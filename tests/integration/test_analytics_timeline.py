"""A user's timeline, worked by hand: newest first, ties in time across page
boundaries, sessions, anonymous ids, bots, events the rollup has not seen, a
bounded scan, and the endpoint's path parameter, 404 and 400."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import psycopg
import pytest
from fastapi.testclient import TestClient

from userflow.analytics import timeline
from userflow.analytics.args import Args
from userflow.analytics.errors import BadParameters, NotFound
from userflow.analytics.timeline import Cursor, Result
from userflow.api.app import create_app
from userflow.config import Settings
from userflow.events.model import Event

from .analytics_plan import partitions_read
from .analytics_support import BOT, ask, event, refresh, store
from .conftest import make_tenant
from .stack import ROLE_OF, as_role

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
s = timedelta(seconds=1)
h = timedelta(hours=1)


def numbered(e: Event, n: int) -> Event:
    return msgspec.structs.replace(e, event_id=uuid.UUID(int=n))


@pytest.fixture(scope="module")
def app_(database_url: str):  # type: ignore[no-untyped-def]
    made = make_tenant(database_url, "Timeline App")
    c = made.company_id

    def alice(n: int, at: datetime, kind: str = "page_view", **kw: object) -> Event:
        kw.setdefault("user", "alice")
        kw.setdefault("anon", "a-alice")
        return numbered(event(c, at, kind, **kw), n)  # type: ignore[arg-type]

    store(database_url, [
        alice(12, T0 - timedelta(days=1), session="sa0", page="/"),
        alice(1, T0, session="sa1", page="/"),
        alice(2, T0 + 10 * s, "click", session="sa1", page="/", element_selector="#buy"),
        # Three at the same instant: ordered by id, 5, 4, 3.
        alice(3, T0 + 20 * s, "click", session="sa1", page="/"),
        alice(4, T0 + 20 * s, "click", session="sa1", page="/"),
        alice(5, T0 + 20 * s, "click", session="sa1", page="/"),
        # No user_id and anonymous_id "alice": alice's (the actor).
        alice(11, T0 + 40 * s, "scroll", session="sa1", page="/", user=None, anon="alice",
              scroll_depth=50),
        alice(6, T0 + h, session="sa2", page="/pricing"),
        alice(7, T0 + h, "custom", session="sa2", page="/pricing", event_name="Signed Up"),
        alice(8, T0 + timedelta(days=1), session="sa3", page="/", ip_address="203.0.113.9"),
        alice(9, T0 + 2 * h, session="sab", page="/", agent=BOT),
        # bob's, though his anonymous id is "alice".
        alice(10, T0 + 5 * s, session="sb", user="bob", anon="alice"),
        numbered(event(c, T0, session="cr", user="crawler", agent=BOT), 20),
    ])
    refresh(database_url)
    return made


ALICE = [8, 7, 6, 11, 5, 4, 3, 2, 1, 12]  # newest first, bots left out


def page(database_url: str, key: str, p: timeline.Params) -> Result:
    return ask(database_url, key, timeline.build(p)).result


def ids(r: Result) -> list[int]:
    return [uuid.UUID(e.event_id).int for e in r.events]


def test_pages_are_newest_first_and_ties_do_not_split(database_url: str, app_) -> None:  # type: ignore[no-untyped-def]
    first = page(database_url, app_.read_key, timeline.Params("alice", limit=3))
    assert ids(first) == [8, 7, 6]
    assert first.events[0].event_timestamp == "2026-11-03T10:00:00+00:00"
    assert [(x.session_id, x.started_at, x.events, x.page_views, x.complete)
            for x in first.sessions] == [
        ("sa3", "2026-11-03T10:00:00+00:00", 1, 1, True),
        ("sa2", "2026-11-02T11:00:00+00:00", 2, 1, True)]
    assert first.next_cursor is not None
    second = page(database_url, app_.read_key, timeline.Params(
        "alice", Cursor.decode(first.next_cursor), limit=3))
    # The page ends inside the tie at T0 + 20 s (5, 4 | 3).
    assert ids(second) == [11, 5, 4]
    [sa1] = second.sessions
    assert (sa1.session_id, sa1.started_at, sa1.ended_at, sa1.duration_s, sa1.events,
            sa1.entry_page) == ("sa1", "2026-11-02T10:00:00+00:00", "2026-11-02T10:00:40+00:00",
                                40.0, 6, "/")
    assert second.next_cursor is not None
    third = page(database_url, app_.read_key, timeline.Params(
        "alice", Cursor.decode(second.next_cursor), limit=3))
    assert ids(third) == [3, 2, 1] and third.next_cursor is not None
    last = page(database_url, app_.read_key, timeline.Params(
        "alice", Cursor.decode(third.next_cursor), limit=3))
    assert ids(last) == [12] and last.next_cursor is None


def test_every_page_size_walks_the_same_timeline(database_url: str, app_) -> None:  # type: ignore[no-untyped-def]
    for limit in range(1, 12):
        seen: list[int] = []
        cursor: Cursor | None = None
        while True:
            got = page(database_url, app_.read_key, timeline.Params("alice", cursor, limit))
            seen += ids(got)
            if got.next_cursor is None:
                assert 0 < len(got.events) <= limit
                break
            assert len(got.events) == limit
            cursor = Cursor.decode(got.next_cursor)
        assert seen == ALICE, limit


def test_what_an_event_shows(database_url: str, app_) -> None:  # type: ignore[no-untyped-def]
    got = page(database_url, app_.read_key, timeline.Params("alice", limit=4))
    newest, _, _, scroll = got.events
    assert (newest.event_type, newest.page_url, newest.user_id) == (
        "page_view", "https://shop.example/", "alice")
    assert not hasattr(newest, "ip_address") and not hasattr(newest, "user_agent")
    assert (scroll.user_id, scroll.anonymous_id, scroll.scroll_depth) == (None, "alice", 50)
    assert got.events[1].event_name == "Signed Up"


def test_bots_and_unknown_users(database_url: str, app_) -> None:  # type: ignore[no-untyped-def]
    with_bots = page(database_url, app_.read_key, timeline.Params("alice", include_bots=True))
    assert ids(with_bots) == [8, 9, *ALICE[1:]]
    assert ids(page(database_url, app_.read_key, timeline.Params("bob"))) == [10]
    for who in ("nobody", "crawler"):
        with pytest.raises(NotFound):
            page(database_url, app_.read_key, timeline.Params(who))
    assert ids(page(database_url, app_.read_key,
                    timeline.Params("crawler", include_bots=True))) == [20]


def test_a_page_reads_only_the_hours_it_needs(database_url: str, app_) -> None:  # type: ignore[no-untyped-def]
    # After event 6 (11:00 on 2 Nov), one event and one more: the 10:00 hour holds six.
    cursor = Cursor(T0 + h, uuid.UUID(int=6))
    query = timeline.build(timeline.Params("alice", cursor, limit=1))
    read = partitions_read(database_url, app_.read_key, query)
    assert "user_events_p20261102" in read
    assert not read & {"user_events_p20261101", "user_events_p20261103"}
    assert ids(ask(database_url, app_.read_key, query).result) == [11]


def test_events_the_rollup_has_not_seen(database_url: str) -> None:
    made = make_tenant(database_url, "Timeline Fresh")
    c = made.company_id
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    store(database_url, [event(c, now, session="f1", user="fresh"),
                         event(c, T0, session="l1", user="late")])
    # Never refreshed, but recent: shown, its session described by the page alone.
    got = page(database_url, made.read_key, timeline.Params("fresh"))
    assert len(got.events) == 1 and got.next_cursor is None
    assert [(x.session_id, x.started_at, x.complete) for x in got.sessions] == [
        ("f1", now.isoformat(), False)]
    refresh(database_url)
    assert page(database_url, made.read_key, timeline.Params("fresh")).sessions[0].complete
    # An old event in an hour the rollup knows for the user shows at once; in
    # another hour, after the next refresh.
    store(database_url, [event(c, T0 + 30 * 60 * s, session="l1", user="late"),
                         event(c, T0 - 3 * h, session="l0", user="late")])
    assert len(page(database_url, made.read_key, timeline.Params("late")).events) == 2
    refresh(database_url)
    assert len(page(database_url, made.read_key, timeline.Params("late")).events) == 3


def test_a_rollup_counting_more_than_is_stored_skips_nothing(database_url: str) -> None:
    made = make_tenant(database_url, "Timeline Gone")
    c = made.company_id
    store(database_url, [event(c, at, session="g", user="gone")
                         for hour in (T0, T0 - h) for at in (hour, hour + s, hour + 2 * s)])
    refresh(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM user_events WHERE company_id = %s AND event_timestamp IN (%s, %s)",
                     (c, T0 + s, T0 + 2 * s))
    seen: list[str] = []
    cursor: Cursor | None = None
    sizes: list[int] = []
    while True:
        got = page(database_url, made.read_key, timeline.Params("gone", cursor, limit=2))
        seen += [x.event_timestamp for x in got.events]
        sizes.append(len(got.events))
        if got.next_cursor is None:
            break
        cursor = Cursor.decode(got.next_cursor)
    # The rollup said three in T0's hour; one is left: a short first page, then the rest.
    assert sizes == [1, 2, 1]
    assert seen == [(at).isoformat() for at in (T0, T0 - h + 2 * s, T0 - h + s, T0 - h)]


def _fields(query: dict[str, list[str]]) -> list[str]:
    with pytest.raises(BadParameters) as caught:
        timeline.from_args(Args(query))
    return [e.field for e in caught.value.errors]


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def test_bad_parameters_are_named() -> None:
    good = Cursor(T0, uuid.UUID(int=7)).encode()
    assert timeline.from_args(Args({"user_id": ["u"], "cursor": [good]})).cursor == Cursor(
        T0, uuid.UUID(int=7))
    for cursor in ["garbage!", "' OR 1=1 --", _b64('{"at": 1}'), _b64("[1, 2]"),
                   _b64('["2026-11-02T10:00:00", "00000000-0000-0000-0000-000000000007"]'),
                   _b64('["2026-11-02T10:00:00+00:00", "not-a-uuid"]'), good * 5]:
        assert _fields({"user_id": ["u"], "cursor": [cursor]}) == ["cursor"], cursor
    assert _fields({"user_id": ["u"], "limit": ["0"]}) == ["limit"]
    assert _fields({"user_id": ["u"], "limit": ["501"]}) == ["limit"]
    assert _fields({"user_id": ["u"], "country": ["FR"]}) == ["country"]  # filters are not taken
    assert _fields({}) == ["user_id"]
    assert _fields({"user_id": ["x" * 257]}) == ["user_id"]


def test_the_endpoint(database_url: str, app_) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(reader_database_url=as_role(database_url, ROLE_OF["reader"]))
    auth = {"Authorization": f"Bearer {app_.read_key}"}
    with TestClient(create_app(settings)) as client:
        got = client.get("/v1/analytics/users/alice/timeline", params={"limit": 3}, headers=auth)
        assert got.status_code == 200, got.text
        body = got.json()
        assert [uuid.UUID(e["event_id"]).int for e in body["events"]] == [8, 7, 6]
        assert "ip_address" not in body["events"][0]
        following = client.get("/v1/analytics/users/alice/timeline",
                               params={"limit": 3, "cursor": body["next_cursor"]}, headers=auth)
        assert [uuid.UUID(e["event_id"]).int for e in following.json()["events"]] == [11, 5, 4]
        missing = client.get("/v1/analytics/users/nobody/timeline", headers=auth)
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        bad = client.get("/v1/analytics/users/alice/timeline", params={"cursor": "x'--"},
                         headers=auth)
        assert bad.status_code == 400
        assert [e["field"] for e in bad.json()["errors"]] == ["cursor"]
