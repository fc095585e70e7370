"""The click heatmap, worked by hand: bins, selectors, rage clicks at and just past
PostHog's thresholds (3 clicks, 1 s, 30 px), coordinates off the page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from userflow.analytics import heatmap, period
from userflow.analytics.args import Args
from userflow.analytics.errors import BadParameters
from userflow.analytics.filters import Filters
from userflow.analytics.heatmap import Cell, SelectorRow

from .analytics_support import BOT, PHONE, ask, event, store
from .conftest import make_tenant

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
DAY = period.parse("2026-11-02", "2026-11-03")
ms = timedelta(milliseconds=1)


@pytest.fixture(scope="module")
def shop(database_url: str):  # type: ignore[no-untyped-def]
    made = make_tenant(database_url, "Heatmap Shop")
    c = made.company_id

    def click(at: timedelta, session: str | None, anon: str, selector: str | None,
              x: int | None, y: int | None, page: str = "/pricing", **kw: object):  # type: ignore[no-untyped-def]
        return event(c, T0 + at, "click", session=session, anon=anon, page=page,
                     element_selector=selector, x_coordinate=x, y_coordinate=y, **kw)

    s = timedelta(seconds=1)
    store(database_url, [
        # h1, #buy: gaps of 999 ms, then 500 ms, a few px apart: one run of 4, one rage click.
        click(0 * ms, "h1", "u1", "#buy", 105, 210),       # cell (100, 200)
        click(999 * ms, "h1", "u1", "#buy", 110, 212),     # (100, 200), 7 px from the last
        click(1998 * ms, "h1", "u1", "#buy", 112, 214),    # (100, 200)
        click(2498 * ms, "h1", "u1", "#buy", 121, 214),    # (120, 200), 9 px
        # h2, #buy, on a phone: the third click comes exactly 1 s after the second: no rage.
        click(10 * s, "h2", "u2", "#buy", 100, 200, agent=PHONE),
        click(10500 * ms, "h2", "u2", "#buy", 100, 200, agent=PHONE),
        click(11500 * ms, "h2", "u2", "#buy", 100, 200, agent=PHONE),
        # h3, #menu: 29 px (20 + 9) then 0 px, 100 ms apart: a rage click.
        click(20 * s, "h3", "u3", "#menu", 40, 40),        # (40, 40)
        click(20100 * ms, "h3", "u3", "#menu", 60, 49),    # (60, 40)
        click(20200 * ms, "h3", "u3", "#menu", 60, 49),    # (60, 40)
        # h4, #menu: the second click is 30 px (15 + 15) away: runs of 1 and 2, no rage.
        click(30 * s, "h4", "u4", "#menu", 40, 40),        # (40, 40)
        click(30100 * ms, "h4", "u4", "#menu", 55, 55),    # (40, 40)
        click(30200 * ms, "h4", "u4", "#menu", 55, 55),    # (40, 40)
        # h5 and h6 interleave on the same spot: two clicks each, no rage.
        click(40000 * ms, "h5", "u5", "#menu", 41, 41),
        click(40100 * ms, "h6", "u6", "#menu", 41, 41),
        click(40200 * ms, "h5", "u5", "#menu", 41, 41),
        click(40300 * ms, "h6", "u6", "#menu", 41, 41),
        # h7: no coordinates: no cell, and the selector alone makes the rage click.
        click(50000 * ms, "h7", "u7", "#nocoord", None, None),
        click(50300 * ms, "h7", "u7", "#nocoord", None, None),
        click(50600 * ms, "h7", "u7", "#nocoord", None, None),
        # h8: off the page (negative, x at the limit) and at the far edge of it.
        click(60 * s, "h8", "u8", "#buy", -5, 100),
        click(70 * s, "h8", "u8", "#buy", 10_000, 5),
        click(80 * s, "h8", "u8", "#buy", 9_999, 999_999),  # (9980, 999980)
        # h9: the page with a query and a fragment; no selector.
        click(90 * s, "h9", "u9", None, 300, 300, page="/pricing?plan=pro#faq"),
        # Without a session: u10's three clicks are a rage click, u11's one is not part of it.
        click(100000 * ms, None, "u10", "#solo", 200, 0),
        click(100100 * ms, None, "u10", "#solo", 200, 0),
        click(100150 * ms, None, "u11", "#solo", 200, 0),
        click(100200 * ms, None, "u10", "#solo", 200, 0),
        # Left out: a hover, another page, a bot, the day before.
        event(c, T0 + 5 * s, "hover", session="h1", anon="u1", page="/pricing",
              element_selector="#buy", x_coordinate=150, y_coordinate=150),
        click(6 * s, "h1", "u1", "#buy", 100, 200, page="/"),
        click(7 * s, "b1", "bot", "#buy", 100, 200, agent=BOT),
        click(-timedelta(days=1), "h0", "u0", "#buy", 100, 200),
    ])
    return made


def test_clicks_are_binned_and_rage_clicks_counted_as_posthog_does(database_url: str, shop) -> None:  # type: ignore[no-untyped-def]
    got = ask(database_url, shop.read_key, heatmap.build(heatmap.Params(DAY, "/pricing"))).result
    assert got.bin_px == 20 and got.cell_origin == "top-left"
    assert got.cells == [Cell(40, 40, 8), Cell(100, 200, 6), Cell(200, 0, 4), Cell(60, 40, 2),
                         Cell(120, 200, 1), Cell(300, 300, 1), Cell(9980, 999_980, 1)]
    assert not got.cells_truncated
    # #buy and #menu tie on clicks and rage clicks: by selector.
    assert got.selectors == [SelectorRow("#buy", 10, 1), SelectorRow("#menu", 10, 1),
                             SelectorRow("#solo", 4, 1), SelectorRow("#nocoord", 3, 1)]
    t = got.totals
    # 28 clicks, 5 without a cell (3 without coordinates, 2 off the page).
    assert (t.clicks, t.binned_clicks, t.cells, t.rage_clicks, t.users) == (28, 23, 7, 4, 11)


def test_bin_size_device_bots_and_selector_limit(database_url: str, shop) -> None:  # type: ignore[no-untyped-def]
    coarse = ask(database_url, shop.read_key, heatmap.build(
        heatmap.Params(DAY, "/pricing", bin_px=100))).result
    assert coarse.cells == [Cell(0, 0, 10), Cell(100, 200, 7), Cell(200, 0, 4), Cell(300, 300, 1),
                            Cell(9900, 999_900, 1)]
    phone = ask(database_url, shop.read_key, heatmap.build(
        heatmap.Params(DAY, "/pricing", Filters(device_type=("mobile",))))).result
    assert phone.cells == [Cell(100, 200, 3)]
    assert phone.selectors == [SelectorRow("#buy", 3, 0)]
    bots = ask(database_url, shop.read_key, heatmap.build(
        heatmap.Params(DAY, "/pricing", Filters(include_bots=True), limit=1))).result
    assert bots.selectors == [SelectorRow("#buy", 11, 1)]
    assert bots.totals.clicks == 29


def test_the_page_matches_the_path_only(database_url: str, shop) -> None:  # type: ignore[no-untyped-def]
    same = ask(database_url, shop.read_key, heatmap.build(
        heatmap.Params(DAY, "/pricing?utm_source=x#top"))).result
    assert same.totals.clicks == 28
    home = ask(database_url, shop.read_key, heatmap.build(heatmap.Params(DAY, "/"))).result
    assert (home.cells, home.totals.clicks) == ([Cell(100, 200, 1)], 1)


def test_cells_are_bounded_busiest_first(database_url: str, shop,  # type: ignore[no-untyped-def]
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heatmap, "MAX_CELLS", 3)
    got = ask(database_url, shop.read_key, heatmap.build(heatmap.Params(DAY, "/pricing"))).result
    assert got.cells == [Cell(40, 40, 8), Cell(100, 200, 6), Cell(200, 0, 4)]
    assert got.cells_truncated and got.totals.cells == 7


def test_sql_in_a_string_is_only_a_value(database_url: str, shop) -> None:  # type: ignore[no-untyped-def]
    p = heatmap.from_args(Args({"page": ["/pricing' OR '1'='1"], "from": ["2026-11-02"],
                                "to": ["2026-11-03"], "device_type": ["x'); DROP TABLE events; --"]}))
    got = ask(database_url, shop.read_key, heatmap.build(p)).result
    assert (got.cells, got.selectors, got.totals.clicks) == ([], [], 0)


def _fields(query: dict[str, list[str]]) -> list[str]:
    with pytest.raises(BadParameters) as caught:
        heatmap.from_args(Args(query))
    return [e.field for e in caught.value.errors]


def test_bad_parameters_are_named() -> None:
    assert _fields({"from": ["2026-11-02"]}) == ["page"]
    assert _fields({"page": ["pricing"]}) == ["page"]
    assert _fields({"page": ["/"], "bin_px": ["0"]}) == ["bin_px"]
    assert _fields({"page": ["/"], "bin_px": ["twenty"]}) == ["bin_px"]
    assert _fields({"page": ["/"], "limit": ["1001"]}) == ["limit"]
    assert _fields({"page": ["/"], "bins": ["20"]}) == ["bins"]  # unknown: the size is bin_px
    assert _fields({"page": ["/"], "from": ["2026-11-03"], "to": ["2026-11-02"]}) == ["from"]
    with pytest.raises(BadParameters):
        heatmap.Params(DAY, "/", Filters(page=("/other",)))
